"""The gunicorn part of section "web": two gunicorn servers (open and
protected app, one gthread worker each) on 127.0.0.1, loaded by a separate
client process (child "load": one keep-alive HTTP/1.1 connection, raw
socket, every response checked for 200).  Reported as requests/s of
wall-clock time and per CPU-second of the worker (from /proc)."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from benchkit import AUDIENCE, HERE, ROOT
from sections import register_child, run_child


def load_client(port: int, path: str, token: str, duration: float, warmup: int) -> Dict[str, float]:
    """Keep-alive HTTP/1.1 load from this process on one connection: send a
    request, read the whole response (Content-Length), repeat for
    ``duration`` seconds after ``warmup`` requests.  Every response must be
    200, else the run is void."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json"]
    if token:
        lines.append("Authorization: Bearer " + token)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    sock = connect()
    buf = b""
    reconnects = 0

    def one() -> None:
        nonlocal sock, buf, reconnects
        while True:
            try:
                sock.sendall(request)
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    buf += chunk
                break
            except (ConnectionError, OSError):
                sock.close()
                sock = connect()
                buf = b""
                reconnects += 1
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = head[9:12]
        if status != b"200":
            raise SystemExit(f"load client: got HTTP {status.decode()} from {path}")
        length = 0
        keep = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                keep = False
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("load client: short body")
            rest += chunk
        buf = rest[length:]
        if not keep:
            sock.close()
            sock = connect()
            buf = b""
            reconnects += 1

    for _ in range(warmup):
        one()
    count = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    while True:
        for _ in range(20):
            one()
        count += 20
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - t0
    sock.close()
    return {"requests": count, "total": count + warmup, "seconds": elapsed, "rps": count / elapsed,
            "reconnects": reconnects}


def _cpu_seconds_of_children(parent: int) -> float:
    """utime + stime of the processes whose parent is ``parent`` (gunicorn's
    workers), from /proc (Linux); 0.0 where /proc is not available."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0.0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:  # fields[1] is ppid; utime, stime are fields 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start listening")


def gunicorn_cmd() -> Optional[List[str]]:
    try:
        config = importlib.import_module("gunicorn.config")
    except ImportError:
        return None
    cmd = [sys.executable, "-m", "gunicorn"]
    # gunicorn >= 25 opens a control socket under ~/.gunicorn by default;
    # the benchmark needs none (and must not touch the home directory).
    flags = {flag for setting in getattr(config, "KNOWN_SETTINGS", ()) for flag in (getattr(setting, "cli", None) or ())}
    if "--no-control-socket" in flags:
        cmd.append("--no-control-socket")
    return cmd


def section_gunicorn(issuer: Any, token: str, rounds: int, duration: float) -> Dict[str, Any]:
    cmd = gunicorn_cmd()
    if cmd is None:
        return {"skipped": "gunicorn is not installed (pip install gunicorn, or the 'bench' extra)"}
    env = dict(os.environ)
    env["BENCH_ISSUER"] = issuer.issuer
    env["BENCH_AUDIENCE"] = AUDIENCE
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    servers: Dict[str, Tuple[subprocess.Popen, int]] = {}
    try:
        for kind in ("open", "protected"):
            port = _free_port()
            proc = subprocess.Popen(
                cmd + ["--workers", "1", "--worker-class", "gthread", "--threads", "2",
                       "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30",
                       f'webapp:create_app("{kind}")'],
                env=env, cwd=HERE, stdout=subprocess.DEVNULL,
            )
            servers[kind] = (proc, port)
        for proc, port in servers.values():
            _wait_port(port, proc)
        # (sample name, server, token sent): "open_hdr" sends the token to the
        # open app, which ignores it: the HTTP cost of an 800-byte header.
        plan = (("open", "open", ""), ("open_hdr", "open", token), ("protected", "protected", token))
        samples: Dict[str, List[float]] = {name: [] for name, _, _ in plan}
        samples.update({name + "_cpu": [] for name, _, _ in plan})
        for _ in range(rounds):
            for name, kind, sent in plan:
                proc, port = servers[kind]
                cpu0 = _cpu_seconds_of_children(proc.pid)
                result = run_child("load", [str(port), "/hello", sent, str(duration)],
                                   timeout=duration + 60, what="load client")
                cpu = _cpu_seconds_of_children(proc.pid) - cpu0
                samples[name].append(result["rps"])
                # requests per CPU-second of the worker: what the server can
                # do per core, whatever else the machine is running.
                samples[name + "_cpu"].append(result["total"] / cpu if cpu > 0 else float("nan"))
        return samples
    finally:
        for proc, _port in servers.values():
            proc.terminate()
        for proc, _port in servers.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _load_child(args: List[str]) -> Dict[str, float]:
    port, path, token, duration = args
    return load_client(int(port), path, token, float(duration), warmup=200)


register_child("load", _load_child)
