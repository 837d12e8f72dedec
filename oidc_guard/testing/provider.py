"""The development provider's HTTP endpoints: discovery, JWKS, the login
page and ``/authorize``, ``/token``, ``/userinfo``, ``/introspect`` (RFC 7662)
and ``/revoke`` (RFC 7009).

**Development only, not for production**: hard-coded users, no sessions,
no CSRF protection. Each path is a row of :data:`ENDPOINTS` that maps HTTP
methods to small view methods of :class:`_Handler`; the state (keys, users,
clients, codes, faults) lives on :class:`~oidc_guard.testing.LocalIssuer`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, cast

from .jose import _json_bytes, b64url_encode
from .server import _Server

#: Development provider only: the request header its token endpoint reads a
#: client certificate from (RFC 8705 certificate-bound tokens in tests; the
#: server is plain http, so nothing else could carry it).  Never trust such a
#: header from clients in production.
DEV_CLIENT_CERT_HEADER = "X-Client-Cert"

if TYPE_CHECKING:
    from .issuer import LocalIssuer

__all__ = ["ENDPOINTS", "Endpoint", "Request"]

log = logging.getLogger("oidc_guard.testing")


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    subject: str
    scopes: List[str]
    nonce: Optional[str]
    code_challenge: Optional[str]
    auth_time: int
    expires_at: float


class _OAuthError(Exception):
    """An RFC 6749 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


_MAX_BODY = 64 * 1024

_HTML_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)

# Usable on a phone: the inputs and the button take the column's full width
# and are at least 44 px high (WCAG 2.5.5 target size); text in the inputs
# is at least 16 px, below which iOS Safari zooms into a focused field.
_LOGIN_STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em;line-height:1.4}"
    ".warning{background:#fff3cd;border:1px solid #c9a227;padding:.6em}"
    ".error{color:#a00}label{display:block;margin:.8em 0}"
    "code{overflow-wrap:anywhere}"
    "label input,button{display:block;box-sizing:border-box;width:100%;min-height:44px;"
    "font:inherit;font-size:max(16px,1rem);padding:.5em .6em;margin-top:.3em}"
    "button{cursor:pointer}"
)

# Without it a phone lays the page out 980 px wide and shrinks it to fit.
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


