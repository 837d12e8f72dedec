#!/usr/bin/env python
"""Instruction count of one WSGI request through ``BearerMiddleware`` and a
decorator, with the access token in the validator's verified-token cache: the
adapter's own work on the common path (a figure that does not depend on the
load of a shared machine).

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=builtin_sorted \\
        --callgrind-out-file=/dev/null python bench/middleware_icount.py scope 2000

Only the code run inside ``sorted()`` is counted: ``sorted(range(N),
key=...)`` calls the measured step N times.  Divide the "Collected" total
valgrind prints by N for instructions per call.  Steps:

* ``scope``: ``Authorization: Bearer`` with a cached token, a WSGI callable
  decorated with ``require_scope("wte")`` (a real ``TokenValidator`` against
  ``oidc_guard.testing.LocalIssuer``);
* ``denied``: the same token on a route needing a scope it lacks (403);
* ``anonymous``: no token on a public route;
* ``dpop``: ``Authorization: DPoP`` with a cached bound token, its proof
  (real ES256 signature; a replay store that accepts every jti) and
  ``require_scope("wte")``.

Needs valgrind (Debian package); not part of ``bench/run.py``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

URL = "https://api.example.test/jobs"
AUDIENCE = "api://bench"


class _AcceptAll:
    shared = False

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return True


def setup() -> Dict[str, Callable[[], Any]]:
    from oidc_guard import BearerMiddleware, TokenValidator
    from oidc_guard.testing import DPoPKey, LocalIssuer
    from oidc_guard.wsgi import require_scope

    issuer = LocalIssuer(algs=("RS256",), audience=AUDIENCE).start()
    validator = TokenValidator(issuer.issuer, audience=AUDIENCE)
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": AUDIENCE, "sub": "alice", "exp": now + 3600,
              "scope": "wte", "client_id": "wte-worker"}
    token = issuer.sign(claims)
    key = DPoPKey("ES256")
    bound = issuer.sign(dict(claims, cnf=key.cnf))
    proof = key.proof("GET", URL, bound)

    def inner(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    guarded = require_scope("wte")(inner)
    needs_more = require_scope("coordinate")(inner)
    mw = BearerMiddleware(guarded, validator, realm="bench", public_url="https://api.example.test",
                          dpop_replay_store=_AcceptAll())
    mw_denied = BearerMiddleware(needs_more, validator, realm="bench")
    mw_public = BearerMiddleware(inner, validator, realm="bench")

    def expect(prefix: str) -> Callable[..., None]:
        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            if not status.startswith(prefix):
                raise SystemExit(f"unexpected {status}")
        return start_response

    ok, forbidden = expect("200"), expect("403")
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/jobs", "SCRIPT_NAME": "", "wsgi.url_scheme": "http",
           "HTTP_HOST": "internal:8000"}
    bearer_auth = "Bearer " + token
    dpop_auth = "DPoP " + bound

    def scope() -> Any:
        e = dict(env)
        e["HTTP_AUTHORIZATION"] = bearer_auth[:]
        return mw(e, ok)

    def denied() -> Any:
        e = dict(env)
        e["HTTP_AUTHORIZATION"] = bearer_auth[:]
        return mw_denied(e, forbidden)

    def anonymous() -> Any:
        return mw_public(dict(env), ok)

    def dpop() -> Any:
        e = dict(env)
        e["HTTP_AUTHORIZATION"] = dpop_auth[:]
        e["HTTP_DPOP"] = proof
        return mw(e, ok)

    for fn in (scope, denied, anonymous, dpop):
        fn()  # accepted / refused as expected, tokens cached
    return {"scope": scope, "denied": denied, "anonymous": anonymous, "dpop": dpop}


def main() -> None:
    step, n = sys.argv[1], int(sys.argv[2])
    fn = setup()[step]
    for _ in range(50):  # warm: memos filled, code objects specialised
        fn()
    sorted(range(n), key=lambda i: fn())


if __name__ == "__main__":
    main()
