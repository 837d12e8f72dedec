"""ASGI layer: :class:`BearerMiddleware` (ASGI 3, ``http`` and ``websocket``
scopes) and the ``require_*`` decorators for Starlette endpoints.

A translation only, like :mod:`oidc_guard.wsgi`: the middleware turns the
ASGI scope (and, with ``accept_form``, the request body) into
:class:`~oidc_guard.credentials.Facts`, lets its
:class:`~oidc_guard.auth.Authenticator` authenticate the request through
the async path (:func:`oidc_guard._aio.authenticate_async`: a cached token
is answered on the event loop, anything that may wait on the network runs
in a bounded worker pool) and records the
:class:`~oidc_guard.auth.AuthResult` in a copy of the scope.  Refusals are
rendered by :func:`oidc_guard.errors.render_error`: the same statuses,
``WWW-Authenticate`` challenges and JSON bodies as the WSGI middleware.

Scope keys set on every ``http`` and ``websocket`` connection (a fresh
value each time; the scope is copied first, as the ASGI spec asks of
middleware that changes it):

``oidc_guard.result``
    the connection's :class:`~oidc_guard.auth.AuthResult` (what the
    decorators and :class:`oidc_guard.fastapi.OIDCGuard` read).
``oidc_guard.claims``
    the :class:`~oidc_guard.Claims` of a valid token, else ``None``.
``oidc_guard.error``
    the :class:`~oidc_guard.InvalidToken`, :class:`~oidc_guard.ProviderError`
    or :class:`~oidc_guard.InvalidRequest` met, else ``None``.
``oidc_guard.validator``
    the validator that made the result.

WebSocket handshakes (RFC 6455 section 4) are authenticated like HTTP
requests (method ``GET``).  A refused handshake gets the same HTTP answer
as a request (401 / 403 / 400 / 503 with its challenge and JSON body) when
the server offers the ASGI ``websocket.http.response`` extension (uvicorn,
Starlette's test client); otherwise the handshake is closed before it is
accepted with code 1008 (RFC 6455 section 7.4.1, policy violation) and the
RFC 6750 error code as the reason, which servers turn into an HTTP 403.

Logging as in WSGI: one INFO line per refusal on ``oidc_guard.asgi``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Awaitable, Callable, Dict, Iterable, List, MutableMapping, Optional, Tuple, Union

from ._aio import authenticate_async
from .auth import AuthResult, Authenticator, where
from .credentials import DEFAULT_MAX_FORM_BYTES, is_form_request, form_over_limit
from .dpop import DPoPVerifier
from .errors import ErrorResponse
from .protocols import AccessTokenValidator
from .resource import MetadataResponse
from .rules import Decorators, InsufficientClaims, Rule, evaluate, includes, log_denial

__all__ = [
    "BearerMiddleware",
    "require_token",
    "require_scope",
    "require_any_scope",
    "require_scope_groups",
    "require_claims",
    "require_issuer",
    "require_acr",
    "require_auth_time",
    "includes",
    "InsufficientClaims",
    "result_of",
    "scope_facts",
    "ScopeFacts",
    "SCOPE_RESULT",
    "SCOPE_CLAIMS",
    "SCOPE_ERROR",
    "SCOPE_VALIDATOR",
    "WEBSOCKET_DENIAL",
    "WEBSOCKET_POLICY_CLOSE",
]

logger = logging.getLogger("oidc_guard.asgi")

SCOPE_RESULT = "oidc_guard.result"
SCOPE_CLAIMS = "oidc_guard.claims"
SCOPE_ERROR = "oidc_guard.error"
#: the validator whose result ``oidc_guard.result`` is (what
#: :class:`oidc_guard.fastapi.OIDCGuard` checks before reusing it)
SCOPE_VALIDATOR = "oidc_guard.validator"

#: The ASGI extension that lets an application answer a websocket
#: handshake with an HTTP response (ASGI spec, "WebSocket Denial Response").
WEBSOCKET_DENIAL = "websocket.http.response"
#: RFC 6455 section 7.4.1: 1008, "policy violation": the close code of a
#: refused handshake when the server cannot send an HTTP answer.
WEBSOCKET_POLICY_CLOSE = 1008

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- scope -> facts ---------------------------------------------------------------------


def _headers(scope: Scope) -> Dict[str, str]:
    """Request header fields by lower-case name, values decoded as latin-1
    (RFC 9110 section 5.5: field values are octets); a field sent several
    times is one value joined with ", " (RFC 9110 section 5.3), as WSGI
    servers join them."""
    out: Dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        out[name] = out[name] + ", " + value if name in out else value
    return out


def _origin(scope: Scope, headers: Dict[str, str]) -> str:
    """``scheme://host[:port]`` as the server saw the request: the ``Host``
    header, else the scope's ``server``; ``ws``/``wss`` are the handshake's
    ``http``/``https`` (RFC 6455 section 3).  ``X-Forwarded-*`` is never
    read: any client can send it (set ``public_url`` behind a proxy)."""
    scheme = scope.get("scheme") or "http"
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        if server:
            name, port = server[0], server[1]
            default = 443 if scheme == "https" else 80
            host = name if port in (None, default) else f"{name}:{port}"
        else:
            host = "localhost"
    return f"{scheme}://{host}"


def _client_cert(scope: Scope) -> Optional[str]:
    """The TLS connection's client certificate (PEM) from the ASGI TLS
    extension (``extensions["tls"]["client_cert_chain"]``, leaf first)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    return chain[0] if chain else None


