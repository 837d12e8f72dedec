"""base64url encoding without padding (RFC 7515 section 2), the one encoder
every module uses: DPoP ``ath`` and nonces, RFC 7638 key thumbprints,
RFC 8705 certificate thumbprints, ID Token ``at_hash`` / ``c_hash``, and
the test helpers' tokens and proofs.  Internal: not part of the API
(:func:`oidc_guard.testing.b64url_encode` is the public name)."""

from __future__ import annotations

import base64

__all__ = ["b64url_encode"]


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
