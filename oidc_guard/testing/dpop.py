"""``DPoPKey``: a client's DPoP key pair that makes proofs (RFC 9449 section 4.2).

For tests and examples: the private key lives in memory only.  Exposed as
``oidc_guard.testing.DPoPKey``.  ``OMIT`` (from ``oidc_guard.testing``)
removes a member from a proof.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any, Dict, Mapping, Optional

from .._b64 import b64url_encode
from .jose import OMIT

__all__ = ["DPoPKey"]

_CURVES = {"ES256": ("P-256", 32), "ES384": ("P-384", 48), "ES512": ("P-521", 66)}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class DPoPKey:
    """A DPoP key pair: ``DPoPKey("ES256")`` (also ES384, ES512, EdDSA, RS256,
    PS256, ...).  ``jwk`` is the public JWK, ``jkt`` its RFC 7638 thumbprint
    (the ``cnf.jkt`` a bound token carries), ``proof(...)`` a fresh proof."""

    def __init__(self, alg: str = "ES256", private_key: Any = None, *, rsa_bits: int = 2048) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self.alg = alg
        if private_key is None:
            if alg in _CURVES:
                curve: ec.EllipticCurve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(),
                                           "ES512": ec.SECP521R1()}[alg]
                private_key = ec.generate_private_key(curve)
            elif alg == "EdDSA":
                private_key = ed25519.Ed25519PrivateKey.generate()
            elif alg[:2] in ("RS", "PS"):
                private_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            else:
                raise ValueError(f"DPoPKey: unsupported alg {alg!r}")
        self.private_key = private_key
        self.jwk: Dict[str, Any] = self._public_jwk()

    def _public_jwk(self) -> Dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        public = self.private_key.public_key()
        if self.alg in _CURVES:
            crv, size = _CURVES[self.alg]
            nums = public.public_numbers()
            return {"kty": "EC", "crv": crv, "x": b64url_encode(nums.x.to_bytes(size, "big")),
                    "y": b64url_encode(nums.y.to_bytes(size, "big"))}
        if self.alg == "EdDSA":
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
        nums = public.public_numbers()
        return {"kty": "RSA", "e": b64url_encode(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")),
                "n": b64url_encode(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))}

    @property
    def jkt(self) -> str:
        """RFC 7638 SHA-256 thumbprint of the public key."""
        required = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
        members = {name: self.jwk[name] for name in required[self.jwk["kty"]]}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return b64url_encode(hashlib.sha256(canonical).digest())

    @property
    def cnf(self) -> Dict[str, str]:
        """The ``cnf`` claim of a token bound to this key."""
        return {"jkt": self.jkt}

    def sign(self, signing_input: bytes, alg: Optional[str] = None) -> bytes:
        """A JWS signature (RFC 7518 section 3 / RFC 8037) over ``signing_input``."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        alg = alg or self.alg
        if alg == "EdDSA":
            return self.private_key.sign(signing_input)  # type: ignore[no-any-return]
        h: hashes.HashAlgorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        if alg.startswith("ES"):
            r, s = decode_dss_signature(self.private_key.sign(signing_input, ec.ECDSA(h)))
            size = _CURVES[alg][1]
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg.startswith("PS"):
            return self.private_key.sign(  # type: ignore[no-any-return]
                signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        return self.private_key.sign(signing_input, padding.PKCS1v15(), h)  # type: ignore[no-any-return]

    def proof(
        self,
        method: str,
        url: str,
        access_token: Optional[str] = None,
        nonce: Optional[str] = None,
        *,
        header: Optional[Mapping[str, Any]] = None,
        iat: Any = None,
        signature: Optional[bytes] = None,
        **claims: Any,
    ) -> str:
        """A fresh proof for ``method`` ``url`` (RFC 9449 section 4.2): a new
        ``jti``, ``iat`` now, ``ath`` when ``access_token`` is given, ``nonce``
        when given.  For attack tests: ``claims`` override or add payload
        members and ``header`` header members (``OMIT`` removes one);
        ``signature`` replaces the signature bytes."""
        head: Dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": dict(self.jwk)}
        body: Dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if iat is OMIT:
            del body["iat"]
        if access_token is not None:
            body["ath"] = b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            body["nonce"] = nonce
        for target, changes in ((head, header or {}), (body, claims)):
            for name, value in changes.items():
                if value is OMIT:
                    target.pop(name, None)
                else:
                    target[name] = value
        signing_input = (b64url_encode(_json(head)) + "." + b64url_encode(_json(body))).encode("ascii")
        sig = self.sign(signing_input) if signature is None else signature
        return signing_input.decode("ascii") + "." + b64url_encode(sig)

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, jkt={self.jkt!r})"
