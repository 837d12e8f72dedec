"""The contacts API: a Flask resource server protected by ``oidc_guard.flask``.

Routes (all answers are JSON):

=====================  ==============  =====================================================
route                  needs           what it does
=====================  ==============  =====================================================
GET  /health           nothing         liveness; never touches the identity provider
POST /contacts/import  scope contacts  associate e-mail addresses with the caller's account
GET  /contacts         scope contacts  the caller's own contacts, nobody else's
DELETE /contacts/<e>   scope contacts  remove one of the caller's contacts; needs a stronger
                       + acr loa:2     sign-in (``acr`` urn:oidc-guard:loa:2): otherwise 401
                                       ``insufficient_user_authentication`` with
                                       ``acr_values`` (RFC 9470 step-up), and the SPA signs
                                       the user in again with them
POST /wte/jobs         scope wte       record a back-end job; client-credentials tokens
                                       (no ``sub``, or ``sub`` == client id) are welcome
GET  /coordinate       scope coordinate  the "coordinate" app's entry point
GET  /me               a user token    the caller's profile from the provider's UserInfo
                                       endpoint (OIDC Core 5.3), cached per token
POST /session/handoff  any valid token  the SPA posts its id_token + nonce; the API checks
                                       it (OIDC Core 3.2.2.11, at_hash against this
                                       request's access token) and says who the user is
=====================  ==============  =====================================================

Nothing is ever sent to an imported address: importing only stores it.

Configuration: ``create_app(config)`` takes a mapping; anything not in it comes
from environment variables, and anything not there from defaults that match
the development provider started by ``examples/demo.py``:

=========================  ==========================  ==============================
config key                 environment variable        default
=========================  ==========================  ==============================
OIDC_GUARD_ISSUER          CONTACTS_API_ISSUER         http://127.0.0.1:5000
OIDC_GUARD_AUDIENCE        CONTACTS_API_AUDIENCE       api://contacts
OIDC_GUARD_REALM           CONTACTS_API_REALM          contacts-api
OIDC_GUARD_RESOURCE        CONTACTS_API_RESOURCE       (none): this API's URL; publishes the
                                                       RFC 9728 metadata for it
SPA_CLIENT_ID              CONTACTS_API_SPA_CLIENT_ID  spa
CONTACTS_DB_PATH           CONTACTS_API_DB             <this folder>/instance/contacts.sqlite3
CORS_ALLOWED_ORIGINS       CONTACTS_API_CORS_ORIGINS   http://127.0.0.1:5002 http://localhost:5002
LEGACY_ISSUER              CONTACTS_API_LEGACY_ISSUER  (none)
LEGACY_AUDIENCE            CONTACTS_API_LEGACY_AUDIENCE  <legacy issuer>/resources
=========================  ==========================  ==============================

Migration mode: with ``LEGACY_ISSUER`` set (the old IdentityServer v3, say),
the API accepts the tokens of both providers at once through a
:class:`~oidc_guard.MultiIssuerValidator` (``OIDC_GUARD_ISSUERS``): the new
provider's (``typ`` ``at+jwt``, ``scope`` a string, ``aud`` the API) and the
old one's (``typ`` ``JWT``, ``scope`` a JSON array, ``aud``
``<issuer>/resources``, no ``sub`` in client tokens).  Each token is checked
against its own issuer's keys and audience; every route works the same for
both.  Remove the variable when the last old token has expired.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from oidc_guard import InvalidToken, MultiIssuerValidator, OIDCGuardError, ProviderError, TokenValidator
from oidc_guard.errors import PROVIDER_UNAVAILABLE
from oidc_guard.flask import OIDCGuard, current_claims, current_userinfo, require_acr, require_scope, require_token
from oidc_guard.resource import metadata_url

from .db import ContactLimitExceeded, Store

__all__ = ["create_app", "normalise_email", "CorsMiddleware"]

HERE = os.path.dirname(os.path.abspath(__file__))

DEFAULTS: Dict[str, Tuple[str, Any]] = {
    # config key: (environment variable, default)
    "OIDC_GUARD_ISSUER": ("CONTACTS_API_ISSUER", "http://127.0.0.1:5000"),
    "OIDC_GUARD_AUDIENCE": ("CONTACTS_API_AUDIENCE", "api://contacts"),
    "OIDC_GUARD_REALM": ("CONTACTS_API_REALM", "contacts-api"),
    # RFC 9728 / RFC 8707: this API's resource identifier (its URL), optional
    "OIDC_GUARD_RESOURCE": ("CONTACTS_API_RESOURCE", None),
    "SPA_CLIENT_ID": ("CONTACTS_API_SPA_CLIENT_ID", "spa"),
    "CONTACTS_DB_PATH": ("CONTACTS_API_DB", os.path.join(HERE, "instance", "contacts.sqlite3")),
    "CORS_ALLOWED_ORIGINS": ("CONTACTS_API_CORS_ORIGINS", "http://127.0.0.1:5002 http://localhost:5002"),
    # migration mode (see the module doc): the old provider, trusted too
    "LEGACY_ISSUER": ("CONTACTS_API_LEGACY_ISSUER", None),
    "LEGACY_AUDIENCE": ("CONTACTS_API_LEGACY_AUDIENCE", None),
}

#: request bodies above this are refused with 413 before they are parsed
MAX_CONTENT_LENGTH = 64 * 1024
#: addresses per import request
MAX_IMPORT_EMAILS = 500
#: addresses one account may hold
MAX_CONTACTS_PER_OWNER = 5000
#: how many bad entries a 400 lists (the rest are counted, not listed)
MAX_REPORTED_ERRORS = 20
#: an OIDC nonce is an opaque string; ours are 43 characters, 512 is generous
MAX_NONCE_LENGTH = 512
#: the authentication context class deleting a contact needs (RFC 9470
#: step-up): the development provider's "stronger sign-in" level
DELETE_ACR = "urn:oidc-guard:loa:2"


# --- input validation --------------------------------------------------------

# RFC 5322 section 3.2.3 "atext", the characters of a dot-atom local part.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
# RFC 1035 section 2.3.1 host name labels (letters, digits, inner hyphens).
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def normalise_email(value: Any) -> str:
    """Return the address in canonical form (domain lower-cased), or raise
    ``ValueError`` saying in plain words what is wrong with it.

    Deliberately strict and boring: ASCII dot-atom addresses with a dotted
    host name (RFC 5321 section 4.1.2 / RFC 5322 section 3.4.1 without quoted
    strings, comments or address literals), at most 254 characters
    (RFC 5321 section 4.5.3.1 limits plus the path's angle brackets).
    """
    if not isinstance(value, str):
        raise ValueError("must be a string")
    address = value.strip()
    if not address:
        raise ValueError("is empty")
    if len(address) > 254:
        raise ValueError("is longer than 254 characters")
    if not address.isascii():
        raise ValueError("contains non-ASCII characters (not supported by this example)")
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise ValueError("is not an e-mail address (expected name@example.com)")
    if len(local) > 64:
        raise ValueError("has a part before '@' longer than 64 characters")
    if not _LOCAL_PART.match(local):
        raise ValueError("has characters not allowed before '@'")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("has an invalid domain after '@'")
    if labels[-1].isdigit():
        raise ValueError("has a numeric top-level domain")
    return local + "@" + domain.lower()


def _bad_request(description: str, **extra: Any):
    body: Dict[str, Any] = {"error": "invalid_request", "error_description": description}
    body.update(extra)
    return jsonify(body), 400


def _needs_user(what: str):
    """403 for a client-credentials token on a route that acts for a user:
    such a token has no end-user (no ``sub``, or ``sub`` == client id,
    RFC 9068 section 2.2), so there is no account to act on."""
    body = {
        "error": "access_denied",
        "error_description": f"{what} needs a user's access token; this is a client-credentials token",
    }
    return jsonify(body), 403


def _json_object() -> Optional[Dict[str, Any]]:
    """The request body as a JSON object, or None when it is not one."""
    if not request.is_json:
        return None
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def _owner() -> Tuple[str, str]:
    """(iss, sub) of the caller.  Routes that call this require a user token."""
    claims = current_claims
    return claims.issuer or "", claims.subject or ""


def _bearer_token_from_header() -> Optional[str]:
    """The raw access token of this request (RFC 6750 section 2.1).

    The middleware already verified it; we only need the exact string for
    the at_hash comparison of the handoff.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


# --- CORS --------------------------------------------------------------------


class CorsMiddleware:
    """Cross-origin access for the single-page app (Fetch standard, CORS
    protocol), applied outermost so that even the errors the bearer
    middleware answers by itself (400/401/503) are readable by the SPA.

    ``allowed_origins``: exact origins (scheme://host:port) allowed to call the
    API from a browser.  There is no wildcard on purpose.  Credentials
    (cookies) are not allowed: the API only takes bearer tokens, which the
    browser never attaches by itself, so CSRF does not apply.
    """

    ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
    # DPoP: a browser client sends its proof in the DPoP header (RFC 9449).
    ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
    # Let the SPA read the RFC 6750 challenge and Retry-After on errors, and
    # the server nonce of a use_dpop_nonce answer (RFC 9449 section 9).
    EXPOSE_HEADERS = "WWW-Authenticate, Retry-After, DPoP-Nonce"
    MAX_AGE = "600"

    def __init__(self, app, allowed_origins: Iterable[str], public_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins if o)
        # Paths that answer CORS themselves for every origin (the RFC 9728
        # metadata: public, "Access-Control-Allow-Origin: *"), passed through.
        self.public_paths = frozenset(public_paths)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") in self.public_paths:
            return self.app(environ, start_response)
        origin = environ.get("HTTP_ORIGIN")
        allowed = origin is not None and origin in self.allowed_origins
        if (
            environ.get("REQUEST_METHOD") == "OPTIONS"
            and origin is not None
            and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        ):
            # Preflight: answered here, never reaches the app or the guard
            # (a preflight carries no token by design).
            headers = [("Vary", "Origin"), ("Content-Length", "0")]
            if allowed:
                headers += [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Allow-Methods", self.ALLOW_METHODS),
                    ("Access-Control-Allow-Headers", self.ALLOW_HEADERS),
                    ("Access-Control-Max-Age", self.MAX_AGE),
                ]
            start_response("204 No Content", headers)
            return [b""]

        def cors_start_response(status, headers, exc_info=None):
            headers = [h for h in headers if not h[0].lower().startswith("access-control-")]
            headers.append(("Vary", "Origin"))
            if allowed:
                headers.append(("Access-Control-Allow-Origin", origin))
                headers.append(("Access-Control-Expose-Headers", self.EXPOSE_HEADERS))
            return start_response(status, headers, exc_info)

        return self.app(environ, cors_start_response)


# --- the application ---------------------------------------------------------


def _settings(config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    settings: Dict[str, Any] = {}
    for key, (env_name, default) in DEFAULTS.items():
        settings[key] = os.environ.get(env_name, default)
    settings.update(config or {})
    origins = settings["CORS_ALLOWED_ORIGINS"]
    if isinstance(origins, str):
        origins = origins.replace(",", " ").split()
    settings["CORS_ALLOWED_ORIGINS"] = list(origins)
    settings.setdefault("MAX_CONTENT_LENGTH", MAX_CONTENT_LENGTH)
    settings.setdefault("MAX_IMPORT_EMAILS", MAX_IMPORT_EMAILS)
    settings.setdefault("MAX_CONTACTS_PER_OWNER", MAX_CONTACTS_PER_OWNER)
    legacy = settings.get("LEGACY_ISSUER")
    if legacy:
        # Migration mode: both issuers, each with its own audience.  The
        # new provider stays the SPA's (its id_tokens are checked in the
        # handoff); IdentityServer v3's resource audience is
        # <issuer>/resources unless told otherwise.
        settings["CONTACTS_ISSUER"] = settings["OIDC_GUARD_ISSUER"]
        current: Dict[str, Any] = {"issuer": settings.pop("OIDC_GUARD_ISSUER"),
                                   "audience": settings.pop("OIDC_GUARD_AUDIENCE")}
        # Reference tokens come from the new provider only: its introspection
        # settings belong to its entry (one member may introspect).
        for key in [k for k in settings if k.startswith("OIDC_GUARD_INTROSPECTION_")
                    or k in ("OIDC_GUARD_VALIDATION_MODE", "OIDC_GUARD_SHARED_CACHE")]:
            current[key[len("OIDC_GUARD_"):].lower()] = settings.pop(key)
        settings["OIDC_GUARD_ISSUERS"] = [
            current,
            {"issuer": legacy, "audience": settings.get("LEGACY_AUDIENCE") or legacy.rstrip("/") + "/resources"},
        ]
    else:
        settings["CONTACTS_ISSUER"] = settings["OIDC_GUARD_ISSUER"]
    return settings


def create_app(config: Optional[Mapping[str, Any]] = None) -> Flask:
    """Build the contacts API.  ``config`` overrides environment and defaults."""
    app = Flask(__name__, instance_path=os.path.join(HERE, "instance"))
    app.config.update(_settings(config))
    app.json.sort_keys = False

    store = Store(app.config["CONTACTS_DB_PATH"], max_contacts_per_owner=int(app.config["MAX_CONTACTS_PER_OWNER"]))
    app.extensions["contacts_store"] = store

    # The guard: validates every bearer token (signature against the issuer's
    # JWKS, iss, aud, exp, ...) and puts the Claims where current_claims and
    # the decorators find them.  Anonymous requests go on (required=False) so
    # /health stays public; each protected view says what it needs.
    guard = OIDCGuard(app)
    app.extensions["contacts_guard"] = guard

    def id_token_validator() -> Any:
        # Reuse the guard's validator (same issuer, same cached discovery and
        # JWKS) when it exposes one; otherwise one of our own for the issuer.
        # A MultiIssuerValidator (migration mode) routes the id_token to its
        # issuer's member just as it does access tokens.
        validator = guard.state(app).validator
        if isinstance(validator, (TokenValidator, MultiIssuerValidator)):
            return validator
        own = app.extensions.get("contacts_id_token_validator")
        if own is None:
            own = TokenValidator(issuer=app.config["CONTACTS_ISSUER"], audience=app.config["SPA_CLIENT_ID"])
            app.extensions["contacts_id_token_validator"] = own
        return own

    # --- errors as JSON ----------------------------------------------------
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        names = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        body = {"error": names.get(exc.code or 500, "error"), "error_description": exc.description}
        response = jsonify(body)
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # --- routes ------------------------------------------------------------
    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.get("/me")
    @require_token
    def me():
        # The profile comes from the provider (UserInfo), not from the token:
        # current_userinfo() answers 401/503 itself when the provider
        # refuses the token or is down, and 401 for a DPoP- or
        # certificate-bound token (only the client's key can present it).
        if current_claims.is_client_token:
            return _needs_user("a profile")
        return jsonify(profile=dict(current_userinfo() or {}))

    @app.post("/contacts/import")
    @require_scope("contacts")
    def import_contacts():
        if current_claims.is_client_token:
            return _needs_user("importing contacts")
        data = _json_object()
        if data is None:
            return _bad_request('send a JSON object like {"emails": ["ann@example.com"]} with Content-Type: application/json')
        emails = data.get("emails")
        if not isinstance(emails, list):
            return _bad_request('"emails" must be a list of e-mail addresses')
        limit = int(current_app.config["MAX_IMPORT_EMAILS"])
        if not emails:
            return _bad_request('"emails" is empty: send at least one address')
        if len(emails) > limit:
            return _bad_request(f'"emails" has {len(emails)} entries; at most {limit} per request')
        clean: List[str] = []
        problems: List[Dict[str, Any]] = []
        for index, value in enumerate(emails):
            try:
                clean.append(normalise_email(value))
            except ValueError as exc:
                problems.append({"index": index, "value": value[:100] if isinstance(value, str) else None, "reason": str(exc)})
        if problems:
            # All or nothing: a partly applied import is harder to reason about.
            return _bad_request(
                f"{len(problems)} of {len(emails)} entries are not valid e-mail addresses; nothing was imported",
                invalid=problems[:MAX_REPORTED_ERRORS],
            )
        iss, sub = _owner()
        try:
            result = store.import_contacts(iss, sub, clean)
        except ContactLimitExceeded as exc:
            return _bad_request(str(exc))
        return jsonify(sub=sub, **result.to_dict())

    @app.get("/contacts")
    @require_scope("contacts")
    def list_contacts():
        if current_claims.is_client_token:
            return _needs_user("listing contacts")
        iss, sub = _owner()
        contacts = store.list_contacts(iss, sub)
        return jsonify(sub=sub, count=len(contacts), contacts=contacts)

    @app.delete("/contacts/<path:email>")
    @require_scope("contacts")
    @require_acr(DELETE_ACR)
    def delete_contact(email: str):
        # Step-up (RFC 9470): a token from a password-only sign-in (acr
        # urn:oidc-guard:loa:1, or none) gets 401 insufficient_user_authentication
        # with acr_values="urn:oidc-guard:loa:2"; the client signs in again.
        if current_claims.is_client_token:
            return _needs_user("deleting contacts")
        iss, sub = _owner()
        if not store.delete_contact(iss, sub, email):
            return jsonify(error="not_found", error_description="you have no contact with this address"), 404
        return jsonify(deleted=email, acr=current_claims.get("acr"))

    @app.post("/wte/jobs")
    @require_scope("wte")
    def create_wte_job():
        claims = current_claims
        data = _json_object() if request.content_length else {}
        if data is None:
            return _bad_request("send a JSON object (or an empty body)")
        kind = data.get("kind", "sync")
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z0-9_-]{1,64}", kind):
            return _bad_request('"kind" must be 1-64 characters of a-z, 0-9, "_" or "-"')
        payload = data.get("payload", {})
        if not isinstance(payload, dict):
            return _bad_request('"payload" must be a JSON object')
        job = store.record_job(claims.issuer or "", claims.client_id, claims.subject, kind, payload)
        return jsonify(job=job, client_token=claims.is_client_token), 202

    @app.get("/coordinate")
    @require_scope("coordinate")
    def coordinate():
        claims = current_claims
        return jsonify(
            message="coordinate: you may coordinate",
            sub=claims.subject,
            client_id=claims.client_id,
            scopes=sorted(claims.scopes),
        )

    @app.post("/session/handoff")
    @require_token()
    def session_handoff():
        """Check the SPA's id_token and say who the user is.

        OIDC Core 3.2.2.11 (implicit flow): the id_token must be valid for the
        SPA's client id, carry the nonce the SPA sent in its authentication
        request, and its ``at_hash`` must match the access token delivered
        with it -- here, the bearer token of this very request, which binds
        the two tokens together.  Finally the id_token's ``sub`` must be the
        access token's ``sub``.
        """
        access = current_claims
        if access.is_client_token:
            return _needs_user("the session handoff")
        data = _json_object()
        if data is None:
            return _bad_request('send a JSON object {"id_token": "...", "nonce": "..."}')
        id_token = data.get("id_token")
        nonce = data.get("nonce")
        if not isinstance(id_token, str) or not id_token:
            return _bad_request('"id_token" is missing')
        if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_LENGTH:
            return _bad_request('"nonce" is missing (the implicit flow requires one; OIDC Core 3.2.2.1)')
        bearer = _bearer_token_from_header()
        if bearer is None:
            return _bad_request("send the access token in the Authorization header for the handoff")
        client_id = current_app.config["SPA_CLIENT_ID"]
        try:
            id_claims = id_token_validator().validate_id_token(
                id_token, client_id=client_id, nonce=nonce, access_token=bearer
            )
        except ProviderError as exc:
            # The reason names the provider's URLs: the log has it (WARNING,
            # once per outage, from oidc_guard.jwks); the client gets the
            # library's fixed sentence.
            current_app.logger.info("id_token handoff: identity provider unusable: %s", exc.description)
            response = jsonify(error=exc.error, error_description=PROVIDER_UNAVAILABLE)
            response.status_code = 503
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except (InvalidToken, OIDCGuardError) as exc:
            # 400, not 401: the access token was fine; it is the id_token
            # in the body that failed, and a 401 would tell the client to
            # throw away a good access token.
            return jsonify(error="invalid_id_token", error_description=exc.description), 400
        if id_claims.subject != access.subject:
            return jsonify(
                error="invalid_id_token",
                error_description="the id_token's sub is not the access token's sub: they belong to different users",
            ), 400
        user = {name: id_claims[name] for name in ("sub", "name", "preferred_username", "email") if name in id_claims}
        return jsonify(
            user=user,
            issuer=id_claims.issuer,
            client_id=client_id,
            auth_time=id_claims.get("auth_time"),
            id_token_expires_at=id_claims.expires_at.isoformat() if id_claims.expires_at else None,
            access_token_expires_at=access.expires_at.isoformat() if access.expires_at else None,
            scopes=sorted(access.scopes),
            checked=[
                "signature (issuer JWKS)",
                "iss",
                f"aud contains {client_id}",
                "exp / iat",
                "nonce",
                "at_hash matches the bearer token",
                "sub equals the access token's sub",
            ],
        )

    # Outermost: CORS, so every answer (including the guard's own 400/401/503)
    # carries the headers the SPA needs to read it.
    resource = app.config.get("OIDC_GUARD_RESOURCE")
    public = [urlsplit(metadata_url(resource)).path] if resource else []
    app.wsgi_app = CorsMiddleware(app.wsgi_app, app.config["CORS_ALLOWED_ORIGINS"], public_paths=public)
    return app
