"""A real uvicorn server on a loopback port, in a thread of the test
process, with a probe of its event loop's lag: a task that asks to wake
every 10 ms and records how late it woke.  Anything that blocks the loop
(a blocking socket call, time.sleep) shows up as lag of its own length."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, List, Optional

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UvicornServer:
    """``UvicornServer(app).start()``; ``.url``; ``.max_lag()``; ``.stop()``."""

    TICK = 0.01

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "off")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **config))
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.lags: List[float] = []
        self._thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        probe = asyncio.ensure_future(self._probe())
        try:
            await self.server.serve()
        finally:
            probe.cancel()

    async def _probe(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK)
            self.lags.append(time.monotonic() - before - self.TICK)

    def start(self) -> "UvicornServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def reset_lag(self) -> None:
        self.lags.clear()

    def max_lag(self) -> float:
        return max(self.lags, default=0.0)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
