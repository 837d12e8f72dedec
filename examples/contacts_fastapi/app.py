"""The contacts API as a FastAPI app, protected by ``oidc_guard.fastapi``:
the routes, scopes and answers of the Flask one (``examples/contacts_api``),
with its storage, its e-mail rules and its configuration keys.

=====================  ==============  =====================================================
route                  needs           what it does
=====================  ==============  =====================================================
GET  /health           nothing         liveness; never touches the identity provider
POST /contacts/import  scope contacts  associate e-mail addresses with the caller's account
GET  /contacts         scope contacts  the caller's own contacts, nobody else's
POST /wte/jobs         scope wte       record a back-end job (client-credentials tokens welcome)
GET  /coordinate       scope coordinate
GET  /me               a user token    the caller's UserInfo profile (OIDC Core 5.3)
POST /session/handoff  any valid token  the SPA's id_token + nonce checked (OIDC Core 3.2.2.11)
GET  /docs             nothing         Swagger UI; its Authorize button signs in with the
                                       provider (authorization code + PKCE)
=====================  ==============  =====================================================

The one difference a client sees: a refusal of the guard is FastAPI's
``{"detail": {"error": ..., "error_description": ...}}`` (status, and the
``WWW-Authenticate`` / ``Retry-After`` headers, are the Flask app's).

Configuration: the Flask app's keys and environment variables (see
``examples/contacts_api/app.py``), plus ``SWAGGER_CLIENT_ID`` (default
``swagger-ui``: a public client registered at the provider with the redirect
URI ``<api>/docs/oauth2-redirect``), ``OPENAPI_AUTHORIZATION_URL`` and
``OPENAPI_TOKEN_URL`` (default: the development provider's ``/authorize``
and ``/token`` under the issuer) and ``SWAGGER_UI_DIR`` (Swagger UI's
static files, default ``scripts/swagger-ui/node_modules/swagger-ui-dist``,
installed by ``scripts/install_swagger_ui.sh``; without them ``/docs`` is
404).  Run it on its own::

    CONTACTS_API_ISSUER=http://127.0.0.1:5000 \\
        uvicorn --factory examples.contacts_fastapi:create_app --port 5001
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles

from oidc_guard import Claims, MultiIssuerValidator, OIDCGuardError, ProviderError, TokenValidator, config
from oidc_guard._aio import run_off_loop
from oidc_guard.errors import PROVIDER_UNAVAILABLE
from oidc_guard.fastapi import OIDCGuard

from contacts_api.app import (  # the Flask example's rules and settings, shared
    MAX_NONCE_LENGTH, MAX_REPORTED_ERRORS, _settings, normalise_email,
)
from contacts_api.db import ContactLimitExceeded, Store

__all__ = ["create_app", "SWAGGER_SCOPES"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SWAGGER_UI_DIR = os.path.join(ROOT, "scripts", "swagger-ui", "node_modules", "swagger-ui-dist")

#: The scopes Swagger UI's Authorize dialog offers.
SWAGGER_SCOPES = {
    "openid": "sign in (OpenID Connect)",
    "contacts": "import and list your contacts",
    "wte": "record back-end jobs",
    "coordinate": "the coordinate app",
}


def _error(status: int, error: str, description: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description, **extra}, status_code=status)


def _bad_request(description: str, **extra: Any) -> JSONResponse:
    return _error(400, "invalid_request", description, **extra)


def _needs_user(what: str) -> JSONResponse:
    """403 for a client-credentials token on a route that acts for a user
    (no ``sub``, or ``sub`` == client id, RFC 9068 section 2.2)."""
    return _error(403, "access_denied", f"{what} needs a user's access token; this is a client-credentials token")


async def _json_object(request: Request, limit: int) -> Tuple[Optional[Dict[str, Any]], Optional[Response]]:
    """(the body as a JSON object or None, a 413 response when too large)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None, _error(413, "request_too_large", f"the body is over {limit} bytes")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None, None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None, _error(413, "request_too_large", f"the body is over {limit} bytes")
    try:
        data = json.loads(bytes(body))
    except ValueError:
        return None, None
    return (data if isinstance(data, dict) else None), None


def _validator(settings: Mapping[str, Any]) -> Any:
    """The validator the configuration table describes (one issuer, or
    several with ``OIDC_GUARD_ISSUERS`` in migration mode)."""
    issuers = settings.get("OIDC_GUARD_ISSUERS")
    if issuers:
        return MultiIssuerValidator([TokenValidator(**dict(entry)) for entry in issuers])
    return TokenValidator(**config.read_settings(settings, (config.VALIDATOR,)))


