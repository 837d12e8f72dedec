"""A real ``redis-server`` for the tests (Debian package ``redis-server``).

:class:`RedisServer` starts the binary on a free loopback port with no
persistence (``--save "" --appendonly no``), so nothing is written to disk and
every start is an empty database.  ``stop()`` kills it (tests use this to take
Redis away in the middle of a run) and ``start()`` brings it back on the same
port, as an operator restarting Redis would.

scripts/install_redis.sh installs the binary on a fresh machine (scripts/test.sh
runs it).  When it is missing the tests that need it skip, unless
``OIDC_GUARD_REDIS_REQUIRED=1`` (set by scripts/test.sh), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import List, Optional, Sequence

__all__ = ["RedisServer", "redis_binary", "free_port"]


def redis_binary() -> Optional[str]:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1.

    ``args``: more redis-server options, e.g.
    ``("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")``.
    """

    def __init__(self, port: Optional[int] = None, password: Optional[str] = None,
                 args: Sequence[str] = ()) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash scripts/install_redis.sh)")
        self.binary = binary
        self.port = port or free_port()
        self.password = password
        self.extra_args = list(args)
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _args(self) -> List[str]:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
            "--dir", "/tmp",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> "RedisServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        for attempt in range(3):
            self.proc = subprocess.Popen(
                self._args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        reply = s.recv(64)
                        if reply.startswith((b"+PONG", b"-NOAUTH")):
                            return self
                except OSError:
                    pass
                time.sleep(0.02)
            err = b""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read() or b""
            self.stop()
            if b"Address already in use" in err and attempt < 2:
                self.port = free_port()  # lost a race for the port: take another
                continue
            raise RuntimeError(f"redis-server did not start on port {self.port}: {err.decode(errors='replace')[-400:]}")
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()  # SIGKILL: as abrupt as a crash, nothing flushed
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def flushall(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            client.flushall()
        finally:
            client.close()
