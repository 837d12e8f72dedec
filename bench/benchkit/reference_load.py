"""Load helpers for reference tokens (introspection), shared by the benchmark
section ``introspection`` and the reliability tests that check its counts.

Requests go through :class:`oidc_guard.wsgi.BearerMiddleware` in front of a
``require_scope("wte")`` WSGI app, called directly with a WSGI environ (no
sockets on the API side); the provider is a real loopback
:class:`~oidc_guard.testing.LocalIssuer` (its ``/introspect`` counts calls
and the most calls in flight at once).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from oidc_guard import TokenValidator
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET
from oidc_guard.wsgi import BearerMiddleware, require_scope

SCOPE = "wte"


def reference_validator(issuer: Any, **kwargs: Any) -> TokenValidator:
    kwargs.setdefault("introspection_client_id", INTROSPECTION_CLIENT_ID)
    kwargs.setdefault("introspection_client_secret", INTROSPECTION_CLIENT_SECRET)
    kwargs.setdefault("http_timeout", 5)
    return TokenValidator(issuer.issuer, audience=issuer.audience, **kwargs)


def protected_app(validator: Any) -> Callable[[Dict[str, Any], Any], Any]:
    def hello(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        claims = environ["oidc_guard.claims"]
        body = (claims.client_id or "").encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return BearerMiddleware(require_scope(SCOPE)(hello), validator, realm="bench")


def call(app: Any, token: str) -> Tuple[int, bytes]:
    """One request; (status code, body).  An exception escaping the stack
    counts as a 500 (what a WSGI server would answer)."""
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/hello", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": "Bearer " + token,
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    status: List[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    try:
        body = b"".join(app(environ, start_response))
    except Exception:  # noqa: BLE001 - a 500 is what we count
        return 500, b""
    return int(status[0].split(" ", 1)[0]), body


def run_threads(n_threads: int, work: Sequence[Any], fn: Callable[[Any], Any]) -> List[Any]:
    """Run ``fn`` over ``work`` from ``n_threads`` threads (item i goes to
    thread i % n_threads); the results, in no particular order."""
    results: List[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def worker(part: Sequence[Any]) -> None:
        barrier.wait()
        out = [fn(item) for item in part]
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=worker, args=(work[i::n_threads],)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def statuses(results: Sequence[Tuple[int, bytes]]) -> Dict[int, int]:
    return dict(Counter(code for code, _ in results))


def new_reference_tokens(issuer: Any, count: int, client_id: str = "wte-worker-ref") -> List[str]:
    return [issuer.mint(reference=True, subject=None, scope=SCOPE, client_id=client_id) for _ in range(count)]


def introspection_calls(issuer: Any) -> int:
    return int(issuer.fetch_counts.get("introspection", 0))


def mixed_plan(good: Sequence[str], revoked: Sequence[str], rounds: int, junk: Optional[Callable[[int], str]] = None
               ) -> List[Tuple[str, int]]:
    """(token, expected status) pairs: good -> 200, revoked -> 401, junk -> 401."""
    plan: List[Tuple[str, int]] = []
    for r in range(rounds):
        for t in good:
            plan.append((t, 200))
        for t in revoked:
            plan.append((t, 401))
        if junk is not None:
            plan.append((junk(r), 401))
    return plan
