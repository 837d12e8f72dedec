"""The error hierarchy and its mapping onto RFC 6750 responses.

Every error the library raises is an :class:`OIDCGuardError`.  Each class
carries a stable ``error`` code (RFC 6750 section 3.1) and the HTTP status it
maps to, so the WSGI layer never has to guess:

=====================  =======================  ======
class                  ``error``                status
=====================  =======================  ======
InvalidRequest         invalid_request          400
InvalidToken           invalid_token            401
InsufficientScope      insufficient_scope       403
ProviderError          temporarily_unavailable  503
=====================  =======================  ======

``description`` is written for a developer reading a log or a response body.
It never contains the token itself (RFC 6750 section 5.1: tokens are
credentials and must not leak into logs or error pages).
"""

from __future__ import annotations

import json
import re
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "OIDCGuardError",
    "InvalidToken",
    "InsufficientScope",
    "InvalidRequest",
    "ProviderError",
    "ConfigurationError",
    "MissingToken",
    "InsufficientUserAuthentication",
    "ChallengeSettings",
    "ErrorResponse",
    "render_error",
    "www_authenticate",
    "join_challenges",
    "error_response",
    "PROVIDER_UNAVAILABLE",
]

#: The ``error_description`` of every 503 a client receives.  The precise
#: reason of a :class:`ProviderError` names internal URLs, hosts and ports
#: (the discovery URL, "Connection refused"); it goes to the log (WARNING,
#: once per outage, from ``oidc_guard.jwks`` / ``oidc_guard.discovery``),
#: never into a response sent to a client.
PROVIDER_UNAVAILABLE = "identity provider temporarily unavailable"


class OIDCGuardError(Exception):
    """Base of every error oidc_guard raises.

    ``reason`` is a stable lowercase code for programs, logs and metrics
    (``error`` stays the RFC 6750 code, ``description`` the prose): a class
    default where the class implies it, or the ``reason=`` given to the
    constructor.  The codes are listed in the error reference (docs/errors.md).
    """

    error: str = "server_error"
    status: int = 500
    reason: str = "internal"
    #: Extra auth-params this error adds to the challenge of the scheme the
    #: request used, after ``error``, ``error_description`` and ``scope``:
    #: ``(("max_age", "300"),)`` for an RFC 9470 section 3 step-up error
    #: (:class:`InsufficientUserAuthentication`); empty for the others.
    challenge_params: Tuple[Tuple[str, str], ...] = ()

    def __init__(self, description: str, *, reason: Optional[str] = None) -> None:
        super().__init__(description)
        self.description = description
        if reason is not None:
            self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidToken(OIDCGuardError):
    """The token is malformed, expired, revoked, for another audience or
    badly signed (RFC 6750 section 3.1 ``invalid_token``, HTTP 401)."""

    error = "invalid_token"
    status = 401
    # oidc_guard names a precise reason at every place it raises this; the
    # default is only for an InvalidToken raised by code outside it (a
    # custom validator).
    reason = "invalid_token"


class InsufficientScope(OIDCGuardError):
    """The token is valid but lacks a scope the resource needs
    (RFC 6750 section 3.1 ``insufficient_scope``, HTTP 403).

    ``scopes`` are the scopes the resource asked for; they go into the
    ``scope`` attribute of the challenge.
    """

    error = "insufficient_scope"
    status = 403
    reason = "insufficient_scope"

    def __init__(self, description: str, scopes: Iterable[str] = (), *, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)
        self.scopes: Tuple[str, ...] = tuple(scopes)


class InvalidRequest(OIDCGuardError):
    """The request is malformed: a broken ``Authorization`` header, or the
    token sent by more than one method (RFC 6750 section 3.1
    ``invalid_request``, HTTP 400)."""

    error = "invalid_request"
    status = 400
    reason = "invalid_request"


class ProviderError(OIDCGuardError):
    """The identity provider's discovery document or JWKS cannot be used:
    unreachable, slow, malformed, or naming another issuer.

    Maps to HTTP 503 with ``Retry-After``: an outage of the identity provider
    is the server's problem, not the client's, and must never look like a bad
    token (a 401 would make well-behaved clients throw their token away).
    """

    error = "temporarily_unavailable"
    status = 503
    reason = "provider_unavailable"

    def __init__(self, description: str, retry_after: float = 30.0, *, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)
        self.retry_after = max(1, int(retry_after + 0.999))


