"""The loopback HTTP server under :class:`~oidc_guard.testing.LocalIssuer`:
a stdlib ``ThreadingHTTPServer`` that sleeps in ``select`` until a
connection or a stop request arrives, and the loopback-only host check.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from .issuer import LocalIssuer

__all__: List[str] = []


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay fault never blocks stop()
    allow_reuse_address = True  # rebind the same port right after stop()
    # listen() backlog: socketserver's default of 5 overflows when a burst of
    # clients connects at once on a loaded machine (e.g. every worker falls
    # back to introspection when Redis dies), and Linux then resets the
    # connections the accept queue had no room for.
    request_queue_size = 128
    provider: "LocalIssuer"  # set by LocalIssuer.start(); the handler reads its state from here

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


class _IPv6Server(_Server):
    address_family = socket.AF_INET6

