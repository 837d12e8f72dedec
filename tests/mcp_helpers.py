"""Helpers of the MCP tests: an ASGI app under uvicorn on a loopback port
(the real server the SDK's client talks to), and the SDK's own client.

Only imported by tests that have already skipped without the MCP SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@contextlib.contextmanager
def serve(make_app: Callable[[str], Any], path: str = "/mcp") -> Iterator[str]:
    """Serve ``make_app(url)`` with uvicorn on 127.0.0.1 (a port bound
    before the app is built, so the app knows its own URL); yields the
    URL ``http://127.0.0.1:<port><path>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{path}"
    app = make_app(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


async def _calls(url: str, headers: Dict[str, str], calls: Sequence[Tuple[str, Dict[str, Any]]],
                 auth: Any = None) -> Tuple[Any, List[Any]]:
    async with create_mcp_http_client(headers=headers, auth=auth) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                results = [await session.call_tool(name, arguments) for name, arguments in calls]
                return (init, tools), results


def call_tools(url: str, token: Optional[str], calls: Sequence[Tuple[str, Dict[str, Any]]],
               auth: Any = None, timeout: float = 60) -> Tuple[Any, List[Any]]:
    """Initialize an MCP session with the SDK's client (streamable HTTP,
    ``Authorization: Bearer <token>`` when a token is given, or the httpx2
    ``auth`` handler), list the tools, then call each ``(name, arguments)``
    in order; returns ``((initialize result, tool list), [call results])``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def run() -> Tuple[Any, List[Any]]:
        return await asyncio.wait_for(_calls(url, headers, calls, auth), timeout)

    return asyncio.run(run())


def tool_json(result: Any) -> Any:
    """The structured result of a tool call (its error text raises)."""
    if result.is_error:
        raise AssertionError(f"tool error: {result.content}")
    return result.structured_content


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}).encode()


def post(url, token=None):
    """POST an MCP initialize: (status, headers, JSON body or None)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=INITIALIZE, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, json.loads(exc.read())


def get_json(url):
    with _OPENER.open(url, timeout=10) as response:
        return response.status, response.headers, json.loads(response.read())
