"""JOSE encoding primitives shared by the test issuer: base64url (RFC 7515
section 2), compact JSON, big-endian integers, and the :data:`OMIT` sentinel
that :func:`with_changes` uses to remove a member when headers, claims, JWKs
or discovery documents are built.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, Mapping, Optional

from .._b64 import b64url_encode

__all__ = ["OMIT", "b64url_encode", "b64url_decode", "compact_json", "with_changes", "int_bytes"]


class _Omit:
    """Sentinel: a header/claim/discovery value equal to OMIT is removed."""

    _instance: Optional["_Omit"] = None

    def __new__(cls) -> "_Omit":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"


#: Use as a value in ``claims=``, ``header=``, ``discovery_overrides`` or
#: ``jwk_overrides`` to remove that member instead of setting it.
OMIT = _Omit()

def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode` (adds the padding back)."""
    raw = text.encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def compact_json(obj: Any) -> bytes:
    """``obj`` as compact JSON (no spaces, members in the order given), UTF-8."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode("utf-8")


def with_changes(base: Dict[str, Any], changes: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Merge ``changes`` into a copy of ``base``; values that are OMIT delete."""
    out = dict(base)
    for name, value in (changes or {}).items():
        if value is OMIT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def int_bytes(value: int, length: Optional[int] = None) -> bytes:
    """Big-endian bytes of ``value``: ``length`` of them, or as few as hold it (at least one)."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")
