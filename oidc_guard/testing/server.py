"""The loopback HTTP server under :class:`~oidc_guard.testing.LocalIssuer`:
a stdlib ``ThreadingHTTPServer`` bound to a loopback address only, serving
in a daemon thread that sleeps in ``select`` until a connection or a stop
request arrives.

It knows nothing of what it serves: the request handler class and a
``context`` object (what the handler reads its state from) are given to
:func:`bind_loopback`.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple, Type

__all__ = ["LoopbackServer", "IPv6LoopbackServer", "is_loopback_host", "bind_loopback"]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and for loopback IP addresses (127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay fault never blocks stop()
    allow_reuse_address = True  # rebind the same port right after stop()
    # listen() backlog: socketserver's default of 5 overflows when a burst of
    # clients connects at once on a loaded machine (e.g. every worker falls
    # back to introspection when Redis dies), and Linux then resets the
    # connections the accept queue had no room for.
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], handler: Type[BaseHTTPRequestHandler], context: Any) -> None:
        super().__init__(address, handler)
        #: What the request handler serves (it reads its state from here).
        self.context = context
        #: Set by :meth:`stop`: a handler sleeping in a delay gives up and answers nothing.
        self.stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._wake: Optional[Tuple[socket.socket, socket.socket]] = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self, name: str) -> None:
        """Serve in a daemon thread called ``name`` until :meth:`stop`."""
        self._wake = socket.socketpair()
        self._thread = threading.Thread(
            target=self.serve_until_woken, args=(self._wake[0],), name=name, daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (new connections are
        refused); handlers sleeping in a delay give up."""
        self.stopping.set()
        thread, wake = self._thread, self._wake
        self._thread = self._wake = None
        if wake is not None:
            wake[1].send(b"x")  # wakes serve_until_woken()
        if thread is not None:
            thread.join(timeout=5)
        self.server_close()  # closes the listening socket: connections are refused
        if wake is not None:
            wake[0].close()
            wake[1].close()

    def serve_until_woken(self, wake: socket.socket) -> None:
        """Like ``serve_forever()``, but instead of polling for a shutdown
        flag it sleeps in ``select`` until a connection arrives or a byte is
        written to the other end of ``wake``: no polling, and stop() returns
        at once."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _events in selector.select()]
                if wake in ready:
                    return
                if self in ready:
                    # BaseServer's accept-and-dispatch step (what serve_forever calls).
                    self._handle_request_noblock()  # type: ignore[attr-defined]  # not in typeshed


class IPv6LoopbackServer(LoopbackServer):
    address_family = socket.AF_INET6


def bind_loopback(host: str, port: int, handler: Type[BaseHTTPRequestHandler], context: Any) -> LoopbackServer:
    """A :class:`LoopbackServer` bound to ``host`` (a loopback address or
    ``localhost``) and ``port`` (0: an ephemeral one), not serving yet.

    ``ValueError`` for any other host, and (belt and braces) when the
    address actually bound is not loopback; ``OSError`` when the port is taken."""
    if not isinstance(host, str) or not is_loopback_host(host):
        raise ValueError(f"the loopback server binds to loopback only; got host {host!r}")
    server_cls = IPv6LoopbackServer if ":" in host else LoopbackServer
    bind_host = "127.0.0.1" if host == "localhost" else host
    server = server_cls((bind_host, port), handler, context)
    bound = str(server.server_address[0])
    if not ipaddress.ip_address(bound.split("%", 1)[0]).is_loopback:
        server.server_close()
        raise ValueError(f"the loopback server bound the non-loopback address {bound!r}; refusing to serve")
    return server
