"""What every endpoint module of the development provider builds on:

* :class:`DevProvider`, the part of the issuer the endpoints use (a
  protocol, implemented for :class:`~oidc_guard.testing.LocalIssuer` in
  its module; no endpoint module imports the issuer);
* :class:`RequestHandler`, the HTTP plumbing (routing through a table of
  :class:`Endpoint` rows, query and form parsing, JSON and RFC 6749 error
  answers, fault injection);
* client authentication (RFC 6749 section 2.3.1), shared by ``/token``,
  ``/introspect`` and ``/revoke``, and the authorization code records.

**Development only, not for production**: hard-coded users, no sessions,
no CSRF protection.
"""

from __future__ import annotations

import base64
import hmac
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, ContextManager, Dict, Iterable, List, Mapping,
                    NamedTuple, Optional, Protocol, Sequence, Tuple, Union, cast)

from .faults import Fault
from .jose import compact_json
from .server import LoopbackServer

if TYPE_CHECKING:
    from ..dpop import DPoPVerifier

__all__ = [
    "DevProvider", "RequestHandler", "Request", "Endpoint", "View", "OAuthError", "AuthorizationCode",
    "CodeStore", "authenticate_client",
]

# The same logger as LocalIssuer's.
log = logging.getLogger("oidc_guard.testing")

_MAX_BODY = 64 * 1024


class DevProvider(Protocol):
    """What the endpoints use of the issuer that serves them (the
    :class:`~oidc_guard.testing.server.LoopbackServer`'s ``context``)."""

    @property
    def issuer(self) -> str: ...
    @property
    def issuer_path(self) -> str: ...
    @property
    def audience(self) -> Union[str, List[str]]: ...
    @property
    def token_endpoint(self) -> str: ...
    @property
    def token_lifetime(self) -> int: ...
    @property
    def token_shape(self) -> str: ...
    @property
    def scope_format(self) -> str: ...
    @property
    def client_token_sub(self) -> bool: ...
    @property
    def jwks_max_age(self) -> Optional[int]: ...
    @property
    def demo_users(self) -> bool:
        """True when the users are the demo's (the login page names them)."""
    @property
    def authorization_codes(self) -> "CodeStore": ...

    # observed by tests: requests, counters, faults
    def record_request(self, method: str, path: str) -> None: ...
    def count(self, kind: str) -> None: ...
    def fault(self, kind: str) -> Optional[Fault]: ...
    def introspection_call(self) -> ContextManager[None]:
        """Entered while an introspection request is answered."""

    # documents
    def discovery_document(self) -> Dict[str, Any]: ...
    def jwks(self) -> Dict[str, Any]: ...

    # users and clients (copies)
    def client(self, client_id: str) -> Optional[Dict[str, Any]]: ...
    def user(self, username: str) -> Optional[Dict[str, Any]]: ...
    def user_by_subject(self, subject: str) -> Optional[Dict[str, Any]]: ...

    # tokens
    def mint(self, claims: Optional[Mapping[str, Any]] = None, *, subject: Optional[str] = ...,
             scope: Union[str, Sequence[str], None] = ..., client_id: Optional[str] = ...,
             reference: bool = ...) -> str: ...
    def mint_id_token(self, client_id: str, *, nonce: Optional[str] = ..., access_token: Optional[str] = ...,
                      subject: str = ..., auth_time: Optional[int] = ...,
                      extra: Optional[Mapping[str, Any]] = ...) -> str: ...
    def introspect(self, token: str) -> Dict[str, Any]: ...
    def revoke(self, token: str) -> None: ...
    def verify_access_token(self, token: str) -> Dict[str, Any]:
        """The claims of a JWT access token of this issuer (signature, iss,
        aud, exp and sub checked), or ``jwt.InvalidTokenError``."""
    def is_revoked(self, jti: Any) -> bool: ...
    def dpop_verifier(self) -> "DPoPVerifier":
        """The verifier of DPoP proofs sent to ``/token`` (one per issuer: its replay cache)."""


@dataclass
class AuthorizationCode:
    """An authorization code's grant, kept until it is redeemed or expires."""

    client_id: str
    redirect_uri: str
    subject: str
    scopes: List[str]
    nonce: Optional[str]
    code_challenge: Optional[str]
    auth_time: int
    expires_at: float
    #: RFC 8707 section 2.1: the resources the authorization request named;
    #: a token request may ask for one of them only (section 2.2).
    resources: List[str] = field(default_factory=list)
    #: OIDC Core 2: the Authentication Context Class the user's sign-in met.
    acr: Optional[str] = None


class CodeStore:
    """Authorization codes not yet redeemed (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: Dict[str, AuthorizationCode] = {}

    def save(self, code: str, record: AuthorizationCode) -> None:
        """Keep ``record`` under ``code``, forgetting the expired ones."""
        with self._lock:
            now = time.time()
            for stale in [c for c, rec in self._codes.items() if rec.expires_at < now]:
                del self._codes[stale]
            self._codes[code] = record

    def take(self, code: str) -> Optional[AuthorizationCode]:
        """The record of ``code``, removed: a code is used once (RFC 6749 4.1.2)."""
        with self._lock:
            return self._codes.pop(code, None)


class OAuthError(Exception):
    """An RFC 6749 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


