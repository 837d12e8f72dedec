"""Token helpers for attack tests: at_hash/c_hash, JWS with an arbitrary
header and signature (``alg: none`` and friends), and HMAC-signed JWS (the
key-confusion attack).

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping, Optional, Union

from .jose import _apply, _json_bytes, b64url_encode
from .keys import _ALGS

__all__ = ["token_hash", "forge_token", "hmac_token"]


def token_hash(value: str, alg: str) -> str:
    """at_hash / c_hash of ``value`` for an id_token signed with ``alg``.

    OIDC Core 3.1.3.6 and 3.3.2.11: hash the ASCII octets of the value with
    the hash used by the JWS alg, keep the left-most half, base64url-encode.
    SHA-256 for ``*256``, SHA-384 for ``*384``, SHA-512 for ``*512`` and
    for EdDSA with Ed25519.
    """
    if alg not in _ALGS:
        raise ValueError(f"no at_hash/c_hash hash is defined here for alg {alg!r}")
    digest = hashlib.new(_ALGS[alg][1], value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def forge_token(header: Mapping[str, Any], claims: Mapping[str, Any], *, signature: bytes = b"") -> str:
    """Build a JWS compact string with an arbitrary header and signature.

    For attack tests, e.g. ``forge_token({"alg": "none"}, claims)`` gives an
    unsecured JWT (RFC 7519 section 6) with an empty signature part.
    """
    return ".".join(
        (b64url_encode(_json_bytes(dict(header))), b64url_encode(_json_bytes(dict(claims))), b64url_encode(signature))
    )


def hmac_token(claims: Mapping[str, Any], secret: Union[bytes, str], *, alg: str = "HS256",
               header: Optional[Mapping[str, Any]] = None) -> str:
    """An HMAC-signed JWS (RFC 7518 3.2), for the "HS256 signed with the RSA
    public key" attack: pass the public key's PEM bytes as ``secret``."""
    hashes = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    if alg not in hashes:
        raise ValueError(f"not an HMAC alg: {alg!r}")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    head = _apply({"alg": alg, "typ": "JWT"}, header)
    signing_input = b64url_encode(_json_bytes(head)) + "." + b64url_encode(_json_bytes(dict(claims)))
    sig = hmac.new(secret, signing_input.encode("ascii"), hashes[alg]).digest()
    return signing_input + "." + b64url_encode(sig)