class ConfigurationError(OIDCGuardError, ValueError):
    """The library was configured wrongly (bad issuer URL, missing audience,
    a forbidden algorithm...).  Raised at construction or ``init_app``, never
    because of a request."""

    error = "server_error"
    status = 500
    reason = "configuration"


class MissingToken(OIDCGuardError):
    """The request carried no token for a resource that needs one: 401 with
    a bare challenge (RFC 6750 section 3.1: no ``error`` attribute when the
    request had no authentication information).  Never raised: it is what
    :func:`oidc_guard.rules.evaluate` answers for an anonymous request, and
    :func:`render_error` renders it exactly as ``None``."""

    error = "unauthorized"
    status = 401
    reason = "no_token"

    def __init__(self, description: str = "a bearer token is required", *, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)


class InsufficientUserAuthentication(OIDCGuardError):
    """The token is valid but the user's authentication does not meet the
    resource's requirements: the wrong authentication context class
    (``acr``) or a login too long ago (``auth_time``).  RFC 9470 section 3:
    HTTP 401 ``insufficient_user_authentication``, and the challenge says
    what a new authentication needs: ``acr_values`` (space-separated, in
    order of preference) and/or ``max_age`` (seconds), the parameters the
    client passes to the authorization endpoint (OpenID Connect Core
    3.1.2.1) to sign the user in again."""

    error = "insufficient_user_authentication"
    status = 401
    reason = "insufficient_user_authentication"

    def __init__(self, description: str, *, acr_values: Optional[Sequence[str]] = None,
                 max_age: Optional[int] = None, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)
        self.acr_values: Tuple[str, ...] = tuple(acr_values or ())
        self.max_age = max_age
        params: List[Tuple[str, str]] = []
        if self.acr_values:
            params.append(("acr_values", " ".join(self.acr_values)))
        if max_age is not None:
            params.append(("max_age", str(int(max_age))))
        self.challenge_params = tuple(params)


# --- RFC 6750 section 3: the WWW-Authenticate challenge ---------------------

# The characters a quoted value keeps as they are (see _quote).
_PLAIN_QUOTED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _quote(value: str) -> str:
    """Render ``value`` as an RFC 7230 quoted-string.

    Backslash and double quote are escaped (quoted-pair).  Characters outside
    what RFC 6750 section 3 allows in ``error_description``/``scope``
    (%x20-21 / %x23-5B / %x5D-7E) are replaced so a description can never
    break the header or inject another one (CR/LF).
    """
    if _PLAIN_QUOTED.fullmatch(value) is not None:  # the usual case: nothing to escape
        return '"' + value + '"'
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif 0x20 <= code <= 0x7E:
            out.append(ch)
        else:
            out.append("?")
    return '"' + "".join(out) + '"'


def www_authenticate(
    realm: Optional[str] = None,
    error: Optional[str] = None,
    description: Optional[str] = None,
    scope: Optional[Iterable[str]] = None,
    *,
    scheme: str = "Bearer",
    algs: Optional[str] = None,
    params: Sequence[Tuple[str, str]] = (),
) -> str:
    """Build the value of a ``WWW-Authenticate: Bearer`` challenge (or, with
    ``scheme="DPoP"``, of a DPoP challenge, RFC 9449 section 7.1, whose
    ``algs`` lists the proof algorithms accepted).  ``params``: further
    auth-params ``(name, value)``, appended in order, each value quoted;
    the names are the caller's (fixed words, never request data).

    RFC 6750 section 3: when the request carried no token at all the
    challenge SHOULD NOT include an error code, so pass ``error=None`` then.
    """
    out: List[str] = []
    if realm is not None:
        out.append("realm=" + _quote(realm))
    if error is not None:
        out.append("error=" + _quote(error))
        if description:
            out.append("error_description=" + _quote(description))
    if scope:
        out.append("scope=" + _quote(" ".join(scope)))
    if algs:
        out.append("algs=" + _quote(algs))
    for name, value in params:
        out.append(name + "=" + _quote(value))
    if not out:
        return scheme
    return scheme + " " + ", ".join(out)


