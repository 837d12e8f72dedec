"""A small key/value cache with per-entry expiry, in process or in Redis.

Two users share it (docs/architecture.md):

* introspection results (RFC 7662), so a reference token is sent to the
  provider once, not once per request or per worker;
* DPoP replay records (RFC 9449 section 11.1), so a proof's ``jti`` is
  accepted once across every worker and host.

The interface (:class:`Cache`) is deliberately tiny:

``get(key) -> bytes | None``
    the value, or ``None`` when absent or expired.
``set(key, value, ttl_seconds)``
    store ``value`` for ``ttl_seconds``; the expiry travels with the value
    (Redis ``SET ... PX``), so no entry outlives its lifetime even if nothing
    ever reads it again.
``add(key, value, ttl_seconds) -> bool``
    atomic set-if-absent (Redis ``SET ... NX PX``): ``True`` when this call
    stored the value, ``False`` when the key was already there.  This is the
    primitive of a replay store: two workers racing with one ``jti`` cannot
    both get ``True``.
``delete(key)``
    remove the key if present.

Values are non-empty ``bytes``; the Redis backend reads at most
``MAX_VALUE_BYTES + 1`` bytes of a value (``GETRANGE``), so a huge value
planted under a key costs nothing to refuse.  A redis-py client that decodes
replies (``decode_responses=True``) is refused at construction.

What a shared cache gives back is *untrusted*: anyone
who can write to the Redis database can put anything there, so callers must
validate what they read (the introspection layer re-checks every rule it
would apply to a fresh answer).

Failures of a shared backend raise one typed exception,
:class:`CacheUnavailable` (a :class:`~oidc_guard.errors.ProviderError`, so it
maps to 503 + ``Retry-After`` if it ever reaches the middleware).  Each caller
chooses what it means: introspection falls back to the endpoint; the DPoP
replay store fails closed.

Keys given to the cache must never be raw tokens: callers pass a SHA-256 of
the token (docs/security.md).  The Redis backend additionally puts
a namespace in front of every key (``prefix``), naming the issuer and the
configuration the entry was made under, so two APIs sharing one Redis never
read each other's entries.

A Redis password never appears in ``repr``, logs or error messages: the
backend describes itself as ``redis://host:port/db`` only.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Union

from ._bounded import ExpiringLRU
from ._cache_base import MAX_VALUE_BYTES as MAX_VALUE_BYTES
from ._cache_base import Cache as Cache
from ._cache_base import CacheUnavailable as CacheUnavailable
from ._cache_base import check_entry
from ._redis import ACCEPT_EVICTING_KEYWORD as ACCEPT_EVICTING_KEYWORD
from ._redis import POLICY_RECHECK_SECONDS as POLICY_RECHECK_SECONDS
from ._redis import SAFE_EVICTION_POLICY as SAFE_EVICTION_POLICY
from ._redis import RedisCache as RedisCache
from .errors import ConfigurationError

__all__ = [
    "Cache",
    "CacheUnavailable",
    "MemoryCache",
    "RedisCache",
    "open_cache",
]

# Defined in oidc_guard._cache_base and oidc_guard._redis; named and
# documented here, where users import them from.
for _cls in (Cache, CacheUnavailable, RedisCache):
    _cls.__module__ = __name__
del _cls


class MemoryCache(Cache):
    """In-process default: bounded (least recently used entries go first when
    ``maxsize`` is reached, after the expired ones), each entry dying at its
    own expiry, thread-safe.

    ``clock`` is a monotonic-seconds function (tests pass a fake one).
    """

    shared = False

    def __init__(self, maxsize: int = 10000, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError("MemoryCache maxsize must be a positive int")
        self.maxsize = maxsize
        self._clock = clock
        self._data: "ExpiringLRU[str, bytes]" = ExpiringLRU(maxsize, clock)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self.maxsize})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: str) -> Optional[bytes]:
        with self._lock:
            return self._data.get(key)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        check_entry(key, value, ttl_seconds)
        with self._lock:
            # ttl <= 0: not stored, and the value there before is gone too
            self._data.put(key, bytes(value), self._clock() + ttl_seconds)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        check_entry(key, value, ttl_seconds)
        if ttl_seconds <= 0:
            raise ValueError("add() needs a positive ttl_seconds")
        with self._lock:
            if key in self._data:  # a live entry (an expired one does not block)
                return False
            self._data.put(key, bytes(value), self._clock() + ttl_seconds)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def open_cache(
    spec: Union[None, str, Cache, Any],
    *,
    prefix: str = "oidc_guard:",
    maxsize: int = 10000,
) -> Cache:
    """Turn a ``shared_cache`` argument into a :class:`Cache`.

    ``None`` -> a new :class:`MemoryCache`; a URL or a ``redis.Redis`` client
    -> a :class:`RedisCache` with ``prefix``; a :class:`Cache` -> itself
    (a :class:`RedisCache` gets ``prefix`` added through :meth:`RedisCache.namespaced`).
    """
    if spec is None:
        return MemoryCache(maxsize=maxsize)
    if isinstance(spec, RedisCache):
        return spec.namespaced(prefix)
    if isinstance(spec, Cache):
        return spec
    return RedisCache(spec, prefix=prefix)
