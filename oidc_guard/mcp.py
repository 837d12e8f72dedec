"""The token verifier of the MCP Python SDK (``pip install oidc_guard[mcp]``).

An MCP server built with the SDK's ``MCPServer`` (``FastMCP`` before
version 2) leaves token checking to a ``TokenVerifier``: an object with
``async verify_token(token) -> AccessToken | None``.  The SDK does the
rest of the MCP authorization spec itself, and this module relies on it:

* it finds the token (``Authorization: Bearer``) and answers a request
  without a valid one with 401 and ``WWW-Authenticate: Bearer
  error="invalid_token", ..., resource_metadata="..."`` (RFC 9728 section
  5.1), and one without ``AuthSettings.required_scopes`` with 403
  ``insufficient_scope``;
* with ``AuthSettings.resource_server_url`` it serves the protected
  resource metadata (RFC 9728 section 3.1, path inserted) naming
  ``AuthSettings.issuer_url`` as the authorization server;
* with ``validate_token_resource=True`` it refuses an ``AccessToken``
  whose ``resource`` is not ``resource_server_url``.

What it lacks, :class:`TokenVerifier` brings: the validation of the token
by a :class:`~oidc_guard.TokenValidator` or
:class:`~oidc_guard.MultiIssuerValidator` (keys, issuer, audience, times,
type, introspection), off the event loop, and the RFC 8707 audience rule
of the MCP authorization spec: a token is accepted only when it was issued
for this resource (its ``aud`` names ``resource``).

One thing the SDK cannot say through a verifier is "the identity provider
is down": ``None`` is all a verifier may answer, and the SDK turns it into
401 ``invalid_token``, which tells a well-behaved client to throw a good
token away.  :class:`ProviderOutageMiddleware`, put around the SDK's ASGI
app, turns that 401 into 503 with ``Retry-After`` when (and only when)
the verifier found the provider unusable during that request.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

try:
    from mcp.server.auth.provider import AccessToken
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "oidc_guard.mcp needs the MCP Python SDK (Python 3.10 or later): pip install 'oidc_guard[mcp]'"
    ) from exc

from . import metrics as _metrics
from ._aio import validate_access_token_async
from .claims import Claims, required_binding
from .credentials import Facts, credential_from
from .errors import ConfigurationError, InvalidToken, OIDCGuardError, ProviderError, render_error
from .multi import members_of

__all__ = ["TokenVerifier", "ProviderOutageMiddleware"]

logger = logging.getLogger("oidc_guard.mcp")


class _Outage:
    """What one request's verification found about the provider: the
    :class:`~oidc_guard.ProviderError` that made it answer ``None``, or
    ``None``.  A mutable record (not a value set on the context variable)
    so that a task the SDK starts with a copy of the context still writes
    to the request's record."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Optional[ProviderError] = None


# Set by ProviderOutageMiddleware for each HTTP request, read by
# TokenVerifier.verify_token, which runs in the same task (Starlette's
# AuthenticationMiddleware awaits the SDK's backend, which awaits the
# verifier).
_request_outage: "contextvars.ContextVar[Optional[_Outage]]" = contextvars.ContextVar(
    "oidc_guard_mcp_outage", default=None)


def _check_resource(resource: Any) -> Optional[str]:
    """RFC 8707 section 2: an absolute URI without a fragment (and, for
    RFC 9728 metadata, an http(s) URL)."""
    if resource is None:
        return None
    if not isinstance(resource, str):
        raise ConfigurationError(f"resource must be the server's URL as a str, e.g. 'https://mcp.example.com/mcp', "
                                 f"not {type(resource).__name__}")
    parts = urlsplit(resource)
    if parts.scheme not in ("http", "https") or not parts.hostname or "#" in resource \
            or any(ch.isspace() or ord(ch) < 0x20 for ch in resource):
        raise ConfigurationError(f"resource must be an absolute http(s) URL without fragment (RFC 8707 section 2, "
                                 f"RFC 9728 section 1.2), e.g. 'https://mcp.example.com/mcp'; got {resource!r}")
    return resource


