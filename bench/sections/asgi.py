"""Section "asgi": a FastAPI route with ``Security(guard, scopes=["contacts"])``
and a cached token against the same route without it (``bench/asgiapp.py``),

(a) in process: one ASGI call per request, straight into the app on an
    asyncio loop (no server, no client library), interleaved rounds;
(b) under uvicorn (one process, one worker) on 127.0.0.1, loaded by a
    separate client process (child "load": one keep-alive connection, raw
    socket, every answer checked for 200), the two routes interleaved;
(c) latency of a cached-token request under uvicorn (child "asgi_latency":
    one request at a time, each timed), p50 and p99, without and while a
    JWKS refresh is slow: the issuer's JWKS answers after 2 s and another
    client keeps sending tokens with unknown kids, so a refetch is always
    waiting on it (cooldown 0).

Targets: protected / open >= 0.90 in (a) and (b); p99 while slow <= 2x p99
without in (c).  Row (a) also shows a security dependency that checks
nothing: FastAPI's dependency system alone costs more than a tenth of a
bare ASGI call of a hello-world route, so (a) cannot reach 0.90 whatever
the dependency does; "guard / no-op" is oidc_guard's own share, and (a2)
the same comparison through httpx's ASGI transport (an in-process test
client, as the Flask section's test-client row).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from benchkit import HERE, ROOT
from benchkit.timing import med, paired_ratio, spread
from sections import Context, Section, register, register_child, run_child


def missing() -> Optional[str]:
    try:
        import fastapi  # noqa: F401
        import oidc_guard.fastapi  # noqa: F401
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


# --- (a) in process -------------------------------------------------------------------


def asgi_caller(app: Any, path: str, token: Optional[str]) -> Callable[[], Any]:
    """A coroutine function making one request: a fresh scope per call, as
    a server makes it; the answer must be 200."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/json")]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode("ascii")))
    template = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                "headers": headers, "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> None:
        status: List[int] = []

        async def send(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(template), receive, send)
        if status != [200]:
            raise RuntimeError(f"benchmark request to {path} was answered {status}")

    return call


def client_caller(app: Any, path: str, token: Optional[str]) -> Callable[[], Any]:
    """One request through httpx's ASGI transport (what an in-process test
    client does), as the Flask section's test-client row."""
    import httpx

    headers = {"Authorization": "Bearer " + token} if token else {}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")

    async def call() -> None:
        response = await client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"benchmark request to {path} was answered {response.status_code}")

    return call