#: Parameters that may be given more than once. RFC 8707 section 2: the
#: ``resource`` parameter "MAY be used multiple times"; every other
#: parameter is single-valued (RFC 6749 3.1 / 3.2).
REPEATABLE_PARAMETERS = frozenset({"resource"})


class Request(NamedTuple):
    """What a view gets: the path relative to the issuer and the query
    string's parameters (single-valued; ``params_error`` says why parsing
    failed, see :func:`_parse_parameters`), and the values of the
    :data:`REPEATABLE_PARAMETERS` in ``lists`` (never in ``params``). POST
    views read their form with :meth:`RequestHandler.read_form` (or
    :meth:`RequestHandler.read_form_with_lists`)."""

    path: str
    params: Dict[str, str]
    params_error: Optional[str]
    lists: Mapping[str, List[str]] = {}


View = Callable[["RequestHandler", Request], None]


@dataclass(frozen=True)
class Endpoint:
    """One path of the development provider.

    ``methods`` maps an HTTP method to its view (``"GET"`` also serves
    HEAD). ``counter`` is the :attr:`LocalIssuer.fetch_counts` key counted
    before the view runs (None: not counted). ``refuse_other_methods``: other
    methods get 405 with ``Allow``; otherwise 404 as for an unknown path.
    ``cors``: browsers may call it from any origin (``Access-Control-Allow-Origin:
    *``, no credentials, and an answer to the CORS preflight), as providers
    open their discovery, JWKS and token endpoints to browser-based public
    clients (a single-page app, Swagger UI's authorization code + PKCE)."""

    methods: Mapping[str, View]
    counter: Optional[str] = None
    refuse_other_methods: bool = False
    cors: bool = False


#: The request headers a browser may send to a ``cors`` endpoint.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, DPoP, X-Requested-With"