def join_challenges(challenges: Sequence[str]) -> str:
    """One ``WWW-Authenticate`` field value holding several challenges,
    comma-separated, in the order given (the one that matters first).

    RFC 9110 section 11.6.1: ``WWW-Authenticate = #challenge``, so one
    field may carry several challenges, and it is equivalent to repeating
    the field (section 5.3: a recipient may combine repeated fields into
    one list).  One field is the layout every reader gets right: readers
    that keep the first of repeated fields (werkzeug's ``headers[...]``,
    so Flask's test client), the last (webtest's ``headers.get``, a plain
    ``dict`` of headers) or join them (requests / urllib3) all see the same
    value, starting with the first challenge.
    """
    return ", ".join(challenges)


# --- the one rendering of a refusal -------------------------------------------


class ChallengeSettings(NamedTuple):
    """What the challenges of one protected resource offer, the same for
    every refusal it sends: ``realm`` (RFC 6750 section 3; ``None`` leaves
    it out), ``dpop`` (``"disabled"``: a ``Bearer`` challenge only;
    ``"allowed"``: ``Bearer`` and ``DPoP``; ``"required"``: ``DPoP`` only,
    RFC 9449 section 7.1), ``algs`` (the DPoP challenge's ``algs``, the
    proof algorithms accepted) and ``params``: auth-params added to every
    challenge, after the others (``(("resource_metadata", url),)`` for
    RFC 9728 section 5.1)."""

    realm: Optional[str] = None
    dpop: str = "disabled"
    algs: str = ""
    params: Tuple[Tuple[str, str], ...] = ()


#: A Bearer challenge without realm: what :func:`render_error` uses by default.
BEARER_ONLY = ChallengeSettings()

# RFC 9449 section 7.1 and section 9: error codes of the DPoP scheme.  A
# refusal with one of them is about the DPoP proof, so its challenge is the
# DPoP one whatever scheme the Authorization header named.
_DPOP_ERRORS = frozenset(("invalid_dpop_proof", "use_dpop_nonce"))

_NO_TOKEN_BODY = {"error": "unauthorized", "error_description": "a bearer token is required"}


class ErrorResponse(NamedTuple):
    """A refusal as every adapter sends it: ``status`` (int), ``headers``
    (a new list of ``(name, value)``, without ``Content-Length``, which
    depends on how the body is serialised) and ``body`` (the JSON object
    ``{"error": ..., "error_description": ...}`` as a new dict; FastAPI
    wraps it in ``{"detail": ...}``).  :meth:`body_bytes` and :meth:`wsgi`
    serialise it."""

    status: int
    headers: List[Tuple[str, str]]
    body: Dict[str, str]

    def body_bytes(self) -> bytes:
        """The body as UTF-8 JSON."""
        return json.dumps(self.body).encode("utf-8")

    @property
    def status_line(self) -> str:
        """``"401 Unauthorized"``: the status as a WSGI status line."""
        return _STATUS_LINES.get(self.status, f"{self.status} Error")

    def wsgi(self) -> Tuple[str, List[Tuple[str, str]], bytes]:
        """``(status_line, headers + Content-Length, body bytes)``."""
        payload = self.body_bytes()
        return self.status_line, self.headers + [("Content-Length", str(len(payload)))], payload


