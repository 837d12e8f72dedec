"""DPoP replay across processes: gunicorn with 4 worker processes sharing a
real redis-server as the replay store (RFC 9449 section 11.1).

* 1,000 replays of one proof, sent on fresh connections from 8 threads so the
  kernel spreads them over the workers: exactly one is accepted, every other
  is 401 ``invalid_dpop_proof``, and the answers came from more than one
  worker (so the refusal really crossed process boundaries).
* Redis stopped: DPoP requests fail closed with 503 + ``Retry-After`` (never
  a 200 whose replay could not be checked, never a 500); bearer requests go
  on; Redis back: DPoP requests are accepted again.

Counts, not timings.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oidc_guard.testing import DPoPKey, LocalIssuer
from processes import stop_process
from redis_server import free_port

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
PUBLIC_URL = "https://api.example.test"
WORKERS = 4
REPLAYS = 1000


def _get(port: int, headers: dict) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/jobs", headers=dict(headers, Connection="close"))
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, dict(resp.getheaders()), body
    finally:
        conn.close()


@pytest.fixture
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


@pytest.fixture
def gunicorn_app(issuer, redis_server, tmp_path):
    if not GUNICORN.exists() and shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (test extra)")
    exe = str(GUNICORN) if GUNICORN.exists() else shutil.which("gunicorn")
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w+")
    env = dict(os.environ, DPOP_ISSUER=issuer.issuer, DPOP_REDIS=redis_server.url, DPOP_PUBLIC_URL=PUBLIC_URL,
               PYTHONPATH=str(HERE))
    # sync workers, no --preload: four independent processes, each with its
    # own validator and middleware; Redis is all they share.
    proc = subprocess.Popen(
        [exe, "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE),
         "--log-level", "warning", "--graceful-timeout", "2", "dpop_app:app"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            try:
                status, _h, _b = _get(port, {})
                if status == 401:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            log.seek(0)
            pytest.fail("gunicorn did not start:\n" + log.read())
        yield port
    finally:
        stop_process(proc)
        log.close()


def test_one_proof_replayed_1000_times_over_4_workers_is_accepted_once(issuer, gunicorn_app):
    port = gunicorn_app
    key = DPoPKey("ES256")
    token = issuer.mint(claims={"cnf": key.cnf}, scope="wte")
    # warm every worker's JWKS cache with other proofs, so the replays race
    # on the replay store and not on a first key fetch
    for _ in range(WORKERS * 3):
        _get(port, {"Authorization": "DPoP " + token, "DPoP": key.proof("GET", PUBLIC_URL + "/jobs", token)})

    proof = key.proof("GET", PUBLIC_URL + "/jobs", token)
    headers = {"Authorization": "DPoP " + token, "DPoP": proof}
    results: list = []
    lock = threading.Lock()
    todo = iter(range(REPLAYS))
    barrier = threading.Barrier(8)

    def client():
        barrier.wait()
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            status, resp_headers, body = _get(port, headers)
            with lock:
                results.append((status, resp_headers.get("X-Worker-Pid"), json.loads(body).get("error")))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = collections.Counter(status for status, _pid, _e in results)
    errors = collections.Counter(error for status, _pid, error in results if status == 401)
    pids = {pid for _s, pid, _e in results}
    print(f"\nDPoP replay over {WORKERS} gunicorn workers sharing Redis: {REPLAYS} requests, "
          f"statuses {dict(statuses)}, answered by {len(pids)} worker processes")
    assert len(results) == REPLAYS
    assert statuses[200] == 1, statuses
    assert statuses[401] == REPLAYS - 1 and errors == {"invalid_dpop_proof": REPLAYS - 1}, (statuses, errors)
    assert len(pids) >= 2, "the replays all hit one worker: the test proves nothing across processes"


def test_redis_down_fails_closed_for_dpop_only_and_recovers(issuer, redis_server, gunicorn_app):
    port = gunicorn_app
    key = DPoPKey("EdDSA")
    bound = issuer.mint(claims={"cnf": key.cnf})
    plain = issuer.mint()
    url = PUBLIC_URL + "/jobs"
    for _ in range(WORKERS * 2):  # every worker has the keys
        assert _get(port, {"Authorization": "DPoP " + bound, "DPoP": key.proof("GET", url, bound)})[0] == 200

    redis_server.stop()
    seen = collections.Counter()
    for _ in range(WORKERS * 4):
        status, headers, body = _get(port, {"Authorization": "DPoP " + bound, "DPoP": key.proof("GET", url, bound)})
        seen[status] += 1
        if status == 503:
            assert int(headers["Retry-After"]) >= 1
            assert "WWW-Authenticate" not in headers
            assert "127.0.0.1" not in body.decode()  # the Redis address is for the log only
        assert _get(port, {"Authorization": "Bearer " + plain})[0] == 200  # bearer tokens unaffected
    print(f"\nRedis stopped: DPoP answers {dict(seen)}")
    assert seen == {503: WORKERS * 4}, seen

    redis_server.start()
    time.sleep(1.5)  # the shared cache's failure cooldown (1 s) runs out
    ok = collections.Counter(
        _get(port, {"Authorization": "DPoP " + bound, "DPoP": key.proof("GET", url, bound)})[0]
        for _ in range(WORKERS * 4))
    assert ok == {200: WORKERS * 4}, ok