class RequestHandler(BaseHTTPRequestHandler):
    """Routes each request through :attr:`endpoints` (path relative to the
    issuer URL -> :class:`Endpoint`) to a view ``(handler, request)``."""

    server_version = "oidc_guard-LocalIssuer/dev"
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off
    endpoints: ClassVar[Mapping[str, Endpoint]] = {}

    @property
    def provider(self) -> DevProvider:
        return cast(DevProvider, cast(LoopbackServer, self.server).context)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------ answers

    #: set by the dispatch for an endpoint with ``cors``
    cors = False

    def respond(self, status: int, body: bytes, content_type: str, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if self.cors:
            # Fetch standard, CORS protocol: any origin, never with credentials.
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def respond_json(self, status: int, obj: Any, headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.respond(status, compact_json(obj), "application/json", headers)

    def respond_oauth_error(self, exc: OAuthError, headers: Iterable[Tuple[str, str]] = ()) -> None:
        """RFC 6749 section 5.2 error response of the client-authenticated
        endpoints (token, introspection, revocation); a 401 (invalid_client)
        carries the Basic challenge it asks for."""
        out = list(headers)
        if exc.status == 401:
            out.append(("WWW-Authenticate", 'Basic realm="oidc_guard-dev"'))
        self.respond_json(exc.status, {"error": exc.error, "error_description": exc.description}, out)

    # ------------------------------------------------------------- faults

    def sleep_fault_delay(self, fault: Fault) -> bool:
        """Sleep the fault's delay; True when the server was stopped
        meanwhile: then the request is dropped without an answer."""
        if fault.delay and cast(LoopbackServer, self.server).stopping.wait(fault.delay):
            self.close_connection = True
            return True
        return False

    def answer_fault(self, kind: str) -> bool:
        """Apply a :meth:`LocalIssuer.set_fault` of ``kind``; True when the
        fault answered (or dropped) the request itself."""
        fault = self.provider.fault(kind)
        if fault is None:
            return False
        if self.sleep_fault_delay(fault):
            return True
        if fault.delay_only:
            return False  # only a delay: answer normally
        body = fault.answer_body({"error": "server_error"})
        self.respond(fault.answer_status, body, fault.answer_content_type, list(fault.headers.items()))
        return True

    # ------------------------------------------------------------- input

    def route(self) -> Tuple[Optional[str], Dict[str, str], Dict[str, List[str]], Optional[str]]:
        """(path relative to the issuer, single-valued query, the repeatable
        parameters' values, error)."""
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        prefix = self.provider.issuer_path
        if prefix:
            if not (path == prefix or path.startswith(prefix + "/")):
                return None, {}, {}, None
            path = path[len(prefix):]
        params, lists, error = _parse_parameters(parts.query)
        return path, params, lists, error

    def read_form(self) -> Tuple[Dict[str, str], Optional[str]]:
        """The urlencoded form body (single-valued), or an error saying why
        not. The :data:`REPEATABLE_PARAMETERS` are left out: see
        :meth:`read_form_with_lists`."""
        form, _lists, error = self.read_form_with_lists()
        return form, error

    def read_form_with_lists(self) -> Tuple[Dict[str, str], Dict[str, List[str]], Optional[str]]:
        """The urlencoded form body: its single-valued parameters, the
        values of its :data:`REPEATABLE_PARAMETERS`, or an error saying why not."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return {}, {}, "bad Content-Length"
        if length < 0 or length > _MAX_BODY:
            return {}, {}, "request body too large"
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}, {}, "Content-Type must be application/x-www-form-urlencoded"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {}, {}, "request body is not UTF-8"
        return _parse_parameters(text)

    # ------------------------------------------------------------ dispatch

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    do_HEAD = do_GET  # HEAD is GET without the body (see respond); logged as GET

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_OPTIONS(self) -> None:  # noqa: N802
        """The CORS preflight of a ``cors`` endpoint (Fetch standard, CORS
        protocol); 404 for anything else."""
        path, _params, _lists, _error = self.route()
        endpoint = self.endpoints.get(path) if path is not None else None
        if endpoint is None or not endpoint.cors or not self.headers.get("Access-Control-Request-Method"):
            self.respond_json(404, {"error": "not_found"})
            return
        self.cors = True
        self.respond(204, b"", "text/plain", [("Access-Control-Allow-Methods", ", ".join(endpoint.methods)),
                                              ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                                              ("Access-Control-Max-Age", "600")])

    def _dispatch(self, method: str) -> None:
        """Look the path up in :attr:`endpoints` and run the method's view.

        The request is recorded (``LocalIssuer.requests``) first; the
        endpoint's counter (``fetch_counts``) counts only requests its view
        runs for. An unknown path, or a method the endpoint does not serve,
        is 404, except for endpoints with ``refuse_other_methods``: 405
        with ``Allow``."""
        path, params, lists, error = self.route()
        self.provider.record_request(method, self.path)
        endpoint = self.endpoints.get(path) if path is not None else None
        if path is None or endpoint is None:
            self.respond_json(404, {"error": "not_found"})
            return
        self.cors = endpoint.cors
        view = endpoint.methods.get(method)
        if view is None:
            if endpoint.refuse_other_methods:
                allow = ", ".join(endpoint.methods)
                self.respond_json(405, {"error": "method_not_allowed"}, [("Allow", allow)])
            else:
                self.respond_json(404, {"error": "not_found"})
            return
        if endpoint.counter is not None:
            self.provider.count(endpoint.counter)
        view(self, Request(path, params, error, lists))


def authenticate_client(handler: RequestHandler, form: Mapping[str, str]) -> Tuple[str, Dict[str, Any], str]:
    """RFC 6749 2.3.1: client_secret_basic or client_secret_post, never
    both; public clients (no secret) send only client_id. Returns (client
    id, a copy of the client, the method used); :class:`OAuthError` else."""
    auth = handler.headers.get("Authorization")
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    secret: Optional[str]
    if auth is not None:
        scheme, _, credentials = auth.strip().partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "only HTTP Basic client authentication is supported", 401)
        if body_secret is not None:
            raise OAuthError("invalid_request", "more than one client authentication method was used")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic.
        client_id = urllib.parse.unquote_plus(raw_id)
        secret = urllib.parse.unquote_plus(raw_secret)
        if body_id is not None and body_id != client_id:
            raise OAuthError("invalid_request", "client_id in the body differs from the authenticated client")
        method = "client_secret_basic"
    else:
        client_id = body_id or ""
        secret = body_secret
        method = "client_secret_post" if secret is not None else "none"
    client = handler.provider.client(client_id)
    if client is None:
        raise OAuthError("invalid_client", "unknown client", 401)
    expected = client.get("secret")
    if expected is None:
        if secret is not None:
            raise OAuthError("invalid_client", "this public client has no secret", 401)
    elif secret is None or not hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8")):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return client_id, client, method


def _parse_parameters(query: str) -> Tuple[Dict[str, str], Dict[str, List[str]], Optional[str]]:
    """Parse a query/form string into (single-valued parameters, the values
    of the :data:`REPEATABLE_PARAMETERS`, error). Any other repeated
    parameter is an error (RFC 6749 3.1 / 3.2: parameters MUST NOT be
    included more than once)."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=100)
    except ValueError as exc:
        return {}, {}, f"malformed parameters: {exc}"
    out: Dict[str, str] = {}
    lists: Dict[str, List[str]] = {}
    for name, value in pairs:
        if name in REPEATABLE_PARAMETERS:
            lists.setdefault(name, []).append(value)
            continue
        if name in out:
            return {}, {}, f"parameter {name!r} given more than once"
        out[name] = value
    return out, lists, None