class _Handler(BaseHTTPRequestHandler):
    server_version = "oidc_guard-LocalIssuer/dev"
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    @property
    def provider(self) -> LocalIssuer:
        return cast(_Server, self.server).provider

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # --------------------------------------------------------------- utils

    def _send(self, status: int, body: bytes, content_type: str, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self._send(status, _json_bytes(obj), "application/json", headers)

    def _send_oauth_error(self, exc: "_OAuthError", headers: Iterable[Tuple[str, str]] = ()) -> None:
        """RFC 6749 section 5.2 error response of the client-authenticated
        endpoints (token, introspection, revocation); a 401 (invalid_client)
        carries the Basic challenge it asks for."""
        out = list(headers)
        if exc.status == 401:
            out.append(("WWW-Authenticate", 'Basic realm="oidc_guard-dev"'))
        self._send_json(exc.status, {"error": exc.error, "error_description": exc.description}, out)

    def _send_bearer_error(self, error: str, description: str) -> None:
        """RFC 6750 section 3 401 of the UserInfo endpoint."""
        challenge = 'Bearer realm="oidc_guard-dev"'
        if error != "invalid_request":  # no token at all: a bare challenge (3.1)
            challenge += f', error="{error}"'
        self._send_json(401, {"error": error, "error_description": description}, [("WWW-Authenticate", challenge)])

    def _route(self) -> Tuple[Optional[str], Dict[str, str], Optional[str]]:
        """(path relative to the issuer, single-valued query, error)."""
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        prefix = self.provider.issuer_path
        if prefix:
            if not (path == prefix or path.startswith(prefix + "/")):
                return None, {}, None
            path = path[len(prefix):]
        params, error = _single_values(parts.query)
        return path, params, error

    def _read_form(self) -> Tuple[Dict[str, str], Optional[str]]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return {}, "bad Content-Length"
        if length < 0 or length > _MAX_BODY:
            return {}, "request body too large"
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}, "Content-Type must be application/x-www-form-urlencoded"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {}, "request body is not UTF-8"
        return _single_values(text)

    # ------------------------------------------------------------ dispatch

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    do_HEAD = do_GET  # HEAD is GET without the body (see _send); logged as GET

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        """Look the path up in :attr:`ENDPOINTS` and run the method's view.

        The request is recorded in ``provider.requests`` first; the
        endpoint's counter (``fetch_counts``) counts only requests its view
        runs for. An unknown path, or a method the endpoint does not serve,
        is 404, except for endpoints with ``refuse_other_methods``: 405
        with ``Allow``."""
        path, params, error = self._route()
        self.provider.requests.append((method, self.path))
        endpoint = ENDPOINTS.get(path) if path is not None else None
        if path is None or endpoint is None:
            self._send_json(404, {"error": "not_found"})
            return
        view = endpoint.methods.get(method)
        if view is None:
            if endpoint.refuse_other_methods:
                allow = ", ".join(endpoint.methods)
                self._send_json(405, {"error": "method_not_allowed"}, [("Allow", allow)])
            else:
                self._send_json(404, {"error": "not_found"})
            return
        if endpoint.counter is not None:
            self.provider._count(endpoint.counter)
        view(self, Request(path, params, error))

    # ------------------------------------------------------------ endpoints
    # One small view per (endpoint, method); ENDPOINTS (after the class)
    # maps paths to them.

    def _get_discovery(self, request: Request) -> None:
        self._serve_document("discovery")

    def _get_jwks(self, request: Request) -> None:
        self._serve_document("jwks")

    def _get_authorize(self, request: Request) -> None:
        self._authorize(request.params, request.params_error, form=None)

    def _post_authorize(self, request: Request) -> None:
        form, error = self._read_form()  # the query string is ignored on POST
        self._authorize(form, error, form=form)

    def _post_token(self, request: Request) -> None:
        self._token()

    def _get_userinfo(self, request: Request) -> None:
        if self._fault("userinfo"):
            return
        self._userinfo()

    def _post_introspect(self, request: Request) -> None:
        provider = self.provider
        with provider._lock:
            provider.introspection_in_flight += 1
            provider.introspection_max_in_flight = max(provider.introspection_max_in_flight,
                                                       provider.introspection_in_flight)
        try:
            if self._fault("introspection"):
                return
            self._introspect()
        finally:
            with provider._lock:
                provider.introspection_in_flight -= 1

    def _post_revoke(self, request: Request) -> None:
        self._revoke()

    def _fault(self, kind: str) -> bool:
        """Apply a :meth:`LocalIssuer.set_fault` of ``kind``; True when the
        fault answered (or dropped) the request itself."""
        provider = self.provider
        with provider._lock:
            fault = provider._faults.get(kind)
            stop_event = provider._stop_event
        if fault is None:
            return False
        if fault.delay and stop_event.wait(fault.delay):
            self.close_connection = True
            return True
        if fault.status is None and fault.body is None and fault.content_type is None and not fault.headers:
            return False  # only a delay: answer normally
        status = 200 if fault.status is None else int(fault.status)
        body = fault.body if fault.body is not None else {"error": "server_error"}
        if isinstance(body, (dict, list)):
            body = _json_bytes(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self._send(status, body, fault.content_type or "application/json", list(fault.headers.items()))
        return True

    # ---------------------------------------------------- discovery / jwks

    def _serve_document(self, kind: str) -> None:
        provider = self.provider
        with provider._lock:
            fault = provider._faults.get(kind)
            stop_event = provider._stop_event
        if fault is not None and fault.delay:
            # Wait, but give up (answer nothing) if the issuer is stopped meanwhile.
            if stop_event.wait(fault.delay):
                self.close_connection = True
                return
        document = provider.discovery_document() if kind == "discovery" else provider.jwks()
        headers: List[Tuple[str, str]] = []
        if kind == "jwks" and provider.jwks_max_age is not None:
            headers.append(("Cache-Control", f"max-age={int(provider.jwks_max_age)}"))
        if fault is None or (fault.status is None and fault.body is None and fault.content_type is None
                             and not fault.headers):
            self._send_json(200, document, headers)
            return
        status = 200 if fault.status is None else int(fault.status)
        body = fault.body
        if body is None:
            body = document if 200 <= status < 300 else {"error": "server_error"}
        if isinstance(body, (dict, list)):
            body = _json_bytes(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        headers.extend(fault.headers.items())
        self._send(status, body, fault.content_type or "application/json", headers)

    # ----------------------------------------------------------- /authorize

    def _error_page(self, status: int, message: str) -> None:
        page = (
            f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{_VIEWPORT}"
            "<title>Sign-in error - oidc_guard development provider</title>"
            f"<style>{_LOGIN_STYLE}</style></head><body>"
            "<p class=\"warning\"><strong>Development only, not for production.</strong></p>"
            f"<h1>Sign-in request rejected</h1><p class=\"error\" id=\"error\">{html.escape(message)}</p>"
            "</body></html>"
        )
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)

    def _redirect(self, uri: str, params: Mapping[str, str], fragment: bool) -> None:
        encoded = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        if fragment:
            location = f"{uri}#{encoded}"
        else:
            location = f"{uri}{'&' if '?' in uri else '?'}{encoded}"
        self._send(302, b"", "text/plain", [("Location", location), ("Cache-Control", "no-store")])

    def _authorize(self, params: Dict[str, str], parse_error: Optional[str], form: Optional[Dict[str, str]]) -> None:
        """Authorization endpoint (development only, not for production).

        OIDC Core 3.1.2 / 3.2.2: the client and the exact redirect URI are
        checked first; if either is wrong nothing is redirected anywhere (an
        error page is shown). Other errors go back to the client (RFC 6749
        4.1.2.1 / 4.2.2.1). GET shows the login form; POST checks the
        credentials and answers with a 302 to the redirect URI.
        """
        provider = self.provider
        if parse_error:
            self._error_page(400, parse_error)
            return
        client_id = params.get("client_id", "")
        with provider._lock:
            client = provider.clients.get(client_id)
            client = None if client is None else {k: (list(v) if isinstance(v, list) else v) for k, v in client.items()}
        if client is None:
            self._error_page(400, f"Unknown client_id {client_id!r}.")
            return
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            self._error_page(400, f"redirect_uri {redirect_uri!r} is not registered for client {client_id!r}.")
            return

        response_type = frozenset(params.get("response_type", "").split())
        implicit = response_type in (frozenset({"id_token", "token"}), frozenset({"id_token"}))
        use_fragment = "token" in response_type or "id_token" in response_type
        state = params.get("state")

        def fail(error: str, description: str) -> None:
            out = {"error": error, "error_description": description}
            if state is not None:
                out["state"] = state
            self._redirect(redirect_uri, out, use_fragment)

        if not implicit and response_type != frozenset({"code"}):
            fail("unsupported_response_type", "response_type must be 'id_token token', 'id_token' or 'code'")
            return
        grant = "implicit" if implicit else "authorization_code"
        if grant not in client["grant_types"]:
            fail("unauthorized_client", f"client may not use the {grant} flow")
            return
        requested = params.get("scope", "").split()
        if "openid" not in requested:
            fail("invalid_scope", "the openid scope is required")
            return
        allowed = set(client["scopes"]) | {"openid"}
        granted: List[str] = []
        for scope in requested:  # RFC 6749 3.3: the server may grant fewer scopes
            if scope in allowed and scope not in granted:
                granted.append(scope)
        nonce = params.get("nonce")
        if implicit and not nonce:
            fail("invalid_request", "nonce is required for the implicit flow (OIDC Core 3.2.2.1)")
            return
        challenge = params.get("code_challenge")
        if not implicit:
            method = params.get("code_challenge_method", "plain" if challenge else None)
            if challenge is not None and method != "S256":
                fail("invalid_request", "only code_challenge_method S256 is supported")
                return
            if client["secret"] is None and not challenge:
                fail("invalid_request", "public clients must use PKCE (RFC 7636) with S256")
                return
        if params.get("prompt") == "none":
            fail("login_required", "this development provider keeps no sessions")
            return

        if form is None:
            self._login_page(params, client_id, granted, error=None)
            return
        username = form.get("username", "")
        password = form.get("password", "")
        with provider._lock:
            user = provider.users.get(username)
            user = None if user is None else dict(user)
        expected = (user or {}).get("password", "")
        # Compare in constant time even for unknown users.
        if not (hmac.compare_digest(password.encode("utf-8"), str(expected).encode("utf-8")) and user is not None):
            # The username typed is kept (the user corrects the password);
            # the password never comes back in the page.
            self._login_page(params, client_id, granted, error="Wrong username or password.", status=200,
                             username=username)
            return

        auth_time = int(time.time())
        if implicit:
            out = provider._issue_user_tokens(
                client_id, user, granted, nonce=nonce, auth_time=auth_time,
                with_access_token="token" in response_type,
            )
        else:
            code = secrets.token_urlsafe(24)
            with provider._lock:
                now = time.time()
                for stale in [c for c, rec in provider._codes.items() if rec.expires_at < now]:
                    del provider._codes[stale]
                provider._codes[code] = _Code(
                    client_id, redirect_uri, user["sub"], granted, nonce, challenge, auth_time, now + 60,
                )
            out = {"code": code}
        if state is not None:
            out["state"] = state
        self._redirect(redirect_uri, out, fragment=implicit)

    def _login_page(self, params: Mapping[str, str], client_id: str, scopes: List[str], *,
                    error: Optional[str], status: int = 200, username: str = "") -> None:
        esc = html.escape
        hidden = "".join(
            f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
            for name, value in params.items()
            if name not in ("username", "password")
        )
        error_html = f'<p class="error" id="error" role="alert">{esc(error)}</p>' if error else ""
        # The cursor goes where the user types next: the password once the
        # username is known.
        focus_user, focus_password = ("", " autofocus") if username else (" autofocus", "")
        hint = ""
        if self.provider._demo_users:
            hint = "<p>Demo users: <code>alice</code> / <code>alice</code>, <code>bob</code> / <code>bob</code>.</p>"
        page = (
            f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{_VIEWPORT}"
            "<title>Sign in - oidc_guard development provider</title>"
            f"<style>{_LOGIN_STYLE}</style></head><body>"
            "<p class=\"warning\" id=\"dev-warning\"><strong>Development only, not for production.</strong> "
            "This sign-in page is oidc_guard.testing.LocalIssuer, a stand-in OpenID Provider for tests "
            "and demos, with hard-coded users.</p>"
            "<h1>Sign in</h1>"
            f"<p>Application <code>{esc(client_id)}</code> asks for: <code>{esc(' '.join(scopes))}</code></p>"
            f"{error_html}"
            f"<form method=\"post\" action=\"{esc(self.provider.issuer_path)}/authorize\">{hidden}"
            "<label>Username <input id=\"username\" name=\"username\" autocomplete=\"username\" "
            f"autocapitalize=\"none\" autocorrect=\"off\" spellcheck=\"false\" value=\"{esc(username)}\"{focus_user}></label>"
            "<label>Password <input id=\"password\" name=\"password\" type=\"password\" "
            f"autocomplete=\"current-password\"{focus_password}></label>"
            "<button id=\"sign-in\" type=\"submit\">Sign in</button></form>"
            f"{hint}</body></html>"
        )
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", _HTML_HEADERS)

    # --------------------------------------------------------------- /token

    def _token(self) -> None:
        """Token endpoint (development only, not for production): RFC 6749
        4.4 client_credentials and 4.1.3 authorization_code (+ RFC 7636
        PKCE). Errors per RFC 6749 5.2, as JSON."""
        no_store = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]  # RFC 6749 5.1
        form, error = self._read_form()
        try:
            if error:
                raise _OAuthError("invalid_request", error)
            client_id, client, method = self._authenticate_client(form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _OAuthError("invalid_request", "grant_type is missing")
            cnf = self._sender_constraint()
            if grant_type == "client_credentials":
                body = self._client_credentials(client_id, client, form, cnf)
            elif grant_type == "authorization_code":
                body = self._authorization_code(client_id, client, form, cnf)
            else:
                raise _OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except _OAuthError as exc:
            self._send_oauth_error(exc, no_store)
            return
        self._send_json(200, body, no_store)

    def _userinfo(self) -> None:
        """UserInfo endpoint (OIDC Core 5.3; development only). Accepts only
        an access token from the Authorization header (RFC 6750 2.1), checks
        it with PyJWT against this issuer's own keys (the alg comes from the
        key, never from the token), and answers with the user's claims for
        the token's scopes. Errors: RFC 6750 section 3."""
        import jwt

        provider = self.provider
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._send_bearer_error("invalid_request", "no bearer token")
            return
        token = token.strip()
        if "." not in token:  # a reference token: what /introspect would say
            answer = provider.introspect(token)
            if not answer.get("active") or not isinstance(answer.get("sub"), str):
                self._send_bearer_error("invalid_token", "access token rejected")
                return
            if self._refuse_bound(answer):
                return
            self._userinfo_answer(answer)
            return
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            with provider._lock:
                key = provider._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(token, key.private_key.public_key(), algorithms=[key.alg],
                                issuer=provider.issuer, audience=provider.audience,
                                options={"require": ["exp", "sub"]})
        except jwt.InvalidTokenError as exc:
            description = f"access token rejected: {exc}"
            self._send_bearer_error("invalid_token", description)
            return
        with provider._lock:
            revoked = claims.get("jti") in provider._revoked_jtis
        if revoked:
            self._send_bearer_error("invalid_token", "access token revoked")
            return
        if self._refuse_bound(claims):
            return
        self._userinfo_answer(claims)

    def _refuse_bound(self, claims: Mapping[str, Any]) -> bool:
        """A sender-constrained token sent as a plain bearer token: 401, as
        npm oidc-provider answers ("failed jkt verification"). RFC 9449
        section 7.1: a DPoP-bound token needs a proof of the client's key;
        RFC 8705 section 3: a certificate-bound one the client's certificate.
        This endpoint takes neither, so it refuses both."""
        cnf = claims.get("cnf")
        if not isinstance(cnf, Mapping) or (cnf.get("jkt") is None and cnf.get("x5t#S256") is None):
            return False
        what = "jkt" if cnf.get("jkt") is not None else "x5t#S256"
        self._send_bearer_error("invalid_token", f"failed {what} verification")
        return True

    def _userinfo_answer(self, claims: Mapping[str, Any]) -> None:
        provider = self.provider
        scope = claims.get("scope", "")
        scopes = set(scope.split() if isinstance(scope, str) else scope)
        out: Dict[str, Any] = {"sub": claims["sub"]}
        with provider._lock:
            user = next((dict(u) for u in provider.users.values() if u["sub"] == claims["sub"]), {})
        if "profile" in scopes and "name" in user:
            out["name"] = user["name"]
        if "email" in scopes and "email" in user:
            out["email"] = user["email"]
        self._send_json(200, out, [("Cache-Control", "no-store")])

    def _introspect(self) -> None:
        """RFC 7662 (development only): a confidential client authenticates
        (2.1: basic or post); ``token`` is required; the answer is
        :meth:`LocalIssuer.introspect`. A client failing authentication gets
        401 ``invalid_client`` (RFC 6749 5.2)."""
        form, error = self._read_form()
        no_store = [("Cache-Control", "no-store")]
        try:
            if error:
                raise _OAuthError("invalid_request", error)
            _client_id, client, _method = self._authenticate_client(form)
            if client.get("secret") is None:
                raise _OAuthError("invalid_client", "only confidential clients may introspect", 401)
            token = form.get("token")
            if not token:
                raise _OAuthError("invalid_request", "token is missing")
        except _OAuthError as exc:
            self._send_oauth_error(exc, no_store)
            return
        self._send_json(200, self.provider.introspect(token), no_store)

    def _revoke(self) -> None:
        """RFC 7009 section 2.1 (development only): a client authenticates and
        revokes ``token``; 200 whatever the token was (2.2)."""
        form, error = self._read_form()
        try:
            if error:
                raise _OAuthError("invalid_request", error)
            self._authenticate_client(form)
            token = form.get("token")
            if not token:
                raise _OAuthError("invalid_request", "token is missing")
        except _OAuthError as exc:
            self._send_oauth_error(exc)
            return
        self.provider.revoke(token)
        self._send(200, b"", "text/plain")

    def _authenticate_client(self, form: Mapping[str, str]) -> Tuple[str, Dict[str, Any], str]:
        """RFC 6749 2.3.1: client_secret_basic or client_secret_post, never
        both; public clients (no secret) send only client_id."""
        auth = self.headers.get("Authorization")
        body_id = form.get("client_id")
        body_secret = form.get("client_secret")
        secret: Optional[str]
        if auth is not None:
            scheme, _, credentials = auth.strip().partition(" ")
            if scheme.lower() != "basic":
                raise _OAuthError("invalid_client", "only HTTP Basic client authentication is supported", 401)
            if body_secret is not None:
                raise _OAuthError("invalid_request", "more than one client authentication method was used")
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise _OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise _OAuthError("invalid_client", "malformed Basic credentials", 401)
            # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic.
            client_id = urllib.parse.unquote_plus(raw_id)
            secret = urllib.parse.unquote_plus(raw_secret)
            if body_id is not None and body_id != client_id:
                raise _OAuthError("invalid_request", "client_id in the body differs from the authenticated client")
            method = "client_secret_basic"
        else:
            client_id = body_id or ""
            secret = body_secret
            method = "client_secret_post" if secret is not None else "none"
        with self.provider._lock:
            client = self.provider.clients.get(client_id)
            client = None if client is None else dict(client)
        if client is None:
            raise _OAuthError("invalid_client", "unknown client", 401)
        expected = client.get("secret")
        if expected is None:
            if secret is not None:
                raise _OAuthError("invalid_client", "this public client has no secret", 401)
        elif secret is None or not hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8")):
            raise _OAuthError("invalid_client", "client authentication failed", 401)
        return client_id, client, method

    def _sender_constraint(self) -> Optional[Dict[str, str]]:
        """The ``cnf`` claim for the tokens of this token request (development only):

        * a ``DPoP`` header with a valid proof for ``POST <issuer>/token``
          (RFC 9449 section 5; checked by :class:`oidc_guard.dpop.DPoPVerifier`,
          replay included) binds the token to the proof's key: ``cnf.jkt``,
          ``token_type: DPoP``; a bad proof is 400 ``invalid_dpop_proof``;
        * a client certificate (RFC 8705 section 3) in the
          :data:`DEV_CLIENT_CERT_HEADER` header (PEM, URL-encoded PEM or RFC
          9440 ``:base64:``) binds it to that certificate:
          ``cnf["x5t#S256"]``.  **Test-only**: this server speaks plain http
          and believes whoever sends that header.
        """
        from ..dpop import DPoPVerifier, InvalidDPoPProof
        from ..mtls import certificate_thumbprint, parse_client_certificate

        provider = self.provider
        cnf: Dict[str, str] = {}
        proofs = self.headers.get_all("DPoP") or []
        if proofs:
            verifier = getattr(provider, "_dpop_token_verifier", None)
            if verifier is None:
                verifier = DPoPVerifier()
                setattr(provider, "_dpop_token_verifier", verifier)
            try:
                proof = verifier.verify("POST", provider.token_endpoint, [("DPoP", p) for p in proofs])
            except InvalidDPoPProof as exc:
                raise _OAuthError("invalid_dpop_proof", exc.description) from None
            cnf["jkt"] = proof.jkt
        cert = self.headers.get(DEV_CLIENT_CERT_HEADER)
        if cert:
            try:
                cnf["x5t#S256"] = certificate_thumbprint(parse_client_certificate(cert))
            except ValueError as exc:
                raise _OAuthError("invalid_request", f"client certificate: {exc}") from None
        return cnf or None

    def _client_credentials(self, client_id: str, client: Mapping[str, Any], form: Mapping[str, str],
                            cnf: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        provider = self.provider
        if "client_credentials" not in client["grant_types"] or client.get("secret") is None:
            # RFC 6749 4.4: only confidential clients may use this grant.
            raise _OAuthError("unauthorized_client", "client may not use the client_credentials grant")
        allowed = list(client["scopes"])
        if "scope" in form:
            requested = form["scope"].split()
            refused = [s for s in requested if s not in allowed]
            if refused:
                raise _OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")
            granted = list(dict.fromkeys(requested))
        else:
            granted = allowed  # RFC 6749 3.3: the pre-defined default scope
        token = provider.mint(
            {"cnf": cnf} if cnf else None,
            subject=client_id if provider.client_token_sub else None,
            scope=provider._format_scope(granted),
            client_id=client_id,
            reference=client.get("access_token_format") == "reference",
        )
        # RFC 9449 section 5: token_type "DPoP" for a DPoP-bound token.
        token_type = "DPoP" if cnf and "jkt" in cnf else "Bearer"
        return {"access_token": token, "token_type": token_type, "expires_in": provider.token_lifetime,
                "scope": " ".join(granted)}

    def _authorization_code(self, client_id: str, client: Mapping[str, Any], form: Mapping[str, str],
                            cnf: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        provider = self.provider
        if "authorization_code" not in client["grant_types"]:
            raise _OAuthError("unauthorized_client", "client may not use the authorization_code grant")
        code = form.get("code", "")
        with provider._lock:
            record = provider._codes.pop(code, None)  # single use (RFC 6749 4.1.2)
        if record is None or record.expires_at < time.time():
            raise _OAuthError("invalid_grant", "unknown, used or expired code")
        if record.client_id != client_id:
            raise _OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != record.redirect_uri:  # RFC 6749 4.1.3
            raise _OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if record.code_challenge is not None:  # RFC 7636 4.6
            verifier = form.get("code_verifier", "")
            computed = b64url_encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            if not hmac.compare_digest(computed, record.code_challenge):
                raise _OAuthError("invalid_grant", "PKCE code_verifier does not match")
        with provider._lock:
            user = next((dict(u) for u in provider.users.values() if u["sub"] == record.subject), {"sub": record.subject})
        out: Dict[str, Any] = dict(provider._issue_user_tokens(
            client_id, user, record.scopes, nonce=record.nonce, with_access_token=True,
            auth_time=record.auth_time, cnf=cnf,
        ))
        if cnf and "jkt" in cnf:
            out["token_type"] = "DPoP"  # RFC 9449 section 5
        out["expires_in"] = provider.token_lifetime
        return out


# --------------------------------------------------------------------------
# routing table
# --------------------------------------------------------------------------

View = Callable[[_Handler, "Request"], None]


class Request(NamedTuple):
    """What a view gets: the path relative to the issuer and the query
    string's parameters (single-valued; ``params_error`` says why parsing
    failed, see :func:`_single_values`). POST views read their form with
    :meth:`_Handler._read_form`."""

    path: str
    params: Dict[str, str]
    params_error: Optional[str]


@dataclass(frozen=True)
class Endpoint:
    """One path of the development provider.

    ``methods`` maps an HTTP method to its view (``"GET"`` also serves
    HEAD). ``counter`` is the :attr:`LocalIssuer.fetch_counts` key counted
    before the view runs (None: not counted). ``refuse_other_methods``: other
    methods get 405 with ``Allow``; otherwise 404 as for an unknown path."""

    methods: Mapping[str, View]
    counter: Optional[str] = None
    refuse_other_methods: bool = False


#: Path (relative to the issuer URL) -> endpoint. To add an endpoint, write
#: a ``_Handler`` method ``(self, request: Request) -> None`` and add a row.
ENDPOINTS: Dict[str, Endpoint] = {
    # OpenID Connect Discovery 1.0 section 4
    "/.well-known/openid-configuration": Endpoint(
        {"GET": _Handler._get_discovery}, counter="discovery", refuse_other_methods=True),
    # RFC 7517 section 5 (jwks_uri)
    "/jwks": Endpoint({"GET": _Handler._get_jwks}, counter="jwks", refuse_other_methods=True),
    # RFC 6749 3.1, OIDC Core 3.1.2 / 3.2.2 (login page on GET, credentials on POST)
    "/authorize": Endpoint({"GET": _Handler._get_authorize, "POST": _Handler._post_authorize}, counter="authorize"),
    # RFC 6749 3.2
    "/token": Endpoint({"POST": _Handler._post_token}, counter="token"),
    # OIDC Core 5.3 (GET and POST, 5.3.1)
    "/userinfo": Endpoint({"GET": _Handler._get_userinfo, "POST": _Handler._get_userinfo}, counter="userinfo"),
    # RFC 7662 section 2 (POST only)
    "/introspect": Endpoint({"POST": _Handler._post_introspect}, counter="introspection", refuse_other_methods=True),
    # RFC 7009 section 2 (POST only)
    "/revoke": Endpoint({"POST": _Handler._post_revoke}, counter="revocation", refuse_other_methods=True),
}


def _single_values(query: str) -> Tuple[Dict[str, str], Optional[str]]:
    """Parse a query/form string; a repeated parameter is an error
    (RFC 6749 3.1 / 3.2: parameters MUST NOT be included more than once)."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=100)
    except ValueError as exc:
        return {}, f"malformed parameters: {exc}"
    out: Dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            return {}, f"parameter {name!r} given more than once"
        out[name] = value
    return out, None