def _audience_rules(validator: Any) -> List[Tuple[Optional[str], Optional[Tuple[str, ...]]]]:
    """``(issuer, audiences or None)`` of each member of the validator;
    ``None``: the member checks no audience (``verify_audience=False``) or
    is a custom validator that does not say."""
    rules: List[Tuple[Optional[str], Optional[Tuple[str, ...]]]] = []
    for member in members_of(validator):
        audiences = getattr(member, "audiences", None)
        checks = getattr(member, "verify_audience", True) is not False
        issuer = getattr(member, "issuer", None)
        rules.append((issuer if isinstance(issuer, str) else None,
                      tuple(audiences) if checks and isinstance(audiences, (tuple, list)) else None))
    return rules


class TokenVerifier:
    """The MCP SDK's ``TokenVerifier`` on an oidc_guard validator::

        verifier = TokenVerifier(validator, resource="https://mcp.example.com/mcp")
        mcp = MCPServer("contacts", token_verifier=verifier, auth=AuthSettings(
            issuer_url=validator.issuer, resource_server_url="https://mcp.example.com/mcp",
            required_scopes=["contacts"], validate_token_resource=True))

    ``validator``: a :class:`~oidc_guard.TokenValidator`,
    :class:`~oidc_guard.MultiIssuerValidator` or any object with
    ``validate_access_token(token) -> Claims``; the same object may serve
    WSGI and ASGI apps of the same process (one set of caches).

    ``resource``: this MCP server's URL, as in
    ``AuthSettings.resource_server_url`` and the ``resource`` clients send
    to the authorization server (RFC 8707).  A token is accepted only when
    its ``aud`` names it (the MCP authorization spec: tokens issued for
    this server only, never passed on).  Because the validator checks the
    audience first, a validator whose audiences do not include the
    resource would refuse every token meant for this server: that is a
    :class:`~oidc_guard.ConfigurationError` here, at start-up, rather than
    a server that answers every client 401.  Without ``resource`` the
    audience rule is the validator's alone, and ``AccessToken.resource``
    is the token audience the validator accepted.

    :meth:`verify_token` never raises into the SDK: a token that is not
    valid (any ``reason``), an identity provider that cannot be reached,
    or an unexpected error each give ``None`` and one log line on
    ``oidc_guard.mcp`` naming the ``reason``.
    """

    def __init__(self, validator: Any, *, resource: Optional[str] = None) -> None:
        if not callable(getattr(validator, "validate_access_token", None)):
            raise ConfigurationError("TokenVerifier needs a TokenValidator, a MultiIssuerValidator or an object "
                                     "with validate_access_token(token)")
        self.validator = validator
        self.resource: Optional[str] = _check_resource(resource)
        rules = _audience_rules(validator)
        if self.resource is not None:
            for issuer, audiences in rules:
                if audiences is not None and self.resource not in audiences:
                    # Every token for this server would fail the validator's
                    # audience check (RFC 8707: its aud is the resource).
                    raise ConfigurationError(
                        f"TokenVerifier(resource={self.resource!r}): the validator"
                        f"{' for ' + repr(issuer) if issuer else ''} accepts the audiences {list(audiences)!r} "
                        f"only, so it would refuse every token issued for this resource; give it "
                        f"audience={self.resource!r} (or a list that includes it)")
        accepted: List[str] = []
        for _issuer, audiences in rules:
            accepted.extend(audiences or ())
        self._accepted = frozenset(accepted)
        self._outage_hint_lock = threading.Lock()
        self._outage_hint_given = False

    def __repr__(self) -> str:
        return f"TokenVerifier({self.validator!r}, resource={self.resource!r})"

    async def verify_token(self, token: str) -> Optional[AccessToken]:
        """The SDK's ``AccessToken`` for a valid token, else ``None``.

        Steps: the token's syntax (RFC 6750 section 2.1 b64token); the
        validator's checks, a cached token answered on the event loop and
        any other validated in a worker thread (discovery, JWKS and
        introspection never block the loop); the token must not be
        sender-constrained (``cnf``: the SDK takes Bearer tokens only and
        checks no DPoP proof or certificate, so a bound token is refused,
        reason ``binding``); its ``aud`` must name ``resource`` (RFC 8707,
        reason ``audience``)."""
        try:
            claims = await self._validate(token)
            access = self._access_token(token, claims)
        except ProviderError as exc:
            self._record(exc)
            # INFO, per request, as in the other adapters: the cause is
            # logged at WARNING once per outage by the key set / discovery.
            logger.info("identity provider unusable for an MCP request reason=%s: %s", exc.reason, exc.description)
            self._note_outage(exc)
            return None
        except OIDCGuardError as exc:
            self._record(exc)
            logger.info("rejected bearer token of an MCP request reason=%s: %s", exc.reason, exc.description)
            return None
        except Exception:  # never into the SDK: its answer would be a 500
            error = InvalidToken("token could not be validated", reason="internal")
            self._record(error)
            logger.exception("the token validator raised an unexpected error for an MCP request reason=internal")
            return None
        self._record(None)
        return access

    async def _validate(self, token: Any) -> Claims:
        if not isinstance(token, str) or not token:
            raise InvalidToken("the Authorization header names the Bearer scheme but carries no token",
                               reason="malformed")
        # The SDK passes what follows "Bearer "; the same grammar as every
        # other adapter (RFC 6750 section 2.1), so nothing that is not a
        # b64token reaches the validator or an introspection endpoint.
        found = credential_from(Facts("POST", authorization="Bearer " + token), dpop=False)
        if found is None:  # pragma: no cover - "Bearer " always names the scheme
            raise InvalidToken("not a bearer token", reason="malformed")
        claims: Claims = await validate_access_token_async(self.validator, found.token)
        return claims

    def _access_token(self, token: str, claims: Claims) -> AccessToken:
        bound = required_binding(claims)
        if bound is not None:
            raise InvalidToken(
                f"token is bound to a {'DPoP key' if bound == 'dpop' else 'client certificate'} (cnf, RFC 9449 / "
                f"RFC 8705) but the MCP SDK takes Bearer tokens only and checks no proof", reason="binding")
        audiences = claims.audiences if isinstance(claims, Claims) else ()
        if self.resource is not None:
            # RFC 8707 section 2 / the MCP authorization spec: issued for
            # this resource, whatever else the validator would accept.
            if self.resource not in audiences:
                raise InvalidToken(f"token audience {list(audiences)!r} does not name this resource "
                                   f"{self.resource!r} (RFC 8707)", reason="audience")
            resource: Optional[str] = self.resource
        else:
            resource = next((aud for aud in audiences if aud in self._accepted), None)
        expires = claims.get("exp")
        return AccessToken(
            token=token,
            client_id=claims.client_id or "",
            scopes=sorted(claims.scopes),
            expires_at=int(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None,
            resource=resource,
            subject=claims.subject,
            claims=claims.to_dict(),
        )

    @staticmethod
    def _record(error: Optional[OIDCGuardError]) -> None:
        if _metrics.active is not None:
            _metrics.record_decision(error)

    def _note_outage(self, error: ProviderError) -> None:
        record = _request_outage.get()
        if record is not None:
            record.error = error
            return
        with self._outage_hint_lock:
            if self._outage_hint_given:
                return
            self._outage_hint_given = True
        logger.warning("the MCP SDK answers this request 401 invalid_token although the identity provider is "
                       "down, and clients may discard a good token; wrap the app in "
                       "oidc_guard.mcp.ProviderOutageMiddleware(app) to answer 503 with Retry-After instead")


class ProviderOutageMiddleware:
    """ASGI middleware for the SDK's app
    (``ProviderOutageMiddleware(mcp.streamable_http_app())``): when the
    :class:`TokenVerifier` answered ``None`` because the identity provider
    could not be used (discovery or JWKS unreachable, introspection down:
    reason ``provider_unavailable``), the SDK's 401 for that request is
    replaced by 503 ``temporarily_unavailable`` with ``Retry-After`` and no
    challenge, as every other oidc_guard adapter answers an outage.  Every
    other answer passes unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        record = _Outage()
        reset = _request_outage.set(record)
        replaced = False

        async def answer(message: Any) -> None:
            nonlocal replaced
            kind = message.get("type")
            if kind == "http.response.start" and message.get("status") == 401 and record.error is not None:
                replaced = True
                rendered = render_error(record.error)
                body = rendered.body_bytes()
                headers: Sequence[Tuple[bytes, bytes]] = [
                    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in rendered.headers]
                await send({"type": "http.response.start", "status": rendered.status,
                            "headers": list(headers) + [(b"content-length", str(len(body)).encode("ascii"))]})
                await send({"type": "http.response.body", "body": body})
                return
            if replaced and kind == "http.response.body":
                return  # the SDK's 401 body: already answered
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            _request_outage.reset(reset)