class ScopeFacts:
    """:class:`~oidc_guard.credentials.RequestFacts` of an ASGI scope, read
    lazily (only what the request's authentication needs is looked at):
    ``Authorization`` and ``DPoP`` are found in one pass over the raw
    headers; the rest is decoded on demand.  ``form``: the request body,
    when the middleware read it.

    ``path`` is the path as the client asked for it, mount point included
    (the ASGI spec's ``path``; with a server that still leaves the
    ``root_path`` out of ``path``, it is put in front), decoded characters
    encoded again as UTF-8 and read as latin-1, so that a DPoP ``htu``
    comes out as it does for WSGI (PEP 3333's ``PATH_INFO``)."""

    __slots__ = ("scope", "authorization", "dpop", "form", "_headers")

    root_path = ""  # the mount point is part of path

    def __init__(self, scope: Scope, form: Optional[bytes] = None) -> None:
        self.scope = scope
        self.form = form
        self._headers: Optional[Dict[str, str]] = None
        authorization: Optional[str] = None
        dpop: Optional[str] = None
        for name, value in scope.get("headers") or ():
            # ASGI servers send lower-case names; the length test keeps the
            # loop cheap for the other fields.
            size = len(name)
            if size == 13 and name.lower() == b"authorization":
                text = value.decode("latin-1")
                authorization = text if authorization is None else authorization + ", " + text
            elif size == 4 and name.lower() == b"dpop":
                text = value.decode("latin-1")
                dpop = text if dpop is None else dpop + ", " + text
        self.authorization = authorization
        self.dpop = dpop

    def __repr__(self) -> str:
        return f"ScopeFacts({self.method!r}, path={self.path!r})"  # never the credentials

    def headers(self) -> Dict[str, str]:
        if self._headers is None:
            self._headers = _headers(self.scope)
        return self._headers

    @property
    def method(self) -> str:
        # a websocket handshake is a GET (RFC 6455 section 4.1)
        return str(self.scope.get("method") or "GET")

    @property
    def content_type(self) -> str:
        return self.headers().get("content-type", "")

    @property
    def query(self) -> str:
        return bytes(self.scope.get("query_string") or b"").decode("latin-1")

    @property
    def path(self) -> str:
        scope = self.scope
        root = scope.get("root_path") or ""
        path = scope.get("path") or "/"
        if root and not (path == root or path.startswith(root.rstrip("/") + "/")):
            path = root.rstrip("/") + path
        return str(path).encode("utf-8", "surrogateescape").decode("latin-1")

    def origin(self) -> str:
        return _origin(self.scope, self.headers())

    def form_body(self, limit: int) -> Optional[bytes]:
        form = self.form
        if form is not None and len(form) > limit:
            form_over_limit(len(form), limit)
            return None
        return form

    def client_certificate(self, header: Optional[str]) -> Tuple[Optional[str], str]:
        if header is not None:
            return self.headers().get(header.lower()), f"header {header}"
        return _client_cert(self.scope), "TLS client certificate"


