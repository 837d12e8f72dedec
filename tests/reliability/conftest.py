"""Fixtures and helpers for the reliability suite (``pytest -m reliability``).

Everything here runs against real loopback servers: a
:class:`oidc_guard.testing.LocalIssuer` for discovery and JWKS, and, where a
test needs what LocalIssuer cannot do (a body without Content-Length, an
"attacker" URL that must never be contacted), a raw socket server written
here.  Nothing listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import pytest
from challenges import parse_challenges

from oidc_guard import TokenValidator
from oidc_guard.testing import LocalIssuer

AUDIENCE = "api://contacts"
REALM = "reliability"

#: http_timeout used by the fault tests: short, so an outage test is quick,
#: and every latency bound below is written in terms of it.
HTTP_TIMEOUT = 0.5


@pytest.fixture
def issuers():
    """Factory for started LocalIssuers (stopped after the test)."""
    started: List[LocalIssuer] = []

    def make(**kwargs: Any) -> LocalIssuer:
        kwargs.setdefault("algs", ("RS256",))
        iss = LocalIssuer(**kwargs).start()
        started.append(iss)
        return iss

    yield make
    for iss in started:
        iss.stop()


@pytest.fixture
def issuer(issuers) -> LocalIssuer:
    return issuers()


def validator_for(iss: LocalIssuer, **kwargs: Any) -> TokenValidator:
    kwargs.setdefault("audience", AUDIENCE)
    kwargs.setdefault("http_timeout", HTTP_TIMEOUT)
    return TokenValidator(iss.issuer, **kwargs)


# --- calling a WSGI application in-process -----------------------------------


class Result:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def challenge(self, scheme: str = "Bearer") -> Optional[str]:
        """The WWW-Authenticate challenge of ``scheme`` (an API accepting
        Bearer and DPoP sends one of each, RFC 9449 section 7.1, in one
        field: tests/challenges.py reads them apart)."""
        fields = [value for key, value in self.headers if key.lower() == "www-authenticate"]
        for found, _params, raw in parse_challenges(fields):
            if found.lower() == scheme.lower():
                return raw
        return None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"Result({self.status}, {self.headers!r}, {self.body[:200]!r})"


def call_wsgi(app: Callable, *, authorization: Optional[str] = None, path: str = "/",
              method: str = "GET", query: str = "", extra: Optional[Dict[str, Any]] = None) -> Result:
    """Run one request through a WSGI app (PEP 3333 environ, no server)."""
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    environ.update(extra or {})
    seen: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable:
        seen["status"] = status
        seen["headers"] = list(headers)
        return lambda data: None

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Result(int(seen["status"][:3]), seen["headers"], body)


def protected_app(validator: TokenValidator, *, required: bool = False) -> Callable:
    """BearerMiddleware in front of a route that needs scope ``contacts``."""
    from oidc_guard import BearerMiddleware
    from oidc_guard.wsgi import require_scope

    @require_scope("contacts")
    def contacts(environ, start_response):
        claims = environ["oidc_guard.claims"]
        body = json.dumps({"sub": claims.subject}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return BearerMiddleware(contacts, validator, realm=REALM, required=required)


# --- a raw loopback HTTP server for what LocalIssuer cannot do ---------------


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each socket to ``handler``
    in its own thread; records every request line it receives.

    Used for bodies without Content-Length (the client must stop reading at
    its own limit) and for "attacker" URLs (jku, x5u) that must never be
    contacted: ``hits`` stays 0.
    """

    def __init__(self, handler: Optional[Callable[[socket.socket], None]] = None) -> None:
        self.handler = handler or self._not_found
        self.hits: List[bytes] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="RawServer")
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                data = conn.recv(4096)
                if not data:
                    break
                request += data
            with self._lock:
                self.hits.append(request.split(b"\r\n", 1)[0])
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def count_sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    @staticmethod
    def _not_found(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def raw_servers():
    started: List[RawServer] = []

    def make(handler: Optional[Callable[[socket.socket], None]] = None) -> RawServer:
        server = RawServer(handler)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
