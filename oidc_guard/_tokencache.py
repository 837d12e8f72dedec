"""The verified-token cache of one TokenValidator (internal): SHA-256 of the
token -> its Claims, least recently used first, bounded by ``cache_size``,
with a small front table keyed by the token string itself.

An entry is the Claims itself: its payload has the exp/nbf the validator
re-checks on a hit, and its ``_key_fingerprint`` says which key verified it
(no entry object of its own: 64 bytes less per entry).  An entry never
outlives its token's ``exp`` (re-checked on every hit) and is dropped when
its key leaves the JWKS (:meth:`VerifiedTokenCache.remove_keys`).

The hit path itself (front table, then the re-check) stays inline in
:meth:`oidc_guard.TokenValidator.validate_access_token`: a method call per
hit would cost more than the rest of the hit.
"""

from __future__ import annotations

import hashlib
import threading
from typing import FrozenSet, Optional, Tuple

from ._bounded import LRU, Memo
from .claims import Claims

__all__ = ["VerifiedTokenCache", "token_digest"]

_sha256 = hashlib.sha256


def token_digest(token: str) -> bytes:
    """The cache key: a SHA-256 of the whole token, so two different token
    strings never share an entry and memory per entry stays small."""
    return _sha256(token.encode("utf-8", "surrogatepass")).digest()


class VerifiedTokenCache:
    """``lru``: an :class:`~oidc_guard._bounded.LRU` of ``size`` entries
    (least recently used dropped when full), guarded by ``lock``.  Its
    ``data`` is a C OrderedDict used directly here (move_to_end on a hit,
    popitem(last=False) to evict: single C calls, cheaper than any Python
    method): one hash table per entry instead of the two of
    cachetools.LRUCache, about 1 us less per stored token and less memory.

    ``front``: a :class:`~oidc_guard._bounded.Memo` of ``front_max``
    entries (cleared when full): the most recent hits keyed by the token
    string itself.  A hit there costs one str hash and compare (about
    0.2 us for 800 characters) instead of SHA-256 plus the LRU under its
    lock (about 1 us); exact string equality, so two different token
    strings never share an entry here either.  Whole strings, about 1 KB
    each.  Plain dict operations are atomic, so it needs no lock; it only
    ever holds entries the LRU made.  The validator's hit path reads
    ``front.data`` directly."""

    __slots__ = ("size", "front_max", "lru", "lock", "front")

    def __init__(self, size: int, front_max: int) -> None:
        self.size = size
        self.front_max = front_max
        self.lru: "LRU[bytes, Claims]" = LRU(size)
        self.lock = threading.Lock()
        self.front: "Memo[str, Claims]" = Memo(front_max)

    def lookup(self, token: str) -> Tuple[Optional[Claims], bytes]:
        """(the entry or None, the token's digest), after a front-table
        miss; a hit becomes the most recently used and joins the front."""
        digest = _sha256(token.encode("utf-8", "surrogatepass")).digest()
        lru = self.lru.data
        with self.lock:
            claims = lru.get(digest)
            if claims is not None:
                lru.move_to_end(digest)  # least recently used goes first
        if claims is not None:
            self.front.put(token, claims)
        return claims, digest

    def drop(self, token: str, digest: Optional[bytes]) -> bytes:
        """Forget the entry of ``token`` (expired, or its key is gone);
        returns its digest (``digest`` when given) for the next store."""
        self.front.data.pop(token, None)
        if digest is None:
            digest = token_digest(token)
        with self.lock:
            self.lru.pop(digest)
        return digest

    def store(self, digest: bytes, claims: Claims) -> None:
        """Add a verified token's Claims; the least recently used entry
        goes when the cache is over its size."""
        # LRU.put, inline on its OrderedDict (one Python call less per new
        # token); the caller has just looked the digest up or dropped it
        lru = self.lru.data
        with self.lock:
            lru[digest] = claims
            if len(lru) > self.size:
                lru.popitem(last=False)

    def remove_keys(self, fingerprints: FrozenSet[str]) -> None:
        """Drop the entries verified by keys that left the JWKS."""
        self.front.clear()
        lru = self.lru.data
        with self.lock:
            stale = [k for k, claims in lru.items() if claims._key_fingerprint in fingerprints]
            for k in stale:
                del lru[k]

    def clear(self) -> None:
        self.front.clear()
        with self.lock:
            self.lru.clear()