def scope_facts(scope: Scope, form: Optional[bytes] = None) -> ScopeFacts:
    """The :class:`~oidc_guard.credentials.RequestFacts` of an ASGI scope
    (:class:`ScopeFacts`; ``form``: the request body, when it was read)."""
    return ScopeFacts(scope, form)


async def _read_body(facts: "ScopeFacts", receive: Receive, limit: int) -> Tuple[Optional[bytes], List[Message]]:
    """The body of a request whose ``Content-Length`` is known and at most
    ``limit`` bytes, with the messages read (to replay to the application);
    ``(None, [])`` without reading anything for a longer, chunked or
    length-less body: it is passed on untouched and never searched (as in
    WSGI).  A client that sends more than it announced is cut at the
    limit: the server enforces Content-Length, this only bounds memory."""
    length_text = facts.headers().get("content-length", "")
    if not length_text.isdigit() or not length_text.isascii():
        return None, []
    length = int(length_text)
    if length > limit:
        form_over_limit(length, limit)
        return None, []
    messages: List[Message] = []
    chunks: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message.get("type") != "http.request":
            break  # http.disconnect: the client is gone; replay it
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > limit:
            return None, messages  # over the bound after all: not searched
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def _replaying(messages: List[Message], receive: Receive) -> Receive:
    """``receive`` that first hands out the messages already read."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


# --- sending a refusal ----------------------------------------------------------------


def _encoded(response: ErrorResponse) -> Tuple[bytes, List[Tuple[bytes, bytes]]]:
    body = response.body_bytes()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    return body, headers


def full_path(scope: Scope) -> str:
    """The request's whole path on the host: ``root_path`` (the mount
    point) followed by the path within it, whether the server puts the
    mount point into ``path`` or not (ASGI servers differ)."""
    path = scope.get("path", "/") or "/"
    root = scope.get("root_path", "") or ""
    return path if not root or path.startswith(root) else root + path


async def send_refusal(scope: Scope, receive: Receive, send: Send, response: ErrorResponse) -> None:
    """Send ``response`` as the answer to an ``http`` request, or refuse a
    ``websocket`` handshake with it (see the module doc)."""
    body, headers = _encoded(response)
    if scope.get("type") == "websocket":
        # ASGI: the handshake's first message is websocket.connect; the
        # answer (accept, close or a denial response) comes after it.
        message = await receive()
        if message.get("type") != "websocket.connect":
            return  # websocket.disconnect: nobody to answer
        if WEBSOCKET_DENIAL in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": response.status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": WEBSOCKET_POLICY_CLOSE,
                        "reason": response.body.get("error", "unauthorized")})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    async def sending(message: Message) -> None:
        if message.get("type") in ("http.response.start", "websocket.accept"):
            message = dict(message)
            message["headers"] = list(message.get("headers") or ()) + [(name, value)]
        await send(message)

    return sending


# --- the middleware ---------------------------------------------------------------------


class BearerMiddleware:
    """Authenticate ASGI ``http`` requests and ``websocket`` handshakes
    carrying an OAuth 2.0 access token (RFC 6750, RFC 9449 DPoP, RFC 8705
    certificate-bound tokens).

    .. code-block:: python

        from oidc_guard import TokenValidator
        from oidc_guard.asgi import BearerMiddleware
        validator = TokenValidator(issuer="https://idp.example.com", audience="api://contacts")
        app = BearerMiddleware(app, validator, realm="contacts-api")

    The keywords and their meaning are those of
    :class:`oidc_guard.wsgi.BearerMiddleware` (``required``, ``accept_form``,
    ``accept_query``, ``max_form_bytes``, ``dpop``, ``public_url``,
    ``client_cert_header``, ``dpop_*``); the policy lives in
    ``self.authenticator`` (:class:`oidc_guard.auth.Authenticator`).  With
    ``accept_form`` the body of a form request of known length (at most
    ``max_form_bytes``) is read before the application runs and replayed to
    it unchanged.  ``lifespan`` and other scope types pass through.

    With ``required=False`` (the default) a request without a valid token
    reaches the application anonymous, with ``oidc_guard.error`` set; the
    decorators of this module or :class:`oidc_guard.fastapi.OIDCGuard`
    protect the routes that need a token.  A malformed request is always
    400 ``invalid_request``; an outage of the identity provider 503 with
    ``Retry-After``, never 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: AccessTokenValidator,
        realm: Optional[str] = None,
        required: bool = False,
        accept_form: bool = False,
        accept_query: bool = False,
        *,
        max_form_bytes: int = DEFAULT_MAX_FORM_BYTES,
        dpop: Union[str, DPoPVerifier] = "allowed",
        public_url: Optional[str] = None,
        client_cert_header: Optional[str] = None,
        dpop_algorithms: Optional[Iterable[str]] = None,
        dpop_max_age: float = 300.0,
        dpop_leeway: float = 30.0,
        dpop_nonce: bool = False,
        dpop_nonce_secret: Union[str, bytes, None] = None,
        dpop_nonce_step: float = 60.0,
        dpop_replay_store: Any = None,
        resource: Optional[str] = None,
        scopes_supported: Optional[Iterable[str]] = None,
    ) -> None:
        if not callable(app):
            raise TypeError("BearerMiddleware wraps an ASGI application (an async callable)")
        self.app = app
        #: the policy: what is read, validated, bound and challenged
        self.authenticator = Authenticator(
            validator, realm=realm, required=required, accept_form=accept_form, accept_query=accept_query,
            max_form_bytes=max_form_bytes, dpop=dpop, public_url=public_url,
            client_cert_header=client_cert_header, dpop_algorithms=dpop_algorithms, dpop_max_age=dpop_max_age,
            dpop_leeway=dpop_leeway, dpop_nonce=dpop_nonce, dpop_nonce_secret=dpop_nonce_secret,
            dpop_nonce_step=dpop_nonce_step, dpop_replay_store=dpop_replay_store, logger=logger,
            resource=resource, scopes_supported=scopes_supported)

    @property
    def validator(self) -> AccessTokenValidator:
        return self.authenticator.validator

    @property
    def realm(self) -> Optional[str]:
        return self.authenticator.realm

    @property
    def required(self) -> bool:
        return self.authenticator.required

    def __repr__(self) -> str:
        a = self.authenticator
        return (f"BearerMiddleware({self.app!r}, realm={a.realm!r}, required={a.required}, "
                f"accept_form={a.accept_form}, accept_query={a.accept_query}, dpop={a.dpop!r})")

    def pre_answer(self, scope: Scope) -> Optional[MetadataResponse]:
        """The answer the middleware gives before any authentication (an
        ``http`` request only): the RFC 9728 protected resource metadata
        when ``resource=`` is set and the request is for its well-known
        path (:meth:`oidc_guard.auth.Authenticator.metadata_response`);
        ``None`` to go on."""
        if self.authenticator.metadata is None:
            return None
        return self.authenticator.metadata_response(scope.get("method", "GET"), full_path(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)  # lifespan and anything else: not ours
            return
        authenticator = self.authenticator
        if kind == "http":
            early = self.pre_answer(scope)
            if early is not None:
                await send({"type": "http.response.start", "status": early.status,
                            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in early.headers]})
                await send({"type": "http.response.body", "body": early.body})
                return
        facts = scope_facts(scope)
        if kind == "http" and authenticator.accept_form and is_form_request(facts):
            body, messages = await _read_body(facts, receive, authenticator.max_form_bytes)
            if messages:
                receive = _replaying(messages, receive)
            facts.form = body
        result = await authenticate_async(authenticator, facts)
        scope = dict(scope)
        scope[SCOPE_RESULT] = result
        scope[SCOPE_CLAIMS] = result.claims
        scope[SCOPE_ERROR] = result.error
        scope[SCOPE_VALIDATOR] = authenticator.validator
        if result.claims is not None:
            if result.dpop_nonce is not None:
                send = _with_header(send, b"dpop-nonce", result.dpop_nonce.encode("ascii"))
            await self.app(scope, receive, send)
            return
        refusal = authenticator.refusal(result)
        if refusal is not None:
            await send_refusal(scope, receive, send, refusal)
            return
        await self.app(scope, receive, send)


