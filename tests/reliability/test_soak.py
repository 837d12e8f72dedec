"""Soak: gunicorn (gthread) serving a protected Flask app (OIDCGuard, so
the WSGI middleware underneath) that trusts a loopback LocalIssuer,
hammered by many client threads for a fixed time.

Every request's correct status is known before it is sent (valid, no scope,
expired, unknown kid, wrong audience, garbage, malformed header, no token,
public route), and a 200 must name the owner of the very token sent (a
claims mix-up between server threads is a wrong answer).  From 40 % to 70 % of the run the issuer's JWKS endpoint
hangs (answers after 10 s, past the app's 2 s http_timeout): tokens of known
keys must keep getting 200, and only unknown-kid tokens may get 503 (never a
500, never a 401 for a good token).  Asserted: zero 5xx other than those
503s, zero wrong answers, JWKS fetches bounded by the unknown-kid cooldown,
the worker's memory flat, and no request slower than the outage bound.  The
figures are printed so they show in CI output.

``OIDC_GUARD_SOAK_SECONDS`` (default 20) and ``OIDC_GUARD_SOAK_CLIENTS``
(default 16) change the load.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import socket
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from oidc_guard.testing import LocalIssuer
from processes import stop_process

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("OIDC_GUARD_SOAK_SECONDS", "20"))
CLIENTS = int(os.environ.get("OIDC_GUARD_SOAK_CLIENTS", "16"))
COOLDOWN = 5.0
APP_HTTP_TIMEOUT = 2.0  # soak_app.py
#: an unknown-kid request during the outage may lead one fetch (discovery
#: is cached, so JWKS only) or wait for the one in flight: 2 x timeout plus
#: slack for a queue of 16 clients on 8 server threads
OUTAGE_LATENCY_BOUND = 2 * APP_HTTP_TIMEOUT + 3.0
WARMUP = 3.0
#: generous: a leak of even a few hundred bytes per request over ~20 000
#: requests would cross it; allocator noise and caches filling up stay below
RSS_GROWTH_BOUND_MB = 25.0

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> Tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB, from /proc (proc(5))."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def _garbage(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    kind = rng.randrange(3)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
    if kind == 1:
        return ".".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))) for _ in range(3))
    return "eyJhbGciOiJub25lIn0." + "".join(rng.choice(alphabet) for _ in range(40)) + "."


class Workload:
    """The request mix: (name, path, Authorization header or None, expected status)."""

    def __init__(self, iss: LocalIssuer) -> None:
        # every valid token has its own subject: (token, subject)
        self.cached_valid = [(iss.mint(subject=f"cached-{i}"), f"cached-{i}") for i in range(20)]
        self.fresh_valid = [(iss.mint(subject=f"user-{i}", alg=("ES256" if i % 2 else "RS256")), f"user-{i}")
                            for i in range(400)]
        self.no_scope = [iss.mint(scope="other") for _ in range(5)]
        self.expired = [iss.mint(expires_in=-3600) for _ in range(5)]
        self.unknown_kid = [iss.mint(kid=iss.add_key(publish=False)) for _ in range(3)]
        self.wrong_audience = [iss.mint(audience="api://other") for _ in range(5)]

    def pick(self, rng: random.Random, n: int) -> Tuple[str, str, Optional[str], int, Optional[str]]:
        """(kind, path, Authorization or None, expected status, expected owner)"""
        roll = rng.randrange(100)
        if roll < 30:
            token, sub = rng.choice(self.cached_valid)
            return "valid-cached", "/contacts", "Bearer " + token, 200, sub
        if roll < 40:
            # cold the first time each is used (400 tokens), cached after
            token, sub = self.fresh_valid[n % len(self.fresh_valid)]
            return "valid-cold", "/contacts", "Bearer " + token, 200, sub
        return self._pick_invalid(rng, roll) + (None,)

    def _pick_invalid(self, rng: random.Random, roll: int) -> Tuple[str, str, Optional[str], int]:
        if roll < 47:
            return "no-scope", "/contacts", "Bearer " + rng.choice(self.no_scope), 403
        if roll < 55:
            return "expired", "/contacts", "Bearer " + rng.choice(self.expired), 401
        if roll < 63:
            return "unknown-kid", "/contacts", "Bearer " + rng.choice(self.unknown_kid), 401
        if roll < 68:
            return "wrong-audience", "/contacts", "Bearer " + rng.choice(self.wrong_audience), 401
        if roll < 80:
            return "garbage", "/contacts", "Bearer " + _garbage(rng), 401
        if roll < 85:
            return "malformed-header", "/contacts", rng.choice(["Bearer", "Bearer a b", "Bearer \"x\"", "Bearer ,x"]), 400
        if roll < 90:
            return "no-token", "/contacts", None, 401
        if roll < 95:
            return "public-invalid-token", "/public", "Bearer " + _garbage(rng), 200
        return "public-anonymous", "/public", None, 200


@pytest.fixture
def soak_issuer():
    iss = LocalIssuer(algs=("RS256", "ES256")).start()
    yield iss
    iss.stop()


@pytest.fixture
def gunicorn_server(soak_issuer, tmp_path):
    if not GUNICORN.exists() and shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed in this environment: it belongs in the test extra (setup.cfg) so CI runs the soak")
    exe = str(GUNICORN) if GUNICORN.exists() else shutil.which("gunicorn")
    port = _free_port()
    log = open(tmp_path / "gunicorn.log", "w+")
    env = dict(os.environ, SOAK_ISSUER=soak_issuer.issuer, SOAK_AUDIENCE="api://contacts",
               SOAK_JWKS_COOLDOWN=str(COOLDOWN), PYTHONPATH=str(HERE))
    proc = subprocess.Popen(
        [exe, "--worker-class", "gthread", "--workers", "1", "--threads", "8",
         "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE), "--log-level", "warning",
         "--graceful-timeout", "2", "soak_app:app"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    deadline = time.monotonic() + 20
    pid = None
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_pid")
            pid = json.loads(conn.getresponse().read())["pid"]
            conn.close()
            break
        except (OSError, http.client.HTTPException, ValueError):
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    if pid is None:
        proc.kill()
        log.seek(0)
        pytest.fail("gunicorn did not start:\n" + log.read()[-3000:])
    yield {"port": port, "pid": pid, "log": log}
    stop_process(proc)
    log.close()


def test_soak_gunicorn_threads(soak_issuer, gunicorn_server, capsys):
    port, pid = gunicorn_server["port"], gunicorn_server["pid"]
    work = Workload(soak_issuer)
    soak_issuer.reset_counts()

    counts: Counter = Counter()
    wrong: List[str] = []
    statuses: Counter = Counter()
    transport: Counter = Counter()
    latencies: List[float] = []
    lock = threading.Lock()
    phase = {"outage": False, "ended": float("-inf")}
    outage_stats: Counter = Counter(worst=0.0)
    start = time.monotonic()
    stop_at = start + SECONDS

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local_lat: List[float] = []
        n = seed
        while time.monotonic() < stop_at:
            name, path, auth, expected, owner = work.pick(rng, n)
            n += CLIENTS
            headers = {} if auth is None else {"Authorization": auth}
            in_outage = phase["outage"]
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                # a closed keep-alive connection: count it, reconnect, go on
                with lock:
                    transport[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            took = time.perf_counter() - t0
            local_lat.append(took)
            # an unknown kid while the JWKS cannot be refreshed is the
            # provider's problem: 503 is right then (and until the first
            # successful refetch after the outage, at most a cooldown later)
            allowed = {expected}
            if name == "unknown-kid" and (in_outage or phase["outage"] or
                                          time.monotonic() < phase["ended"] + COOLDOWN + APP_HTTP_TIMEOUT + 1):
                allowed = {401, 503}
            with lock:
                counts[name] += 1
                statuses[status] += 1
                if in_outage or phase["outage"]:
                    outage_stats["requests"] += 1
                    outage_stats["worst"] = max(outage_stats["worst"], took)
                    outage_stats[f"{name}:{status}"] += 1
                if status not in allowed:
                    wrong.append(f"{name}: expected {expected}, got {status}")
                elif owner is not None and status == 200 and json.loads(body).get("owner") != owner:
                    wrong.append(f"{name}: expected owner {owner}, got {body[:100]!r}")
        conn.close()
        with lock:
            latencies.extend(local_lat)

    # memory: sampled after the warm-up (caches filling, first fetches) and
    # at the end; VmHWM is the peak over the worker's life
    samples: List[Tuple[float, int]] = []

    def sampler() -> None:
        while time.monotonic() < stop_at:
            samples.append((time.monotonic() - start, _rss_kb(pid)[0]))
            time.sleep(0.5)

    def outage() -> None:
        time.sleep(SECONDS * 0.4)
        soak_issuer.set_fault("jwks", delay=10.0)
        phase["outage"] = True
        time.sleep(SECONDS * 0.3)
        soak_issuer.clear_faults()
        phase["ended"] = time.monotonic()
        phase["outage"] = False

    pool = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    pool.append(threading.Thread(target=sampler))
    pool.append(threading.Thread(target=outage))
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - start
    rss_end, rss_peak = _rss_kb(pid)
    after_warmup = [kb for at, kb in samples if at >= WARMUP]
    rss_start = after_warmup[0] if after_warmup else samples[0][1]
    growth_mb = (rss_end - rss_start) / 1024
    fetches = soak_issuer.fetch_counts
    total = sum(counts.values())
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    worst = latencies[-1] if latencies else 0.0
    jwks_bound = 1 + int(SECONDS / COOLDOWN) + 1

    summary = {
        "seconds": round(elapsed, 1),
        "clients": CLIENTS,
        "gunicorn": "1 worker, gthread, 8 threads, Flask app with OIDCGuard",
        "requests": total,
        "requests_per_s": round(total / elapsed),
        "by_kind": dict(sorted(counts.items())),
        "by_status": dict(sorted(statuses.items())),
        "wrong_answers": len(wrong),
        "status_500": statuses[500],
        "status_503_unknown_kid_outage": statuses[503],
        "outage": {
            "seconds": round(SECONDS * 0.3, 1),
            "requests": outage_stats["requests"],
            "worst_latency_ms": round(outage_stats["worst"] * 1000, 1),
            "valid_200": outage_stats["valid-cached:200"] + outage_stats["valid-cold:200"],
            "valid_not_200": sum(v for k, v in outage_stats.items()
                                 if k.startswith("valid-") and not k.endswith(":200")),
            "unknown_kid_503": outage_stats["unknown-kid:503"],
            "unknown_kid_401": outage_stats["unknown-kid:401"],
        },
        "transport_errors": dict(transport),
        "jwks_fetches": fetches["jwks"],
        "jwks_fetch_bound": jwks_bound,
        "discovery_fetches": fetches["discovery"],
        "rss_after_warmup_mb": round(rss_start / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        "rss_growth_mb": round(growth_mb, 1),
        "rss_peak_mb": round(rss_peak / 1024, 1),
        "latency_ms": {"p50": round(p50 * 1000, 1), "p99": round(p99 * 1000, 1), "worst": round(worst * 1000, 1)},
    }
    with capsys.disabled():
        print("\n[reliability] soak: " + json.dumps(summary, indent=1))

    gunicorn_server["log"].seek(0)
    server_log = gunicorn_server["log"].read()
    assert "Traceback" not in server_log, server_log[-3000:]
    assert total > 0
    assert not wrong, wrong[:10]
    # no 500 ever; a 503 only for an unknown kid while the JWKS could not be
    # refreshed (any other 503 is in ``wrong`` above)
    assert {s for s in statuses if s >= 500} <= {503}
    # last-known-good: valid tokens kept working through the outage
    assert summary["outage"]["valid_not_200"] == 0
    if SECONDS * 0.3 > COOLDOWN + APP_HTTP_TIMEOUT:
        assert summary["outage"]["valid_200"] > 0
        assert summary["outage"]["unknown_kid_503"] > 0  # the outage was real and seen as one
    assert outage_stats["worst"] < OUTAGE_LATENCY_BOUND
    assert worst < OUTAGE_LATENCY_BOUND
    assert sum(transport.values()) <= total // 1000, transport  # reconnects are rare, not a failure mode
    assert all(counts[k] > 0 for k in ("valid-cached", "valid-cold", "unknown-kid", "garbage", "expired"))
    # the first use fetches the JWKS; after that only unknown kids may, at
    # most once per cooldown (the worker never fetches per request)
    assert 1 <= fetches["jwks"] <= jwks_bound
    assert fetches["discovery"] == 1
    assert growth_mb < RSS_GROWTH_BOUND_MB
