"""DPoP replay records (RFC 9449 section 11.1): the store protocol and the
in-process store (part of oidc_guard.dpop).

A replay store is anything with ``add(key, value, ttl_seconds) -> bool``:
an atomic add-if-absent, ``True`` when this call stored the key
(:class:`ReplayStore`).  :class:`MemoryReplayStore` is the default (one
process); the shared one is a :class:`~oidc_guard.cache.RedisCache` view
(oidc_guard.cache), which may also say why it must not be trusted
(``replay_problem()``: a Redis that evicts keys).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from typing import Callable, Deque, Dict, Protocol, Tuple

from ..errors import ProviderError

__all__ = ["ReplayStore", "MemoryReplayStore", "ReplayStoreFull"]


class ReplayStore(Protocol):
    """What DPoPVerifier needs of a replay store."""

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Store ``key`` for ``ttl_seconds`` unless it is there already;
        ``True`` when this call stored it.  Atomic.  Raises
        :class:`~oidc_guard.errors.ProviderError` when it cannot answer."""
        ...


class ReplayStoreFull(ProviderError):
    """The in-process replay store holds ``maxsize`` live records: a new one
    cannot be added without forgetting one that could still be replayed, so
    the request fails closed (503) instead."""

    reason = "store_unavailable"


class MemoryReplayStore:
    """The in-process replay store: ``add(key, value, ttl) -> bool``.

    Bounded without ever forgetting a live record: records expire in the
    order they were added when they share one lifetime, and a store full of
    live records refuses new ones (:class:`ReplayStoreFull`, 503) instead of
    evicting one, because an evicted ``jti`` could be replayed.  The default
    100,000 records (about 25 MB at most) are 300 DPoP requests/s sustained
    over a 330 s window.  Thread-safe.
    """

    shared = False

    def __init__(self, maxsize: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError("maxsize must be a positive int")
        self.maxsize = maxsize
        self._clock = clock
        self._expiry: Dict[str, float] = {}
        # (expiry, key) in insertion order; with one ttl per store this is
        # expiry order, and the pruning below stops at the first live record.
        self._queue: Deque[Tuple[float, str]] = collections.deque()
        self._lock = threading.Lock()
        # While the store is full of live records, no full scan can free
        # anything before the earliest live expiry the last scan saw: skip
        # scans until then, so that a full store costs O(1) per refused
        # proof instead of a scan of every record under the lock.
        self._rescan_at = 0.0
        #: full scans made (tests)
        self.full_scans = 0

    def __len__(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._expiry)

    def _prune(self, now: float) -> None:
        queue, expiry = self._queue, self._expiry
        while queue and queue[0][0] <= now:
            when, key = queue.popleft()
            if expiry.get(key) == when:
                del expiry[key]
        # Records with a shorter lifetime behind a longer one are found
        # here when the store is full.
        if len(expiry) >= self.maxsize and now >= self._rescan_at:
            self.full_scans += 1
            earliest = math.inf
            for key, when in list(expiry.items()):
                if when <= now:
                    del expiry[key]
                elif when < earliest:
                    earliest = when
            self._rescan_at = earliest if len(expiry) >= self.maxsize else 0.0

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty str")
        if not (isinstance(ttl_seconds, (int, float)) and math.isfinite(ttl_seconds) and ttl_seconds > 0):
            raise ValueError("ttl_seconds must be a positive number")
        with self._lock:
            now = self._clock()
            self._prune(now)
            when = self._expiry.get(key)
            if when is not None and when > now:
                return False
            if len(self._expiry) >= self.maxsize:
                raise ReplayStoreFull(
                    f"the in-process DPoP replay store holds {self.maxsize} live records; "
                    "refusing new proofs rather than forgetting one that could be replayed",
                    retry_after=5.0,
                )
            expires = now + ttl_seconds
            self._expiry[key] = expires
            self._queue.append((expires, key))
            self._rescan_at = 0.0  # a new record may expire before the last scan's earliest
            return True