def render_error(
    error: Optional[OIDCGuardError],
    settings: ChallengeSettings = BEARER_ONLY,
    scheme: Optional[str] = None,
) -> ErrorResponse:
    """The response refusing a request: the one place challenges and error
    bodies are built.  ``error``: the refusal, or ``None`` (or a
    :class:`MissingToken`) for "no token sent"; ``settings``: the
    resource's :class:`ChallengeSettings`; ``scheme``: ``"bearer"`` or
    ``"dpop"``, the scheme the request's token came with (``None``: no
    token).

    * Status: the error's (401, 403, 400, 503); 401 for no token.
    * ``WWW-Authenticate`` (RFC 6750 section 3, RFC 9449 section 7.1): one
      challenge per scheme the settings offer, in one field (see
      :func:`join_challenges`).  The challenge of the scheme used comes
      first and carries ``error``, ``error_description``, ``scope`` (an
      :class:`InsufficientScope`) and the error's ``challenge_params``; a
      request without a token counts as Bearer (as DPoP when DPoP is
      required), a DPoP proof error (``invalid_dpop_proof``,
      ``use_dpop_nonce``) as DPoP.  The other scheme's challenge follows,
      bare, on a 401 only (a 400 or 403 answers the scheme that was used).
      No token: no ``error`` attribute at all (RFC 6750 section 3.1).
    * ``DPoP-Nonce`` with a ``use_dpop_nonce`` error (RFC 9449 section 9).
    * A :class:`ProviderError`: 503, ``Retry-After``, no challenge (an
      outage is not a token problem, and ``invalid_token`` would make the
      client throw a good token away), and the fixed description
      :data:`PROVIDER_UNAVAILABLE` (the error's own names internal URLs).
    * Body ``{"error": ..., "error_description": ...}``; ``error`` is
      ``"unauthorized"`` when no token was sent.
    """
    if isinstance(error, MissingToken):
        error = None
    headers: List[Tuple[str, str]] = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    if error is None:
        headers.append(("WWW-Authenticate", join_challenges(_challenges(None, settings, scheme))))
        return ErrorResponse(401, headers, dict(_NO_TOKEN_BODY))
    if isinstance(error, ProviderError):
        # Not a token problem: no challenge, a fixed sentence for clients.
        headers.append(("Retry-After", str(error.retry_after)))
        return ErrorResponse(error.status, headers,
                             {"error": error.error, "error_description": PROVIDER_UNAVAILABLE})
    headers.append(("WWW-Authenticate", join_challenges(_challenges(error, settings, scheme))))
    if error.error == "use_dpop_nonce":
        nonce = getattr(error, "nonce", None)
        if isinstance(nonce, str):
            headers.append(("DPoP-Nonce", nonce))
    return ErrorResponse(error.status, headers, {"error": error.error, "error_description": error.description})


def _challenges(error: Optional[OIDCGuardError], settings: ChallengeSettings, scheme: Optional[str]) -> List[str]:
    """The challenges of :func:`render_error`, the one that matters first."""
    mode = settings.dpop
    if mode == "disabled":
        used = "bearer"
    elif error is not None and error.error in _DPOP_ERRORS:
        used = "dpop"
    elif scheme is None or (mode == "required" and scheme == "bearer"):
        used = "dpop" if mode == "required" else "bearer"
    else:
        used = scheme
    unauthorized = error is None or error.status == 401
    out: List[str] = []
    for name in (("dpop", "bearer") if used == "dpop" else ("bearer", "dpop")):
        if (name == "bearer" and mode == "required") or (name == "dpop" and mode == "disabled"):
            continue
        mine = name == used
        if not mine and not unauthorized:
            continue  # a 403/400 answers the scheme that was used
        if mine and error is not None:
            scope = error.scopes if isinstance(error, InsufficientScope) else None
            params = error.challenge_params + settings.params if error.challenge_params else settings.params
            out.append(www_authenticate(settings.realm, error.error, error.description, scope,
                                        scheme="Bearer" if name == "bearer" else "DPoP",
                                        algs=settings.algs if name == "dpop" else None, params=params))
        else:
            out.append(www_authenticate(settings.realm, scheme="Bearer" if name == "bearer" else "DPoP",
                                        algs=settings.algs if name == "dpop" else None, params=settings.params))
    return out


def error_response(
    exc: Optional[OIDCGuardError],
    realm: Optional[str] = None,
    *,
    status: Optional[int] = None,
) -> Tuple[str, List[Tuple[str, str]], bytes]:
    """Turn an error (or ``None`` for "no token sent") into a WSGI response
    with a ``Bearer`` challenge (the DPoP challenge needs the settings of
    the middleware: see :func:`render_error`).

    Returns ``(status_line, headers, body)``.  A :class:`ProviderError`
    answers 503 with ``Retry-After`` and the fixed description
    :data:`PROVIDER_UNAVAILABLE`, whatever its own description says.
    ``None`` means the request had
    no credentials: 401 with a bare challenge and no ``error`` attribute
    (RFC 6750 section 3.1, last paragraph).  ``status`` replaces the
    status of the error.
    """
    rendered = render_error(exc, ChallengeSettings(realm))
    if status is not None:
        rendered = rendered._replace(status=status)
    return rendered.wsgi()


_STATUS_LINES = {
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
