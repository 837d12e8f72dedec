"""Bounded tables: every in-process table that an attacker can make grow
(one entry per token, header, issuer or key they send) is one of these
kinds, each with a fixed bound and a named eviction policy.

:class:`Memo` -- cleared when full
    A dict whose :meth:`~Memo.put` empties it when ``maxsize`` entries
    are there.  For memos of pure functions and other tables where a miss
    only costs recomputing: the cheapest kind (a hit is a plain
    ``dict.get``, no lock, no bookkeeping), for the request path.
:class:`Fifo` -- oldest eighth dropped when full
    A dict whose :meth:`~Fifo.put` drops the oldest-inserted eighth of
    the entries when ``maxsize`` are there.  Reads are a plain
    ``dict.get`` (no lock, no reordering); writes take a lock.  For caches
    of results whose entries carry their own expiry, checked by the reader
    (introspection's and UserInfo's front caches): a flood of new keys
    evicts in batches instead of clearing everything, and a hit costs what
    a dict hit costs.
:class:`LRU` -- least recently used dropped when full
    An OrderedDict: :meth:`~LRU.hit` marks an entry used,
    :meth:`~LRU.put` drops the least recently used ones past ``maxsize``.
    Not locked (the caller's lock, or single C calls under the GIL: code on
    a hot path may call ``move_to_end``/``popitem`` itself).
:class:`ExpiringLRU` -- expired first, then least recently used
    Every entry dies at its own absolute time (a clock the table is given);
    when full, expired entries go first (found through a heap, not a
    scan), then the least recently used.  Not locked.  For TTL caches
    (the in-process :class:`~oidc_guard.cache.MemoryCache`, the negative
    cache of refused issuers).
:func:`memo_function` -- a bounded memo of a one-argument pure function
    ``functools.lru_cache`` (implemented in C: the fastest memo there is
    for a hashable argument), under one name.
:class:`Interned` -- not grown past its bound
    A pool of shared immutable instances (one frozenset per distinct scope
    set): past ``maxsize`` new values are simply not shared, the entries
    already there stay (clearing would only break the sharing).

The dict kinds keep their entries in ``table.data``, a plain ``dict`` (an
``OrderedDict`` for :class:`LRU`): code on the request path reads it
directly (``table.data.get(key)``), because a method of a dict subclass, or
any Python-level method, costs more than the look-up itself; every write
goes through the table's methods, which keep the bound.

Bounds are entry counts; the size of a key or value is bounded by whoever
makes it (token size limits, header memos that skip long headers).

Under threads without a lock, :class:`Memo` and :class:`Interned` may hold
a few entries more than ``maxsize`` for a moment (one per thread racing
past the check); the others hold their bound exactly.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Generic, Hashable, Iterator, List, Optional, Tuple, TypeVar, cast
from typing import OrderedDict as _OrderedDict

__all__ = ["Memo", "Fifo", "LRU", "ExpiringLRU", "Interned", "memo_function"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])


def _check_size(maxsize: int, smallest: int) -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < smallest:
        raise ValueError(f"maxsize must be an int >= {smallest}")
    return maxsize


class _Table(Generic[K, V]):
    """What the dict-based kinds share: ``data``, the plain dict (or
    OrderedDict) itself, and the read-only dict protocol over it."""

    __slots__ = ("data", "maxsize")

    data: Dict[K, V]

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator[K]:
        return iter(list(self.data))

    def get(self, key: K) -> Optional[V]:
        """The value or None (no bookkeeping: a dict look-up; on a hot path
        call ``table.data.get(key)`` directly and save the method call)."""
        return self.data.get(key)


class Memo(_Table[K, V]):
    """A dict cleared when full (see the module doc).  ``maxsize=0``: off,
    :meth:`put` stores nothing."""

    __slots__ = ()

    def __init__(self, maxsize: int) -> None:
        self.data = {}
        self.maxsize = _check_size(maxsize, 0)

    def put(self, key: K, value: V) -> None:
        data = self.data
        if len(data) >= self.maxsize:
            data.clear()
            if self.maxsize <= 0:
                return
        data[key] = value

    def clear(self) -> None:
        self.data.clear()


class Fifo(_Table[K, V]):
    """A dict that drops its oldest-inserted eighth when full (see the
    module doc).  Written only through :meth:`put`, :meth:`discard` and
    :meth:`clear` (they take :attr:`lock`); read with ``data.get``."""

    __slots__ = ("lock",)

    def __init__(self, maxsize: int) -> None:
        self.data = {}
        self.maxsize = _check_size(maxsize, 1)
        self.lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        data = self.data
        with self.lock:
            if len(data) >= self.maxsize and key not in data:
                # dicts keep insertion order: the first keys are the oldest
                for old in list(itertools.islice(data, max(1, self.maxsize // 8))):
                    del data[old]
            data[key] = value

    def discard(self, key: K, value: Optional[V] = None) -> None:
        """Remove ``key`` (only while it still maps to ``value``, when given:
        an entry another thread replaced meanwhile stays)."""
        with self.lock:
            if value is None:
                self.data.pop(key, None)
            elif self.data.get(key) is value:
                del self.data[key]

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


class LRU(_Table[K, V]):
    """An OrderedDict that drops its least recently used entries past
    ``maxsize`` (see the module doc).  ``maxsize=0``: off.  A hot path may
    call ``data.get``/``data.move_to_end`` itself (C calls on an exact
    OrderedDict)."""

    __slots__ = ()

    data: "_OrderedDict[K, V]"

    def __init__(self, maxsize: int) -> None:
        self.data = OrderedDict()
        self.maxsize = _check_size(maxsize, 0)

    def hit(self, key: K) -> Optional[V]:
        """The value (marked most recently used), or None."""
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self.maxsize <= 0:
            return
        data = self.data
        data[key] = value
        data.move_to_end(key)
        while len(data) > self.maxsize:
            data.popitem(last=False)

    def pop(self, key: K) -> Optional[V]:
        return self.data.pop(key, None)

    def clear(self) -> None:
        self.data.clear()


class ExpiringLRU(Generic[K, V]):
    """Entries with their own expiry, bounded to ``maxsize`` (see the
    module doc).  Times are those of ``clock`` (absolute, same clock)."""

    __slots__ = ("maxsize", "_clock", "_data", "_heap", "_seq")

    def __init__(self, maxsize: int, clock: Callable[[], float]) -> None:
        self.maxsize = _check_size(maxsize, 1)
        self._clock = clock
        # key -> (value, expires), least recently used first
        self._data: "OrderedDict[K, Tuple[V, float]]" = OrderedDict()
        # (expires, n, key): every live entry has one; stale ones (the key
        # was replaced or removed since) are skipped when popped
        self._heap: List[Tuple[float, int, K]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Live entries (the expired ones are dropped first)."""
        self.expire()
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(key)  # type: ignore[arg-type]
        return entry is not None and entry[1] > self._clock()

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def get(self, key: K) -> Optional[V]:
        """The live value (marked most recently used), or None; an expired
        entry is dropped."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[0]

    def expires(self, key: K) -> Optional[float]:
        """When the live entry for ``key`` expires, or None."""
        entry = self._data.get(key)
        return entry[1] if entry is not None and entry[1] > self._clock() else None

    def put(self, key: K, value: V, expires: float) -> None:
        """Store ``value`` until ``expires`` (an entry already past it is
        not stored, and the old one is removed)."""
        if expires <= self._clock():
            self._data.pop(key, None)
            return
        data = self._data
        data[key] = (value, expires)
        data.move_to_end(key)
        heapq.heappush(self._heap, (expires, next(self._seq), key))
        if len(data) > self.maxsize:
            self.expire()
            while len(data) > self.maxsize:
                data.popitem(last=False)
        if len(self._heap) > 2 * len(data) + 64:
            # replaced and removed keys left stale heap items: rebuild
            self._heap = [(e, next(self._seq), k) for k, (_v, e) in data.items()]
            heapq.heapify(self._heap)

    def pop(self, key: K) -> Optional[V]:
        entry = self._data.pop(key, None)
        return entry[0] if entry is not None else None

    def clear(self) -> None:
        self._data.clear()
        self._heap.clear()

    def expire(self) -> None:
        """Drop every expired entry."""
        now = self._clock()
        heap, data = self._heap, self._data
        while heap and heap[0][0] <= now:
            _expires, _n, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[1] <= now:
                del data[key]


class Interned(_Table[V, V]):
    """A pool of shared immutable values, not grown past ``maxsize`` (see
    the module doc)."""

    __slots__ = ()

    def __init__(self, maxsize: int) -> None:
        self.data = {}
        self.maxsize = _check_size(maxsize, 0)

    def share(self, value: V) -> V:
        """The pooled instance equal to ``value`` (``value`` itself when new
        and there is room, or when the pool is full)."""
        found = self.data.get(value)
        if found is not None:
            return found
        if len(self.data) < self.maxsize:
            return self.data.setdefault(value, value)
        return value


def memo_function(maxsize: int) -> Callable[[F], F]:
    """Decorator: a memo of ``maxsize`` results of a pure function of
    hashable arguments (``functools.lru_cache``, in C)."""
    _check_size(maxsize, 1)
    return cast(Callable[[F], F], functools.lru_cache(maxsize=maxsize))