# --- decorators for Starlette endpoints ---------------------------------------------------


def result_of(scope: Scope) -> Optional[AuthResult]:
    """The :class:`~oidc_guard.auth.AuthResult` the middleware (or
    :class:`~oidc_guard.fastapi.OIDCGuard`) recorded in this scope, else
    ``None``."""
    result = scope.get(SCOPE_RESULT)
    return result if isinstance(result, AuthResult) else None


_MISCONFIGURED = "authentication is not configured for this route"


def _connection(args: Tuple[Any, ...]) -> Any:
    """The endpoint's Starlette ``Request`` or ``WebSocket``: the last
    positional argument (``(request)``, or ``(self, request)`` for an
    ``HTTPEndpoint`` method)."""
    if not args or not hasattr(args[-1], "scope"):
        raise TypeError("oidc_guard.asgi decorators wrap Starlette endpoints: (request) or (websocket)")
    return args[-1]


def _denial(connection: Any, rule: Optional[Rule]) -> Optional[ErrorResponse]:
    """The refusal for this connection under ``rule``, or ``None``."""
    scope = connection.scope
    result = result_of(scope)
    if result is None:
        logger.error("require_* decorator used without oidc_guard.asgi.BearerMiddleware (%s %r)",
                     scope.get("method", "WEBSOCKET"), scope.get("path"))
        return ErrorResponse(500, [("Content-Type", "text/plain; charset=utf-8")], {"error": _MISCONFIGURED})
    denied = evaluate(result, rule)
    if denied is None:
        return None
    if result.claims is not None:  # a refused token was logged by the middleware
        log_denial(logger, where(scope_facts(scope)), denied)
    return result.render(denied)


