"""Single flight: concurrent callers that need the same slow thing (a JWKS
fetch, one token's introspection, one issuer's trust decision) share one
call in flight instead of each making their own.

The first caller for a key becomes the *leader*: it makes the call and
*lands* the flight with the result or the exception.  Callers arriving
meanwhile are *followers*: they wait, with a timeout, and get what the
leader got (the same value, or the same exception raised again).  A landed
flight is forgotten at once: the next caller for the key leads a new one
(caching results is the caller's business, not this module's).

The core is thread-safe and made of a lock, a dict and one
:class:`threading.Event` per flight, so a flight can be shared between
threads and coroutines (the coming ASGI adapter):

* a thread waits with :meth:`Flight.wait`;
* a coroutine must not block its event loop: it either runs the wait in a
  thread (``await loop.run_in_executor(None, flight.wait, timeout)``) or,
  without a thread per waiter, registers a callback that resolves an
  asyncio future of its own loop::

      fut = loop.create_future()
      flight.add_done_callback(lambda f: loop.call_soon_threadsafe(_set, fut))
      await asyncio.wait_for(fut, timeout)   # then flight.result()

  Callbacks run in the leader's thread (or at once, in the caller's, when
  the flight has already landed), so they must only hand over, never block;
  ``call_soon_threadsafe`` is the hand-over for asyncio.  A leader that is
  a coroutine lands the flight the same way a thread does.

:class:`SharedFlight` does the same across processes, over a shared cache
(a lock entry next to the result; the others poll for the result).

Nothing here bounds how many different keys fly at once: callers that need
such a bound (introspection's ``max_in_flight``, the resolver's
``max_concurrent_resolutions``) keep it next to their own state, under the
lock they can share with the :class:`SingleFlight` (``lock=``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Generic, Hashable, List, Optional, Tuple, TypeVar, cast

from ._cache_base import CacheUnavailable

__all__ = ["Flight", "SingleFlight", "SharedFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flight(Generic[V]):
    """One call in progress: its leader lands it once, with a value or an
    exception; any number of followers wait for that."""

    __slots__ = ("_done", "_value", "_error", "_callbacks", "_cb_lock")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Optional[V] = None
        self._error: Optional[BaseException] = None
        self._callbacks: Optional[List[Callable[["Flight[V]"], None]]] = None
        self._cb_lock = threading.Lock()

    @property
    def done(self) -> bool:
        """True once the leader has landed the flight."""
        return self._done.is_set()

    @property
    def error(self) -> Optional[BaseException]:
        """The exception the leader landed with (None: a value, or not landed)."""
        return self._error

    def wait(self, timeout: Optional[float]) -> bool:
        """Block until the flight lands or ``timeout`` seconds pass (None:
        no limit); True when it landed.  Threads only (see the module doc
        for coroutines)."""
        return self._done.wait(timeout)

    def result(self) -> V:
        """What the leader got: its value, or its exception raised again.
        Call only after the flight landed (:meth:`wait` returned True)."""
        if not self._done.is_set():
            raise RuntimeError("the flight has not landed")
        if self._error is not None:
            raise self._error
        return cast(V, self._value)  # landed without an error: the leader's value

    def add_done_callback(self, fn: Callable[["Flight[V]"], None]) -> None:
        """Call ``fn(flight)`` when the flight lands (at once when it has):
        the way a coroutine waits without a thread (see the module doc)."""
        with self._cb_lock:
            if not self._done.is_set():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def _land(self, value: Optional[V], error: Optional[BaseException]) -> None:
        with self._cb_lock:
            self._value = value
            self._error = error
            self._done.set()
            callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks or ():
            fn(self)


class SingleFlight(Generic[K, V]):
    """At most one :class:`Flight` per key.

    ``lock``: the lock that guards the table of flights.  Give the owner's
    own lock when joining must be atomic with the owner's other state (a
    cooldown, a concurrency bound): the owner then calls
    :meth:`join_locked` while it holds that lock.  ``on_land``: called with
    the lock held right after a flight left the table (for example a
    ``Condition.notify_all`` telling callers a slot is free).
    """

    __slots__ = ("lock", "_flights", "_on_land")

    def __init__(self, *, lock: Optional[threading.Lock] = None,
                 on_land: Optional[Callable[[], None]] = None) -> None:
        self.lock = lock if lock is not None else threading.Lock()
        self._flights: Dict[K, Flight[V]] = {}
        self._on_land = on_land

    def __len__(self) -> int:
        """Flights in progress."""
        return len(self._flights)

    def __contains__(self, key: object) -> bool:
        return key in self._flights

    def get(self, key: K) -> Optional[Flight[V]]:
        """The flight in progress for ``key``, if any."""
        return self._flights.get(key)

    def join(self, key: K) -> Tuple[Flight[V], bool]:
        """``(flight, leader)``: the flight for ``key``, started by this call
        when ``leader`` is True.  A leader must :meth:`land` it, whatever
        happens (``try``/``finally``), or its followers wait until their
        timeout."""
        with self.lock:
            return self.join_locked(key)

    def join_locked(self, key: K) -> Tuple[Flight[V], bool]:
        """:meth:`join` for a caller that already holds :attr:`lock`."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight, False
        flight = self._flights[key] = Flight()
        return flight, True

    def land(self, key: K, flight: Flight[V], value: Optional[V] = None,
             error: Optional[BaseException] = None) -> None:
        """End the leader's ``flight``: forget it (the next caller leads a new
        one), then wake its followers with ``value`` or ``error``."""
        with self.lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if self._on_land is not None:
                self._on_land()
        flight._land(value, error)

    def run(self, key: K, call: Callable[[], V], timeout: Optional[float],
            on_timeout: Callable[[], BaseException]) -> V:
        """``call()`` once for all concurrent callers with ``key``.

        The leader runs ``call`` in its own thread and returns or raises what
        it gives; followers wait at most ``timeout`` seconds for that, then
        raise ``on_timeout()``.  Every exception, ``BaseException`` included,
        is handed to the followers.
        """
        flight, leader = self.join(key)
        if not leader:
            if not flight.wait(timeout):
                raise on_timeout()
            return flight.result()
        try:
            value = call()
        except BaseException as exc:
            self.land(key, flight, error=exc)
            raise
        self.land(key, flight, value=value)
        return value


