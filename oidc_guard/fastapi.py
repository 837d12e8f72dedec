"""FastAPI: :class:`OIDCGuard`, a security dependency that validates the
request's access token and returns its :class:`~oidc_guard.Claims`.

.. code-block:: python

    from fastapi import Depends, FastAPI, Security
    from oidc_guard import TokenValidator
    from oidc_guard.fastapi import OIDCGuard

    validator = TokenValidator(issuer="https://idp.example.com", audience="api://contacts")
    guard = OIDCGuard(validator, realm="contacts-api")
    app = FastAPI()

    @app.get("/contacts")
    async def contacts(claims=Security(guard, scopes=["contacts"])): ...

    @app.get("/me")
    async def me(claims=Depends(guard)): ...          # any valid token

A translation only: the connection becomes
:class:`~oidc_guard.credentials.RequestFacts` (:func:`oidc_guard.asgi.scope_facts`),
the guard's :class:`~oidc_guard.auth.Authenticator` authenticates it on the
async path (:mod:`oidc_guard._aio`: a cached token on the event loop, the
rest in a bounded worker pool), the scopes FastAPI collects for the route
(``Security(guard, scopes=[...])``, :class:`fastapi.security.SecurityScopes`)
are a :class:`~oidc_guard.rules.ScopeRule` (every scope), and a refusal is
an :class:`~fastapi.HTTPException` with the status, ``WWW-Authenticate``
challenge and ``Retry-After`` that :func:`oidc_guard.errors.render_error`
gives every adapter; FastAPI's handler answers it with the body
``{"detail": {"error": ..., "error_description": ...}}``.

A request is authenticated once, however many guarded dependencies a
route has: the :class:`~oidc_guard.auth.AuthResult` is kept in the scope
(``oidc_guard.result``, with the validator that produced it under
``oidc_guard.validator``) and reused by a guard with the *same* validator
(an :class:`oidc_guard.asgi.BearerMiddleware` in front counts); a guard
with another validator authenticates again, so a result made for another
audience is never trusted.

OpenAPI: the guard is a :class:`fastapi.security.base.SecurityBase`, so
``app.openapi()["components"]["securitySchemes"]`` holds its scheme and
every guarded operation's ``security`` names it with its scopes.  By
default the scheme is ``openIdConnect`` with the issuer's discovery URL
(OpenID Connect Discovery 1.0 section 4); with ``authorization_url`` and
``token_url`` it is ``oauth2`` with an authorization code flow, which is
what Swagger UI's Authorize button needs to sign in with PKCE
(``swagger_ui_init_oauth={"clientId": ..., "usePkceWithAuthorizationCodeGrant": True}``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Tuple, cast

from fastapi import HTTPException, WebSocketException
from fastapi.openapi.models import OAuth2, OAuthFlowAuthorizationCode, OAuthFlows, OpenIdConnect
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ._aio import authenticate_async, run_off_loop
from .asgi import SCOPE_CLAIMS, SCOPE_ERROR, SCOPE_RESULT, SCOPE_VALIDATOR, WEBSOCKET_POLICY_CLOSE, logger, scope_facts
from .auth import AuthResult, Authenticator, where
from .claims import Claims
from .discovery import discovery_url
from .errors import ConfigurationError, ErrorResponse, OIDCGuardError
from .protocols import AccessTokenValidator
from .rules import AcrRule, AuthTimeRule, Rule, evaluate, log_denial, scope_rule

__all__ = ["OIDCGuard"]

# The rules of the scope lists FastAPI hands the guard: one per route's
# list, made once (bounded by the number of distinct lists in the code).
_MAX_RULES = 1024


class OIDCGuard(SecurityBase):
    """A FastAPI security dependency: ``Depends(guard)`` (any valid token)
    or ``Security(guard, scopes=["contacts"])`` (every scope listed) returns
    the request's :class:`~oidc_guard.Claims`.

    Refusals (``HTTPException``, each with ``Cache-Control: no-store`` and,
    except the 503, the RFC 6750 ``WWW-Authenticate`` challenge): no token
    401 without ``error``; an invalid token 401 ``invalid_token``; a
    missing scope 403 ``insufficient_scope`` with ``scope="..."``; a
    malformed request 400 ``invalid_request``; an identity provider outage
    503 with ``Retry-After``.  On a websocket route a refusal closes the
    handshake with code 1008 (put :class:`oidc_guard.asgi.BearerMiddleware`
    in front to answer handshakes with an HTTP 401/403 instead).

    :param validator: a :class:`~oidc_guard.TokenValidator` (or any
        validator, such as a :class:`~oidc_guard.MultiIssuerValidator`).
    :param realm: the challenges' ``realm``.
    :param auto_error: ``True`` (default): no token is 401.  ``False``: no
        token returns ``None`` (optional authentication, as FastAPI's own
        security classes); an invalid token is still refused, never
        quietly anonymous.
    :param openid_connect_url: the OpenAPI ``openIdConnect`` scheme's URL;
        default the validator's issuer + ``/.well-known/openid-configuration``.
    :param authorization_url: with ``token_url``: an ``oauth2`` scheme with
        an authorization code flow (RFC 6749 section 4.1) instead.
    :param token_url: the flow's token endpoint.
    :param refresh_url: the flow's refresh URL (optional).
    :param scopes: each scope's description, for Swagger UI's Authorize
        dialog (``oauth2`` scheme).
    :param scheme_name: the OpenAPI scheme's name (default ``"oidc_guard"``).
    :param description: the OpenAPI scheme's description.

    Other keywords (``dpop``, ``public_url``, ``client_cert_header``,
    ``accept_query``, ``dpop_*``) are those of
    :class:`oidc_guard.auth.Authenticator`.
    """

    def __init__(
        self,
        validator: AccessTokenValidator,
        *,
        realm: Optional[str] = None,
        auto_error: bool = True,
        openid_connect_url: Optional[str] = None,
        authorization_url: Optional[str] = None,
        token_url: Optional[str] = None,
        refresh_url: Optional[str] = None,
        scopes: Optional[Mapping[str, str]] = None,
        scheme_name: Optional[str] = None,
        description: Optional[str] = None,
        **policy: Any,
    ) -> None:
        for name in ("required", "accept_form", "logger"):
            if name in policy:
                raise TypeError(f"OIDCGuard() takes no {name}=: the dependency decides per route "
                                f"(put oidc_guard.asgi.BearerMiddleware in front for {name})")
        #: the policy: what is read, validated, bound and challenged
        self.authenticator = Authenticator(validator, realm=realm, logger=logger, **policy)
        self.auto_error = bool(auto_error)
        self.scheme_name = scheme_name or "oidc_guard"
        self.model = _scheme(validator, openid_connect_url, authorization_url, token_url, refresh_url, scopes,
                             description)
        self._rules: Dict[Tuple[str, ...], Rule] = {}

    @property
    def validator(self) -> AccessTokenValidator:
        return self.authenticator.validator

    def __repr__(self) -> str:
        return f"OIDCGuard(realm={self.authenticator.realm!r}, scheme={self.model.type_.value!r})"

    async def authenticate(self, connection: HTTPConnection) -> AuthResult:
        """The connection's :class:`~oidc_guard.auth.AuthResult`: the one
        already recorded for this validator, else a new one, recorded."""
        scope = connection.scope
        validator = self.authenticator.validator
        result = scope.get(SCOPE_RESULT)
        if isinstance(result, AuthResult) and scope.get(SCOPE_VALIDATOR) is validator:
            return result
        result = await authenticate_async(self.authenticator, scope_facts(scope))
        scope[SCOPE_RESULT] = result
        scope[SCOPE_CLAIMS] = result.claims
        scope[SCOPE_ERROR] = result.error
        scope[SCOPE_VALIDATOR] = validator
        return result

    async def __call__(self, connection: HTTPConnection, response: Response,
                       security_scopes: SecurityScopes) -> Optional[Claims]:
        return await self._decide(connection, response, self._rule(security_scopes.scopes), self.auto_error)

    def require_acr(self, *values: str) -> Callable[..., Awaitable[Optional[Claims]]]:
        """A dependency (``Depends(guard.require_acr("urn:a", "urn:b"))``)
        returning the Claims of a valid token whose ``acr`` is one of
        ``values``; otherwise 401 ``insufficient_user_authentication`` with
        ``acr_values`` (RFC 9470 section 3), as ``require_acr`` of every
        adapter (:class:`oidc_guard.rules.AcrRule`)."""
        return self._requiring(AcrRule(values))

    def require_auth_time(self, *, max_age: int) -> Callable[..., Awaitable[Optional[Claims]]]:
        """A dependency returning the Claims of a valid token whose
        ``auth_time`` is at most ``max_age`` seconds old; otherwise 401
        ``insufficient_user_authentication`` with ``max_age`` (RFC 9470
        section 3; :class:`oidc_guard.rules.AuthTimeRule`)."""
        return self._requiring(AuthTimeRule(max_age))

    def _requiring(self, rule: Rule) -> Callable[..., Awaitable[Optional[Claims]]]:
        async def step_up(connection: HTTPConnection, response: Response) -> Optional[Claims]:
            return await self._decide(connection, response, rule, True)

        return step_up

    async def _decide(self, connection: HTTPConnection, response: Response, rule: Optional[Rule],
                      auto_error: bool) -> Optional[Claims]:
        """The one decision of every dependency: authenticate (once per
        request), evaluate ``rule``, return the Claims or raise the
        refusal."""
        result = await self.authenticate(connection)
        claims = result.claims
        if claims is None and result.error is None and not auto_error:
            return None  # no token, optional authentication
        denied = evaluate(result, rule)
        if denied is None:
            if result.dpop_nonce is not None:
                response.headers["DPoP-Nonce"] = result.dpop_nonce  # RFC 9449 section 9
            return claims
        if claims is not None:  # a refused token was logged when it was authenticated
            log_denial(logger, where(scope_facts(connection.scope)), denied)
        raise _refusal(connection, result.render(denied))

    def serve_metadata(self, app: Any) -> str:
        """Serve the RFC 9728 protected resource metadata of ``resource=`` on
        ``app`` (a FastAPI or Starlette application at the root of its
        host): ``GET``, ``HEAD`` and the CORS preflight at the well-known
        path (RFC 9728 section 3.1), left out of the OpenAPI schema; the
        answers are :meth:`oidc_guard.auth.Authenticator.metadata_response`'s,
        as every adapter sends them.  Returns the path.  (Behind
        :class:`oidc_guard.asgi.BearerMiddleware` with the same ``resource=``
        the middleware answers it already.)"""
        metadata = self.authenticator.metadata
        if metadata is None:
            raise ConfigurationError("serve_metadata() needs OIDCGuard(..., resource='https://...'): the document "
                                     "describes that resource")
        authenticator = self.authenticator

        async def protected_resource_metadata(request: Request) -> Response:
            answer = authenticator.metadata_response(request.method, metadata.url_path)
            assert answer is not None  # routed here only for that path
            return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))

        app.add_route(metadata.url_path, protected_resource_metadata, methods=["GET", "HEAD", "OPTIONS"],
                      include_in_schema=False)
        return metadata.url_path

    async def userinfo(self, connection: HTTPConnection) -> Optional[Mapping[str, Any]]:
        """The UserInfo profile (OpenID Connect Core 5.3) of the request's
        user through :meth:`TokenValidator.userinfo
        <oidc_guard.TokenValidator.userinfo>` (cached per token; the call
        runs off the event loop), or ``None`` for an anonymous request.  A
        refusal or an outage of the provider raises the same
        ``HTTPException`` a refused token gets (401, or 503 with
        ``Retry-After``), never a 500."""
        result = await self.authenticate(connection)
        if result.claims is None or result.credential is None:
            return None
        userinfo = getattr(self.authenticator.validator, "userinfo", None)
        if userinfo is None:
            raise ConfigurationError(f"the validator {type(self.authenticator.validator).__name__} has no userinfo()")
        try:
            # The token as it was authenticated: never extracted a second time.
            profile = await run_off_loop(userinfo, result.credential.token, result.claims)
        except OIDCGuardError as exc:
            logger.info("UserInfo refused %s reason=%s: %s", where(scope_facts(connection.scope)), exc.reason,
                        exc.description)
            raise _refusal(connection, result.render(exc)) from None
        return cast(Mapping[str, Any], profile)

    def _rule(self, scopes: Any) -> Optional[Rule]:
        if not scopes:
            return None
        key = tuple(scopes)
        rule = self._rules.get(key)
        if rule is None:
            rule = scope_rule(key, "all", "Security")
            if len(self._rules) < _MAX_RULES:
                self._rules[key] = rule
        return rule


def _refusal(connection: HTTPConnection, response: ErrorResponse) -> Exception:
    """The exception FastAPI turns into ``response``: an ``HTTPException``
    (body ``{"detail": {...}}``), or for a websocket handshake a
    ``WebSocketException`` closing it with 1008 (RFC 6455 section 7.4.1)."""
    if connection.scope.get("type") == "websocket":
        return WebSocketException(WEBSOCKET_POLICY_CLOSE, response.body.get("error", "unauthorized"))
    headers = {name: value for name, value in response.headers if name != "Content-Type"}
    return HTTPException(status_code=response.status, detail=response.body, headers=headers)


def _scheme(validator: Any, openid_connect_url: Optional[str], authorization_url: Optional[str],
            token_url: Optional[str], refresh_url: Optional[str], scopes: Optional[Mapping[str, str]],
            description: Optional[str]) -> Any:
    """The OpenAPI security scheme (OpenAPI 3.1 section 4.8.27)."""
    if (authorization_url is None) != (token_url is None):
        raise TypeError("OIDCGuard(): give authorization_url and token_url together (an oauth2 scheme with an "
                        "authorization code flow), or neither (openIdConnect)")
    for name, value in (("authorization_url", authorization_url), ("token_url", token_url),
                        ("refresh_url", refresh_url), ("openid_connect_url", openid_connect_url)):
        if value is not None and (not isinstance(value, str) or not value.startswith(("https://", "http://"))):
            raise TypeError(f"OIDCGuard(): {name} must be an absolute http(s) URL, got {value!r}")
    if scopes is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(scopes).items()):
        raise TypeError("OIDCGuard(): scopes maps each scope name (str) to its description (str)")
    if authorization_url is not None and token_url is not None:
        if openid_connect_url is not None:
            raise TypeError("OIDCGuard(): openid_connect_url or authorization_url/token_url, not both")
        flow = OAuthFlowAuthorizationCode(authorizationUrl=authorization_url, tokenUrl=token_url,
                                          refreshUrl=refresh_url, scopes=dict(scopes or {}))
        return OAuth2(flows=OAuthFlows(authorizationCode=flow), description=description)
    if openid_connect_url is None:
        issuer = getattr(validator, "issuer", None)
        if not isinstance(issuer, str):
            raise TypeError("OIDCGuard(): this validator has no single issuer; give openid_connect_url (or "
                            "authorization_url and token_url) for the OpenAPI scheme")
        openid_connect_url = discovery_url(issuer)
    return OpenIdConnect(openIdConnectUrl=openid_connect_url, description=description)
