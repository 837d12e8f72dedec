"""Section "introspection": reference tokens (RFC 7662), issue 10.

Rows:

* cached reference token vs cached JWT, us per ``validate_access_token``
  (target: <= 2 us and <= 2x the JWT);
* 16 threads x 1,000 requests over 10 new reference tokens: introspection
  calls counted by the provider (target: exactly 10);
* 4 gunicorn workers sharing one Redis, 10 tokens x 400 requests: calls in
  all (target: <= 10), and the same without Redis;
* 10,000 distinct random opaque tokens from 16 threads: the most calls in
  flight at the provider vs the bound, and the answers (401/503 only);
* Redis killed (SIGKILL) half-way through a mixed load: wrong answers and
  500s (target: 0 and 0).

Requests go through BearerMiddleware + require_scope (in process) except the
gunicorn row (real HTTP).  The provider is a LocalIssuer on loopback; Redis a
real redis-server on a free loopback port without persistence (skipped with
a note when redis-server or redis-py is missing).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from benchkit import ROOT, timing
from benchkit.reference_load import (
    call, introspection_calls, mixed_plan, new_reference_tokens, protected_app, reference_validator,
    run_threads, statuses,
)

from . import Context, Section, register

sys.path.insert(0, os.path.join(ROOT, "tests"))


def _redis() -> Optional[Any]:
    try:
        import redis  # noqa: F401
        from redis_server import RedisServer, redis_binary
    except ImportError:
        return None
    if redis_binary() is None:
        return None
    return RedisServer().start()


def row_cached(issuer: Any, quick: bool) -> None:
    ref = new_reference_tokens(issuer, 1)[0]
    jwt_token = issuer.mint(scope="wte")
    v = reference_validator(issuer)
    v.validate_access_token(ref)
    v.validate_access_token(jwt_token)
    rounds, target = (5, 0.02) if quick else (15, 0.05)
    # a new str per call, as a server makes one per request
    ref_b, jwt_b = ref.encode(), jwt_token.encode()
    samples = timing.interleaved({
        "reference": lambda: v.validate_access_token(ref_b.decode()),
        "jwt": lambda: v.validate_access_token(jwt_b.decode()),
    }, rounds, target)
    r, j = timing.med(samples["reference"]) * 1e6, timing.med(samples["jwt"]) * 1e6
    ratio = timing.paired_ratio(samples["reference"], samples["jwt"])
    print(f"  cached reference token            {r:6.2f} us/validation (spread {timing.spread(samples['reference'])})")
    print(f"  cached JWT (same validator)       {j:6.2f} us/validation (spread {timing.spread(samples['jwt'])})")
    print(f"  reference / JWT                   {ratio:6.2f}x      target <= 2 us and <= 2x")


def row_threads(issuer: Any) -> None:
    tokens = new_reference_tokens(issuer, 10)
    app = protected_app(reference_validator(issuer))
    before = introspection_calls(issuer)
    started = time.perf_counter()
    results = run_threads(16, [tokens[i % 10] for i in range(16_000)], lambda t: call(app, t))
    elapsed = time.perf_counter() - started
    print(f"  16 threads x 1,000 requests, 10 new tokens: {introspection_calls(issuer) - before} introspection calls "
          f"(target 10); answers {statuses(results)}; {len(results) / elapsed:,.0f} requests/s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, token: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/hello", headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def row_gunicorn(issuer: Any, redis_url: Optional[str]) -> None:
    from .gunicorn import _wait_port, gunicorn_cmd

    cmd = gunicorn_cmd()
    if cmd is None:
        print("  4 gunicorn workers: skipped (gunicorn is not installed)")
        return
    from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET

    here = os.path.join(ROOT, "bench")
    for label, shared in (("sharing Redis", redis_url), ("without Redis", None)):
        if label == "sharing Redis" and shared is None:
            print("  4 gunicorn workers sharing Redis: skipped (redis-server or redis-py missing)")
            continue
        env = dict(os.environ, BENCH_ISSUER=issuer.issuer, BENCH_AUDIENCE=issuer.audience, BENCH_SCOPE="wte",
                   BENCH_INTROSPECTION_CLIENT_ID=INTROSPECTION_CLIENT_ID,
                   BENCH_INTROSPECTION_CLIENT_SECRET=INTROSPECTION_CLIENT_SECRET,
                   PYTHONPATH=os.pathsep.join([ROOT, here]))
        if shared:
            env["BENCH_SHARED_CACHE"] = shared
        port = _free_port()
        proc = subprocess.Popen(cmd + ["--workers", "4", "--worker-class", "gthread", "--threads", "4",
                                       "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                                       'webapp:create_app("protected")'],
                                env=env, cwd=here, stdout=subprocess.DEVNULL)
        try:
            _wait_port(port, proc)
            tokens = new_reference_tokens(issuer, 10)
            before = introspection_calls(issuer)
            results = run_threads(16, [tokens[i % 10] for i in range(4000)], lambda t: _get(port, t))
            calls = introspection_calls(issuer) - before
            counts: Dict[int, int] = {}
            for code in results:
                counts[code] = counts.get(code, 0) + 1
            target = " (target <= 10)" if shared else ""
            print(f"  4 gunicorn workers {label}, 10 tokens x 400 requests: {calls} introspection calls{target}; "
                  f"answers {counts}")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def row_flood(issuer: Any, count: int) -> None:
    issuer.introspection_max_in_flight = 0
    v = reference_validator(issuer, introspection_max_in_flight=4, introspection_queue_timeout=0.2)
    app = protected_app(v)
    before = introspection_calls(issuer)
    started = time.perf_counter()
    results = run_threads(16, [secrets.token_urlsafe(24) for _ in range(count)], lambda t: call(app, t))
    elapsed = time.perf_counter() - started
    print(f"  {count:,} random opaque tokens, 16 threads: most calls in flight {issuer.introspection_max_in_flight} "
          f"(bound 4); {introspection_calls(issuer) - before:,} calls; answers {statuses(results)}; "
          f"{elapsed:.1f} s")


def row_redis_killed(issuer: Any, server: Any) -> None:
    good = new_reference_tokens(issuer, 8)
    revoked = new_reference_tokens(issuer, 4)
    for t in revoked:
        issuer.revoke(t)
    workers = [protected_app(reference_validator(issuer, shared_cache=server.url, introspection_max_in_flight=8,
                                                 introspection_queue_timeout=5)) for _ in range(3)]
    plan = mixed_plan(good, revoked, rounds=250, junk=lambda r: f"junk-{r}-{secrets.token_hex(8)}")
    lock = threading.Lock()
    done = [0]

    def one(item: Tuple[Tuple[str, int], Any]) -> Tuple[int, int]:
        (token, expected), worker = item
        code, _ = call(worker, token)
        with lock:
            done[0] += 1
            if done[0] == len(plan) // 2:
                server.stop()
        return code, expected

    results = run_threads(16, [(plan[i], workers[i % 3]) for i in range(len(plan))], one)
    wrong = sum(1 for code, expected in results if code not in (expected, 503))
    fivehundred = sum(1 for code, _ in results if code == 500)
    unavailable = sum(1 for code, _ in results if code == 503)
    print(f"  Redis killed half-way through {len(plan):,} requests: {wrong} wrong answers, {fivehundred} status 500, "
          f"{unavailable} status 503 (target 0 and 0)")


def run(ctx: Context) -> None:
    from oidc_guard.testing import LocalIssuer

    issuer = LocalIssuer(algs=("RS256",)).start()
    server = None
    try:
        server = _redis()
        print("Reference tokens (RFC 7662 introspection)")
        row_cached(issuer, ctx.quick)
        row_threads(issuer)
        row_gunicorn(issuer, server.url if server else None)
        row_flood(issuer, 2_000 if ctx.quick else 10_000)
        if server is not None:
            server.flushall()
            row_redis_killed(issuer, server)
        else:
            print("  Redis killed mid-load: skipped (redis-server or redis-py missing)")
    finally:
        if server is not None:
            server.stop()
        issuer.stop()


register(Section("introspection", run, shared_issuer=False))