class SharedFlight:
    """Single flight across processes, over a shared cache (Redis): one
    process per key makes the call.

    The leader takes a short lock entry next to the result's key
    (:meth:`claim`: the cache's atomic ``add``, Redis ``SET NX PX``, dying
    after ``lock_ttl`` seconds even if its holder does); the others poll for
    the result the leader writes, for at most ``wait`` seconds, then make
    the call themselves (:meth:`wait`).  The lock entry holds no secret and
    no token (a fixed value under the caller's key, which must itself be
    safe to store), and any trouble with the cache (``CacheUnavailable``)
    means "make the call": this only saves calls, it never refuses one.

    The wait sleeps in the calling thread; an async caller runs it off its
    event loop.
    """

    __slots__ = ("cache", "lock_ttl", "wait_seconds", "_on_down")

    def __init__(self, cache: Any, *, lock_ttl: float, wait: float,
                 on_down: Callable[[CacheUnavailable], None]) -> None:
        self.cache = cache
        self.lock_ttl = lock_ttl
        self.wait_seconds = wait
        self._on_down = on_down  # told when the cache failed (to log it once)

    def claim(self, key: str) -> bool:
        """True when this process leads (or the cache cannot tell)."""
        try:
            return bool(self.cache.add("lock:" + key, b"1", self.lock_ttl))
        except CacheUnavailable as exc:
            self._on_down(exc)
            return True

    def release(self, key: str) -> None:
        """Drop the lock (after writing the result, or when none is coming)."""
        try:
            self.cache.delete("lock:" + key)
        except CacheUnavailable:
            pass

    def wait(self, key: str, poll: Callable[[], Optional[V]]) -> Optional[V]:
        """``poll()``'s first result that is not None while the leader's lock
        is there (one last look when it is gone), else None: make the call."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            found = poll()
            if found is not None:
                return found
            try:
                if self.cache.get("lock:" + key) is None:
                    # Finished (result written before the lock went) or gave
                    # up: one last look, then call ourselves.
                    return poll()
            except CacheUnavailable:
                return None
        return None
