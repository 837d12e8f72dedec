"""Stateless DPoP server nonces (RFC 9449 section 9; part of oidc_guard.dpop)."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import struct
import time
from typing import Any, Callable, Optional, Tuple, Union

from .._b64 import b64url_encode

__all__ = ["DPoPNonces"]

_MAX_NONCE_LENGTH = 256


class DPoPNonces:
    """Stateless server nonces (RFC 9449 section 9).

    A nonce is ``base64url(HMAC-SHA256(secret, "oidc_guard dpop nonce" ||
    time step))`` truncated to 128 bits: nothing is stored, and every worker
    or host that has the same ``secret`` issues and accepts the same nonces.
    The nonce of the current step and of the previous one are accepted, so a
    nonce lives between ``step`` and ``2 * step`` seconds (default 60 s:
    1-2 minutes).

    ``secret``: bytes or str, at least 16 bytes; ``None`` makes a random one
    per instance, which works for one process (or for workers forked after
    the application was built, e.g. gunicorn ``--preload``).  Several
    processes or hosts without a shared secret reject each other's nonces.
    The secret never appears in a repr, log or error.
    """

    def __init__(self, secret: Union[bytes, str, None] = None, *, step: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        if secret is None:
            key = os.urandom(32)
        elif isinstance(secret, str):
            key = secret.encode("utf-8")
        elif isinstance(secret, bytes):
            key = secret
        else:
            raise TypeError("the DPoP nonce secret must be bytes, str or None")
        if len(key) < 16:
            raise ValueError("the DPoP nonce secret must be at least 16 bytes")
        if not (isinstance(step, (int, float)) and math.isfinite(step) and step >= 1):
            raise ValueError("the DPoP nonce step must be at least 1 second")
        self._key = key
        self.step = float(step)
        self._clock = clock
        self._memo: Tuple[int, str] = (-1, "")

    def __repr__(self) -> str:
        return f"DPoPNonces(step={self.step:g})"

    def _for_step(self, n: int) -> str:
        mac = hmac.new(self._key, b"oidc_guard dpop nonce\x00" + struct.pack(">q", n), hashlib.sha256).digest()
        return b64url_encode(mac[:16])

    def _step_now(self) -> int:
        return int(self._clock() // self.step)

    def current(self) -> str:
        """The nonce to hand out now (``DPoP-Nonce`` header)."""
        n = self._step_now()
        memo = self._memo
        if memo[0] == n:
            return memo[1]
        value = self._for_step(n)
        self._memo = (n, value)
        return value

    def check(self, value: Any) -> Optional[str]:
        """``"current"`` or ``"previous"`` for a nonce this secret issued in
        the current or previous step, else ``None``."""
        if not isinstance(value, str) or not value or len(value) > _MAX_NONCE_LENGTH:
            return None
        got = value.encode("ascii", "replace")
        if hmac.compare_digest(got, self.current().encode("ascii")):
            return "current"
        if hmac.compare_digest(got, self._for_step(self._step_now() - 1).encode("ascii")):
            return "previous"
        return None
