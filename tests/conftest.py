"""Shared fixtures for the core test suite.

* ``issuer`` / ``make_issuer``: :class:`oidc_guard.testing.LocalIssuer`, a real
  HTTP server on 127.0.0.1, so discovery and JWKS go through the library's
  real fetch path (``oidc_guard.http``).
* ``make_validator``: a ``TokenValidator`` for such an issuer.
* ``loopback``: a tiny programmable HTTP server (127.0.0.1 only) for what
  LocalIssuer cannot do: slow drips, lying Content-Length, redirects to other
  origins, and "attacker" URLs that must never be fetched (jku, x5u).

Everything listens on loopback only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import pytest

from oidc_guard import TokenValidator
from oidc_guard.testing import LocalIssuer

# A response the loopback server sends: (status, headers, body), or a callable
# that writes the response itself through the BaseHTTPRequestHandler.
Route = Union[Tuple[int, Dict[str, str], bytes], Callable[[BaseHTTPRequestHandler], None]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    body = b""

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        # The request body is read first and left in self.body for callable
        # routes (the introspection tests read the form from it).
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        server: "LoopbackServer" = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        server._record(self.path, dict(self.headers.items()))
        route = server.routes.get(path)
        if route is None:
            route = (404, {"Content-Type": "text/plain"}, b"not found")
        if callable(route):
            try:
                route(self)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, which is what some tests want
            return
        status, headers, body = route
        self.send_response(status)
        # headers: a dict, or a list of (name, value) pairs for repeated fields
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        for name, value in pairs:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in pairs):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class LoopbackServer:
    """A programmable HTTP server on 127.0.0.1 that counts its requests."""

    def __init__(self) -> None:
        self.routes: Dict[str, Route] = {}
        self.counts: Counter = Counter()
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record(self, raw_path: str, headers: Dict[str, str]) -> None:
        with self._lock:
            self.counts[raw_path.split("?", 1)[0]] += 1
            self.requests.append((raw_path, headers))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def url(self, path: str) -> str:
        return self.base + path

    def json(self, path: str, body: Union[bytes, str], status: int = 200,
             content_type: str = "application/json", headers: Optional[Dict[str, str]] = None) -> str:
        """Serve ``body`` (already-encoded JSON text) at ``path``; returns its URL."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        all_headers = {"Content-Type": content_type}
        all_headers.update(headers or {})
        self.routes[path] = (status, all_headers, body)
        return self.url(path)

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _stopped_after(build: Callable[..., Any]) -> Any:
    """Body of a factory fixture: yields ``make(**kwargs)``, which builds and
    starts one server with ``build``; every server made is stopped after the
    test, even when it fails."""
    started: List[Any] = []

    def make(**kwargs: Any) -> Any:
        server = build(**kwargs)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def loopback():
    """A started :class:`LoopbackServer`, stopped after the test."""
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_loopback():
    """Factory for more loopback servers (e.g. a second origin)."""
    yield from _stopped_after(LoopbackServer)


@pytest.fixture
def make_issuer():
    """Factory for started LocalIssuers (keys come from LocalIssuer's pool,
    so no RSA key generation per test); all are stopped after the test."""
    yield from _stopped_after(lambda **kwargs: LocalIssuer(**kwargs).start())


@pytest.fixture
def issuer(make_issuer) -> LocalIssuer:
    """A started LocalIssuer with one RS256 key."""
    return make_issuer(algs=("RS256",))


class FakeClock:
    """A settable clock for ``TokenValidator(clock=...)``."""

    def __init__(self, now: Optional[float] = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_validator():
    """``make_validator(iss, **kwargs)``: a TokenValidator for a LocalIssuer
    with the issuer's audience and short timeouts unless overridden."""

    def make(iss: LocalIssuer, **kwargs: Any) -> TokenValidator:
        kwargs.setdefault("audience", iss.audience)
        kwargs.setdefault("http_timeout", 2)
        return TokenValidator(iss.issuer, **kwargs)

    return make


# --- a real redis-server (shared cache) --------------------------------------

import os as _os

from redis_server import RedisServer as _RedisServer, redis_binary as _redis_binary


def _need_redis() -> None:
    if _redis_binary() is None:
        if _os.environ.get("OIDC_GUARD_REDIS_REQUIRED") == "1":
            pytest.fail("redis-server is not installed; run bash scripts/install_redis.sh", pytrace=False)
        pytest.skip("redis-server is not installed (bash scripts/install_redis.sh)")


@pytest.fixture
def redis_server():
    """A real redis-server on a free 127.0.0.1 port, no persistence, killed
    after the test (``.stop()`` / ``.start()`` take it away and back mid-test)."""
    _need_redis()
    server = _RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_redis_server():
    """Factory: ``make_redis_server(password=...)``; all are killed after the test."""
    _need_redis()
    yield from _stopped_after(lambda **kwargs: _RedisServer(**kwargs).start())
