"""base64url encoding without padding (RFC 7515 section 2), the one encoder
every module uses: DPoP ``ath`` and nonces, RFC 7638 key thumbprints,
RFC 8705 certificate thumbprints, ID Token ``at_hash`` / ``c_hash``, and
the test helpers' tokens and proofs.  Internal: not part of the API
(:func:`oidc_guard.testing.b64url_encode` is the public name)."""

from __future__ import annotations

import binascii

__all__ = ["b64url_encode"]

_STD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    # The two C calls base64.urlsafe_b64encode makes, without its Python
    # wrappers: it runs for every DPoP proof (ath), about 0.5 us less.
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_STD_TO_URLSAFE).decode("ascii")
