"""The interface of oidc_guard's key/value caches and their one error,
shared by the backends (:mod:`oidc_guard.cache` documents them and is where
users import them from; the Redis backend lives in ``oidc_guard._redis``)."""

from __future__ import annotations

import math
from typing import Optional

from .errors import ProviderError

__all__ = ["Cache", "CacheUnavailable", "MAX_VALUE_BYTES", "check_entry"]

# Largest value the Redis backend hands back.  Introspection results and
# replay records are a few hundred bytes; anything far larger is garbage (or
# an attempt to make every worker allocate it) and is treated as a failure.
MAX_VALUE_BYTES = 64 * 1024


class CacheUnavailable(ProviderError):
    """The shared cache (Redis) could not be used: unreachable, slow, or
    answering something that is not a cache value.

    A :class:`ProviderError`, hence 503 with ``Retry-After`` if a caller lets
    it through (fail closed).  The description names the backend as
    ``redis://host:port/db`` and never carries a password.
    """

    reason = "store_unavailable"

    def __init__(self, description: str, retry_after: float = 5.0) -> None:
        super().__init__(description, retry_after=retry_after)



class Cache:
    """The interface every backend implements (see the module docstring)."""

    def get(self, key: str) -> Optional[bytes]:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:  # pragma: no cover
        raise NotImplementedError

    def delete(self, key: str) -> None:  # pragma: no cover
        raise NotImplementedError

    #: True for backends shared between processes (Redis).
    shared: bool = False



def check_entry(key: str, value: bytes, ttl_seconds: float) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError("cache key must be a non-empty str")
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError("cache value must be bytes")
    if not value:
        # The Redis backend reads with GETRANGE, which answers b"" for a
        # missing key: an empty value could not be told from no value.
        raise ValueError("cache value must not be empty")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)) or not math.isfinite(ttl_seconds):
        raise TypeError("ttl_seconds must be a finite number")

