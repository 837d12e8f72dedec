"""The development provider's endpoints that answer for a token it issued:
``/userinfo`` (OIDC Core 5.3), ``/introspect`` (RFC 7662) and ``/revoke``
(RFC 7009).

**Development only, not for production.**
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from .endpoint import OAuthError, Request, RequestHandler, authenticate_client

__all__ = ["get_userinfo", "post_introspect", "post_revoke"]


def get_userinfo(handler: RequestHandler, request: Request) -> None:
    """UserInfo endpoint (OIDC Core 5.3; development only). Accepts only
    an access token from the Authorization header (RFC 6750 2.1), checks
    it with PyJWT against this issuer's own keys (the alg comes from the
    key, never from the token), and answers with the user's claims for
    the token's scopes. Errors: RFC 6750 section 3."""
    import jwt

    if handler.answer_fault("userinfo"):
        return
    provider = handler.provider
    scheme, _, token = (handler.headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _bearer_error(handler, "invalid_request", "no bearer token")
        return
    token = token.strip()
    if "." not in token:  # a reference token: what /introspect would say
        answer = provider.introspect(token)
        if not answer.get("active") or not isinstance(answer.get("sub"), str):
            _bearer_error(handler, "invalid_token", "access token rejected")
            return
        if _refuse_bound(handler, answer):
            return
        _userinfo_answer(handler, answer)
        return
    try:
        claims = provider.verify_access_token(token)
    except jwt.InvalidTokenError as exc:
        _bearer_error(handler, "invalid_token", f"access token rejected: {exc}")
        return
    if provider.is_revoked(claims.get("jti")):
        _bearer_error(handler, "invalid_token", "access token revoked")
        return
    if _refuse_bound(handler, claims):
        return
    _userinfo_answer(handler, claims)


def _bearer_error(handler: RequestHandler, error: str, description: str) -> None:
    """RFC 6750 section 3 401 of the UserInfo endpoint."""
    challenge = 'Bearer realm="oidc_guard-dev"'
    if error != "invalid_request":  # no token at all: a bare challenge (3.1)
        challenge += f', error="{error}"'
    handler.respond_json(401, {"error": error, "error_description": description}, [("WWW-Authenticate", challenge)])


def _refuse_bound(handler: RequestHandler, claims: Mapping[str, Any]) -> bool:
    """A sender-constrained token sent as a plain bearer token: 401, as
    npm oidc-provider answers ("failed jkt verification"). RFC 9449
    section 7.1: a DPoP-bound token needs a proof of the client's key;
    RFC 8705 section 3: a certificate-bound one the client's certificate.
    This endpoint takes neither, so it refuses both."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, Mapping) or (cnf.get("jkt") is None and cnf.get("x5t#S256") is None):
        return False
    what = "jkt" if cnf.get("jkt") is not None else "x5t#S256"
    _bearer_error(handler, "invalid_token", f"failed {what} verification")
    return True


def _userinfo_answer(handler: RequestHandler, claims: Mapping[str, Any]) -> None:
    scope = claims.get("scope", "")
    scopes = set(scope.split() if isinstance(scope, str) else scope)
    out: Dict[str, Any] = {"sub": claims["sub"]}
    user = handler.provider.user_by_subject(claims["sub"]) or {}
    if "profile" in scopes and "name" in user:
        out["name"] = user["name"]
    if "email" in scopes and "email" in user:
        out["email"] = user["email"]
    handler.respond_json(200, out, [("Cache-Control", "no-store")])


def post_introspect(handler: RequestHandler, request: Request) -> None:
    """RFC 7662 (development only): a confidential client authenticates
    (2.1: basic or post); ``token`` is required; the answer is
    :meth:`LocalIssuer.introspect`. A client failing authentication gets
    401 ``invalid_client`` (RFC 6749 5.2). The issuer counts the requests
    being answered at once (``introspection_max_in_flight``)."""
    with handler.provider.introspection_call():
        if handler.answer_fault("introspection"):
            return
        _introspect(handler)


def _introspect(handler: RequestHandler) -> None:
    form, error = handler.read_form()
    no_store = [("Cache-Control", "no-store")]
    try:
        if error:
            raise OAuthError("invalid_request", error)
        _client_id, client, _method = authenticate_client(handler, form)
        if client.get("secret") is None:
            raise OAuthError("invalid_client", "only confidential clients may introspect", 401)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing")
    except OAuthError as exc:
        handler.respond_oauth_error(exc, no_store)
        return
    handler.respond_json(200, handler.provider.introspect(token), no_store)


def post_revoke(handler: RequestHandler, request: Request) -> None:
    """RFC 7009 section 2.1 (development only): a client authenticates and
    revokes ``token``; 200 whatever the token was (2.2)."""
    form, error = handler.read_form()
    try:
        if error:
            raise OAuthError("invalid_request", error)
        authenticate_client(handler, form)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing")
    except OAuthError as exc:
        handler.respond_oauth_error(exc)
        return
    handler.provider.revoke(token)
    handler.respond(200, b"", "text/plain")