def _starlette_response(response: ErrorResponse) -> Any:
    from starlette.responses import Response  # the adapter's framework, imported only here

    if response.status == 500:
        return Response(_MISCONFIGURED, 500, media_type="text/plain")
    return Response(response.body_bytes(), response.status, headers=dict(response.headers))


def _starlette_decorator(rule: Optional[Rule]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """How the decorators wrap a Starlette endpoint: run it when
    :func:`oidc_guard.rules.evaluate` allows the request, else answer the
    refusal (an HTTP response, or a refused websocket handshake).  A
    synchronous endpoint stays synchronous (Starlette runs it in a thread)."""
    def decorate(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(endpoint):
            raise TypeError("oidc_guard.asgi decorators wrap Starlette endpoints")
        if inspect.iscoroutinefunction(endpoint):
            @functools.wraps(endpoint)
            async def guarded(*args: Any, **kwargs: Any) -> Any:
                connection = _connection(args)
                refusal = _denial(connection, rule)
                if refusal is None:
                    return await endpoint(*args, **kwargs)
                if connection.scope.get("type") == "websocket":
                    await send_refusal(connection.scope, connection.receive, connection.send, refusal)
                    return None
                return _starlette_response(refusal)

            return guarded

        @functools.wraps(endpoint)
        def guarded_sync(*args: Any, **kwargs: Any) -> Any:
            refusal = _denial(_connection(args), rule)
            if refusal is None:
                return endpoint(*args, **kwargs)
            return _starlette_response(refusal)

        return guarded_sync

    return decorate


# The require_* family (oidc_guard.rules.Decorators) over Starlette endpoints.
_decorators = Decorators(_starlette_decorator)
require_token = _decorators.require_token
require_scope = _decorators.require_scope
require_any_scope = _decorators.require_any_scope
require_scope_groups = _decorators.require_scope_groups
require_claims = _decorators.require_claims
require_issuer = _decorators.require_issuer
require_acr = _decorators.require_acr
require_auth_time = _decorators.require_auth_time