def create_app(config_overrides: Optional[Mapping[str, Any]] = None, *,
               validator: Optional[Any] = None) -> FastAPI:
    """Build the contacts API.  ``config_overrides`` overrides environment
    and defaults; ``validator``: use this one instead of building one (a
    validator shared with another app keeps one set of caches)."""
    settings = _settings(config_overrides)
    settings.setdefault("SWAGGER_CLIENT_ID", os.environ.get("CONTACTS_API_SWAGGER_CLIENT_ID", "swagger-ui"))
    settings.setdefault("SWAGGER_UI_DIR", DEFAULT_SWAGGER_UI_DIR)
    issuer = str(settings["CONTACTS_ISSUER"]).rstrip("/")
    settings.setdefault("OPENAPI_AUTHORIZATION_URL", issuer + "/authorize")
    settings.setdefault("OPENAPI_TOKEN_URL", issuer + "/token")
    limit = int(settings["MAX_CONTENT_LENGTH"])
    store = Store(settings["CONTACTS_DB_PATH"], max_contacts_per_owner=int(settings["MAX_CONTACTS_PER_OWNER"]))
    validator = validator if validator is not None else _validator(settings)

    # The guard: validates the token (signature against the issuer's JWKS,
    # iss, aud, exp, ...) on FastAPI's security dependency; each route
    # names its scopes, which the OpenAPI schema and Swagger UI show.
    guard = OIDCGuard(validator, realm=settings["OIDC_GUARD_REALM"],
                      authorization_url=settings["OPENAPI_AUTHORIZATION_URL"],
                      token_url=settings["OPENAPI_TOKEN_URL"], scopes=SWAGGER_SCOPES, scheme_name="contacts-oidc")

    app = FastAPI(title="contacts API (FastAPI)", docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None)
    app.state.store = store
    app.state.guard = guard
    app.state.settings = settings

    # --- errors as JSON (the guard's own refusals keep FastAPI's {"detail": ...})
    names = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.detail, dict):  # oidc_guard's refusal: status and challenge as rendered
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        response = _error(exc.status_code, names.get(exc.status_code, "error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _bad_request("the request does not fit this route")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # --- routes --------------------------------------------------------------
    @app.get("/health")
    async def health() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    async def me(request: Request, claims: Claims = Depends(guard)) -> Any:
        if claims.is_client_token:
            return _needs_user("a profile")
        return {"profile": dict(await guard.userinfo(request) or {})}

    @app.post("/contacts/import")
    async def import_contacts(request: Request, claims: Claims = Security(guard, scopes=["contacts"])) -> Any:
        if claims.is_client_token:
            return _needs_user("importing contacts")
        data, too_large = await _json_object(request, limit)
        if too_large is not None:
            return too_large
        if data is None:
            return _bad_request('send a JSON object like {"emails": ["ann@example.com"]} with '
                                'Content-Type: application/json')
        emails = data.get("emails")
        if not isinstance(emails, list):
            return _bad_request('"emails" must be a list of e-mail addresses')
        most = int(settings["MAX_IMPORT_EMAILS"])
        if not emails:
            return _bad_request('"emails" is empty: send at least one address')
        if len(emails) > most:
            return _bad_request(f'"emails" has {len(emails)} entries; at most {most} per request')
        clean: List[str] = []
        problems: List[Dict[str, Any]] = []
        for index, value in enumerate(emails):
            try:
                clean.append(normalise_email(value))
            except ValueError as exc:
                problems.append({"index": index, "value": value[:100] if isinstance(value, str) else None,
                                 "reason": str(exc)})
        if problems:
            return _bad_request(
                f"{len(problems)} of {len(emails)} entries are not valid e-mail addresses; nothing was imported",
                invalid=problems[:MAX_REPORTED_ERRORS])
        try:  # SQLite: blocking I/O, in a worker thread
            result = await run_off_loop(store.import_contacts, claims.issuer or "", claims.subject or "", clean)
        except ContactLimitExceeded as exc:
            return _bad_request(str(exc))
        return {"sub": claims.subject, **result.to_dict()}

    @app.get("/contacts")
    async def list_contacts(claims: Claims = Security(guard, scopes=["contacts"])) -> Any:
        if claims.is_client_token:
            return _needs_user("listing contacts")
        contacts = await run_off_loop(store.list_contacts, claims.issuer or "", claims.subject or "")
        return {"sub": claims.subject, "count": len(contacts), "contacts": contacts}

    @app.post("/wte/jobs", status_code=202)
    async def create_wte_job(request: Request, claims: Claims = Security(guard, scopes=["wte"])) -> Any:
        data: Optional[Dict[str, Any]] = {}
        if request.headers.get("content-length", "0") not in ("", "0"):
            data, too_large = await _json_object(request, limit)
            if too_large is not None:
                return too_large
        if data is None:
            return _bad_request("send a JSON object (or an empty body)")
        kind = data.get("kind", "sync")
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z0-9_-]{1,64}", kind):
            return _bad_request('"kind" must be 1-64 characters of a-z, 0-9, "_" or "-"')
        payload = data.get("payload", {})
        if not isinstance(payload, dict):
            return _bad_request('"payload" must be a JSON object')
        job = await run_off_loop(store.record_job, claims.issuer or "", claims.client_id, claims.subject, kind,
                                 payload)
        return {"job": job, "client_token": claims.is_client_token}

    @app.get("/coordinate")
    async def coordinate(claims: Claims = Security(guard, scopes=["coordinate"])) -> Any:
        return {"message": "coordinate: you may coordinate", "sub": claims.subject,
                "client_id": claims.client_id, "scopes": sorted(claims.scopes)}

    @app.post("/session/handoff")
    async def session_handoff(request: Request, access: Claims = Depends(guard)) -> Any:
        """The SPA's id_token: valid for the SPA, with the nonce it sent and
        an ``at_hash`` matching this request's access token (OIDC Core
        3.2.2.11), for the same ``sub`` as the access token."""
        if access.is_client_token:
            return _needs_user("the session handoff")
        data, too_large = await _json_object(request, limit)
        if too_large is not None:
            return too_large
        if data is None:
            return _bad_request('send a JSON object {"id_token": "...", "nonce": "..."}')
        id_token, nonce = data.get("id_token"), data.get("nonce")
        if not isinstance(id_token, str) or not id_token:
            return _bad_request('"id_token" is missing')
        if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_LENGTH:
            return _bad_request('"nonce" is missing (the implicit flow requires one; OIDC Core 3.2.2.1)')
        result = request.scope["oidc_guard.result"]
        if result.credential is None or result.credential.source != "header" or result.credential.scheme != "bearer":
            return _bad_request("send the access token in the Authorization header for the handoff")
        client_id = settings["SPA_CLIENT_ID"]
        try:
            id_claims = await run_off_loop(lambda: validator.validate_id_token(
                id_token, client_id=client_id, nonce=nonce, access_token=result.credential.token))
        except ProviderError as exc:
            response = _error(503, exc.error, PROVIDER_UNAVAILABLE)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except OIDCGuardError as exc:
            # 400, not 401: the access token was fine; the id_token failed.
            return _error(400, "invalid_id_token", exc.description)
        if id_claims.subject != access.subject:
            return _error(400, "invalid_id_token",
                          "the id_token's sub is not the access token's sub: they belong to different users")
        user = {name: id_claims[name] for name in ("sub", "name", "preferred_username", "email") if name in id_claims}
        return {
            "user": user, "issuer": id_claims.issuer, "client_id": client_id,
            "auth_time": id_claims.get("auth_time"),
            "id_token_expires_at": id_claims.expires_at.isoformat() if id_claims.expires_at else None,
            "access_token_expires_at": access.expires_at.isoformat() if access.expires_at else None,
            "scopes": sorted(access.scopes),
            "checked": ["signature (issuer JWKS)", "iss", f"aud contains {client_id}", "exp / iat", "nonce",
                        "at_hash matches the bearer token", "sub equals the access token's sub"],
        }

    # --- Swagger UI, served from local files (no CDN) ---------------------------------
    swagger_dir = settings["SWAGGER_UI_DIR"]
    if swagger_dir and os.path.isfile(os.path.join(swagger_dir, "swagger-ui-bundle.js")):
        app.mount("/docs/static", StaticFiles(directory=swagger_dir), name="swagger-ui")

        @app.get("/docs", include_in_schema=False)
        async def docs() -> Response:
            return get_swagger_ui_html(
                openapi_url="/openapi.json", title=app.title,
                swagger_js_url="/docs/static/swagger-ui-bundle.js", swagger_css_url="/docs/static/swagger-ui.css",
                swagger_favicon_url="/docs/static/favicon-32x32.png", oauth2_redirect_url="/docs/oauth2-redirect",
                # RFC 7636: Swagger UI is a public client, so PKCE (S256).
                init_oauth={"clientId": settings["SWAGGER_CLIENT_ID"], "usePkceWithAuthorizationCodeGrant": True,
                            "scopes": "openid contacts"})

        @app.get("/docs/oauth2-redirect", include_in_schema=False)
        async def oauth2_redirect() -> Response:
            return get_swagger_ui_oauth2_redirect_html()

    # Outermost: CORS for the SPA's origins only, without credentials, so
    # every answer (the guard's refusals included) is readable by the SPA.
    app.add_middleware(CORSMiddleware, allow_origins=list(settings["CORS_ALLOWED_ORIGINS"]),
                       allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type", "DPoP"],
                       expose_headers=["WWW-Authenticate", "Retry-After", "DPoP-Nonce"], max_age=600)
    return app