def section_inprocess(issuer: Any, token: str, rounds: int, target: float) -> Dict[str, List[float]]:
    sys.path.insert(0, HERE)
    from asgiapp import create_app

    app = create_app(issuer.issuer, issuer.audience)
    cases = {"open": asgi_caller(app, "/open", None), "open_hdr": asgi_caller(app, "/open", token),
             "floor": asgi_caller(app, "/floor", token), "prot": asgi_caller(app, "/hello", token),
             "client_open": client_caller(app, "/open", None), "client_prot": client_caller(app, "/hello", token)}

    async def sample(call: Callable[[], Any], number: int) -> float:
        t0 = time.perf_counter()
        for _ in range(number):
            await call()
        return time.perf_counter() - t0

    async def main() -> Dict[str, List[float]]:
        numbers = {}
        for name, call in cases.items():
            await call()
            number = 64
            while await sample(call, number) < target / 4:
                number *= 2
            numbers[name] = number * 4
        out: Dict[str, List[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, call in cases.items():
                out[name].append(numbers[name] / await sample(call, numbers[name]))
        return out

    return asyncio.run(main())


# --- (b), (c) under uvicorn --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_uvicorn(issuer: Any, cooldown: float) -> "tuple[subprocess.Popen[bytes], int]":
    port = _free_port()
    env = dict(os.environ, BENCH_ISSUER=issuer.issuer, BENCH_AUDIENCE=str(issuer.audience),
               BENCH_JWKS_COOLDOWN=str(cooldown))
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "asgiapp:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
                             "--lifespan", "off"], env=env, cwd=HERE, stdout=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("uvicorn did not start listening")


def latency_client(port: int, path: str, token: str, duration: float) -> Dict[str, float]:
    """One keep-alive connection, one request at a time, each timed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": "Bearer " + token}
    times: List[float] = []
    for _ in range(50):  # warm-up
        conn.request("GET", path, headers=headers)
        conn.getresponse().read()
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - t0)
        if response.status != 200:
            raise SystemExit(f"latency client: HTTP {response.status}")
    conn.close()
    times.sort()
    return {"n": len(times), "p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99)]}


register_child("asgi_latency", lambda args: latency_client(int(args[0]), args[1], args[2], float(args[3])))


def _junk_kid_traffic(port: int, issuer: Any, stop: threading.Event, waiting: List[int]) -> None:
    """Tokens with kids the validator has never seen, one after another:
    each makes it refetch the (slow) JWKS."""
    while not stop.is_set():
        token = issuer.mint(header={"kid": "bench-" + secrets.token_hex(6)})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/hello", headers={"Authorization": "Bearer " + token})
            t0 = time.perf_counter()
            conn.getresponse().read()
            waiting.append(int((time.perf_counter() - t0) * 1000))
        except OSError:
            pass
        finally:
            conn.close()


def section_uvicorn(issuer: Any, token: str, rounds: int, duration: float) -> Dict[str, Any]:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        return {"skipped": "uvicorn is not installed (pip install uvicorn, or the 'bench' extra)"}
    proc, port = start_uvicorn(issuer, cooldown=0)
    try:
        samples: Dict[str, Any] = {"open": [], "prot": []}
        for _ in range(rounds):
            for name, path in (("open", "/open"), ("prot", "/hello")):
                result = run_child("load", [str(port), path, token if name == "prot" else "", str(duration)],
                                   timeout=duration + 60, what="load client")
                samples[name].append(result["rps"])
        lat_args = [str(port), "/hello", token, str(max(duration, 2.0))]
        calm: List[Dict[str, float]] = []
        slow: List[Dict[str, float]] = []
        waits: List[int] = []
        # Interleaved: a sample without, then one with the slow refresh, per
        # round, so a change of the machine's load hits both alike.
        for _ in range(rounds):
            calm.append(run_child("asgi_latency", lat_args, timeout=120, what="latency client"))
            issuer.set_fault("jwks", delay=2.0)
            stop = threading.Event()
            traffic = threading.Thread(target=_junk_kid_traffic, args=(port, issuer, stop, waits), daemon=True)
            traffic.start()
            time.sleep(0.3)  # a refetch is now waiting on the slow JWKS
            try:
                slow.append(run_child("asgi_latency", lat_args, timeout=120, what="latency client"))
            finally:
                stop.set()
                issuer.clear_faults("jwks")
                traffic.join(timeout=10)
        samples.update(calm=calm, slow=slow, junk_waits=waits)
        return samples
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def print_asgi(inproc: Optional[Dict[str, List[float]]], uv: Optional[Dict[str, Any]], skipped: Optional[str]) -> None:
    print("FastAPI JSON route, requests/s (median; open = no guard, protected = Security(guard,")
    print("scopes=['contacts']) with a cached RS256 token)")
    if skipped:
        print(f"  SKIPPED: {skipped}")
        print()
        return
    print(f"{'':40}{'open':>10}{'protected':>11}{'prot/open':>11}   target >= 0.90")
    if inproc:
        o, p = med(inproc["open"]), med(inproc["prot"])
        print(f"{'(a) in process, one ASGI call':40}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: "
              f"{paired_ratio(inproc['prot'], inproc['open']):.3f}; spread {spread(inproc['prot'])})")
        f = med(inproc["floor"])
        print(f"{'    a no-op Security dependency':40}{o:10.0f}{f:11.0f}{f / o:11.3f}   (FastAPI's own cost of any "
              f"security dependency)")
        print(f"{'    guard / no-op dependency':40}{'':10}{'':11}{p / f:11.3f}   (what oidc_guard adds to it)")
        o, p = med(inproc["client_open"]), med(inproc["client_prot"])
        print(f"{'(a2) in process, httpx ASGI transport':40}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: "
              f"{paired_ratio(inproc['client_prot'], inproc['client_open']):.3f})")
    if uv is None or "skipped" in uv:
        print(f"(b) uvicorn: SKIPPED: {(uv or {}).get('skipped', 'not run')}")
    else:
        o, p = med(uv["open"]), med(uv["prot"])
        print(f"{'(b) uvicorn, 1 process, keep-alive':40}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: "
              f"{paired_ratio(uv['prot'], uv['open']):.3f}; spread {spread(uv['prot'])})")
        calm_p99 = med([r["p99"] for r in uv["calm"]]) * 1000
        slow_p99 = med([r["p99"] for r in uv["slow"]]) * 1000
        calm_p50 = med([r["p50"] for r in uv["calm"]]) * 1000
        slow_p50 = med([r["p50"] for r in uv["slow"]]) * 1000
        print("(c) cached-token request under uvicorn, ms     p50      p99   target: p99 slow <= 2x calm")
        print(f"{'    no refresh running':40}{calm_p50:9.2f}{calm_p99:9.2f}")
        print(f"{'    JWKS refresh waiting 2 s':40}{slow_p50:9.2f}{slow_p99:9.2f}   "
              f"ratio {slow_p99 / calm_p99:.2f}  ({len(uv['junk_waits'])} unknown-kid requests, "
              f"each waited ~{med(uv['junk_waits']) if uv['junk_waits'] else 0:.0f} ms)")
    print()


def run(ctx: Context) -> None:
    rounds, target, duration = (3, 0.1, 1.0) if ctx.quick else (7, 0.2, 2.0)
    reason = missing()
    if reason:
        print_asgi(None, None, f"oidc_guard.fastapi is not importable ({reason})")
        return
    from oidc_guard.testing import LocalIssuer

    issuer = LocalIssuer(algs=("RS256",)).start()  # its own: faults are set on it
    try:
        token = issuer.mint()
        inproc = section_inprocess(issuer, token, rounds, target)
        try:
            uv = section_uvicorn(issuer, token, rounds, duration)
        except Exception as exc:  # report, keep the other figures
            uv = {"skipped": f"{exc.__class__.__name__}: {exc}"}
        print_asgi(inproc, uv, None)
    finally:
        issuer.stop()


register(Section("asgi", run, shared_issuer=False))
