"""Signing keys for the test issuer: the supported JWS algorithms, key
generation (with a process-wide pool, because RSA generation is slow), the
public JWK of a key, and JWS signatures made with ``cryptography``.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from .jose import b64url_encode, compact_json, int_bytes

if TYPE_CHECKING:
    import jwt

__all__ = [
    "SUPPORTED_ALGS", "KEY_POOL", "key_family", "hash_name", "generate_key", "pooled_key", "public_jwk",
    "jws_signature", "sign_raw", "sign_jws", "pyjwt_signer",
]

# Private keys are typed ``Any``: they are ``cryptography`` RSA, EC or
# Ed25519 private key objects, and the code below picks the right calls from
# the alg, not from the key's class.


# alg -> (key family, hash name). Hash per RFC 7518 3.3-3.5 and RFC 8037;
# the "hash name" is also the at_hash/c_hash hash (OIDC Core 3.1.3.6), which
# for EdDSA with Ed25519 is SHA-512 (OpenID Connect Core errata / RFC 8037).
_ALGS: Dict[str, Tuple[str, str]] = {
    "RS256": ("RSA", "sha256"),
    "RS384": ("RSA", "sha384"),
    "RS512": ("RSA", "sha512"),
    "PS256": ("RSA", "sha256"),
    "PS384": ("RSA", "sha384"),
    "PS512": ("RSA", "sha512"),
    "ES256": ("P-256", "sha256"),
    "ES384": ("P-384", "sha384"),
    "ES512": ("P-521", "sha512"),
    "EdDSA": ("Ed25519", "sha512"),
}

#: The JWS algorithms LocalIssuer can sign with.
SUPPORTED_ALGS: Tuple[str, ...] = tuple(_ALGS)


def key_family(alg: str) -> str:
    """The key family of a supported alg: ``"RSA"``, ``"P-256"``, ``"P-384"``,
    ``"P-521"`` or ``"Ed25519"`` (KeyError for another alg)."""
    return _ALGS[alg][0]


def hash_name(alg: str) -> str:
    """The hash of a supported alg (``hashlib`` name), also its at_hash /
    c_hash hash (KeyError for another alg)."""
    return _ALGS[alg][1]


def generate_key(family: str) -> Any:
    """A new private key of ``family`` (see :func:`key_family`)."""
    # Imported here so that importing this module stays cheap.
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family == "P-256":
        return ec.generate_private_key(ec.SECP256R1())
    if family == "P-384":
        return ec.generate_private_key(ec.SECP384R1())
    if family == "P-521":
        return ec.generate_private_key(ec.SECP521R1())
    if family == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key family {family!r}")


# Module-level pool of generated private keys, per key family. Issuer number
# N's i-th key of a family is pool[family][i]: keys are shared *between*
# issuers in one process (this is a test helper), never within one issuer.
_POOL_LOCK = threading.Lock()
#: The pool itself (family -> keys); read it, never change it.
KEY_POOL: Dict[str, List[Any]] = {}


def pooled_key(family: str, index: int) -> Any:
    """The ``index``-th pooled key of ``family``, generated on first use."""
    with _POOL_LOCK:
        keys = KEY_POOL.setdefault(family, [])
        while len(keys) <= index:
            keys.append(generate_key(family))
        return keys[index]


def public_jwk(private_key: Any, alg: str, kid: str) -> Dict[str, Any]:
    """The public JWK (RFC 7517 / RFC 7518 section 6 / RFC 8037) for a key."""
    family = key_family(alg)
    public: Any = private_key.public_key()
    jwk: Dict[str, Any]
    if family == "RSA":
        numbers = public.public_numbers()
        jwk = {"kty": "RSA", "n": b64url_encode(int_bytes(numbers.n)), "e": b64url_encode(int_bytes(numbers.e))}
    elif family in ("P-256", "P-384", "P-521"):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8  # RFC 7518 6.2.1.2: full field size
        jwk = {
            "kty": "EC",
            "crv": family,
            "x": b64url_encode(int_bytes(numbers.x, size)),
            "y": b64url_encode(int_bytes(numbers.y, size)),
        }
    else:
        from cryptography.hazmat.primitives import serialization

        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def sign_raw(private_key: Any, alg: str, header: bytes, payload: bytes) -> str:
    """A JWS over exactly these header and payload bytes, for tests of JSON
    an issuer would never write (duplicate members, arrays, non-JSON)."""
    signing_input = (b64url_encode(header) + "." + b64url_encode(payload)).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url_encode(jws_signature(private_key, alg, signing_input))


def jws_signature(private_key: Any, alg: str, signing_input: bytes) -> bytes:
    """JWS signature per RFC 7518 section 3 (and RFC 8037 for EdDSA)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    hash_algorithm: hashes.HashAlgorithm = {
        "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
    }[hash_name(alg)]
    signature: bytes
    if alg.startswith("RS"):  # RSASSA-PKCS1-v1_5, RFC 7518 3.3
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hash_algorithm)
        return signature
    if alg.startswith("PS"):  # RSASSA-PSS, MGF1 with the same hash, salt = hash size, RFC 7518 3.5
        pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
        signature = private_key.sign(signing_input, pss, hash_algorithm)
        return signature
    if alg.startswith("ES"):  # ECDSA, R || S fixed width, RFC 7518 3.4
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hash_algorithm)))
        size = (private_key.curve.key_size + 7) // 8
        return int_bytes(r, size) + int_bytes(s, size)
    if alg == "EdDSA":  # RFC 8037 3.1
        signature = private_key.sign(signing_input)
        return signature
    raise ValueError(f"unsupported alg {alg!r}")



# --------------------------------------------------------------------------
# signing with PyJWT, an independent JOSE implementation
# --------------------------------------------------------------------------
# LocalIssuer signs its tokens with PyJWT wherever PyJWT can write exactly
# the token asked for, so the library's own verifier is always checked
# against a second implementation of RFC 7515 / RFC 7518 (PKCS#1 v1.5, PSS,
# the ECDSA R || S form, EdDSA) and not only against the signer above.
# Attack-test tokens (a header PyJWT would rewrite or refuse, such as an
# ``alg`` other than the key's, ``b64``, ``crit`` or a non-string ``kid``)
# are signed by :func:`jws_signature` over exactly the bytes asked for.

#: Header members an issuer writes; PyJWT signs only headers made of these,
#: with non-empty string values.
_PYJWT_HEADER_MEMBERS = frozenset({"alg", "kid", "typ", "x5t", "x5t#S256"})

_PYJWT_MISSING = (
    "oidc_guard.testing.LocalIssuer signs its tokens with PyJWT, which is not installed: "
    "pip install 'oidc_guard[testing]' (the library itself does not need PyJWT)"
)

_pyjws: "Optional[jwt.PyJWS]" = None


def pyjwt_signer() -> "jwt.PyJWS":
    """PyJWT's JWS signer, or ImportError saying which extra to install."""
    global _pyjws
    if _pyjws is None:
        try:
            import jwt
        except ImportError as exc:
            raise ImportError(_PYJWT_MISSING) from exc
        _pyjws = jwt.PyJWS()
    return _pyjws


def _pyjwt_can_sign(alg: str, header: Mapping[str, Any]) -> bool:
    """True when PyJWT writes exactly ``header`` for a key of ``alg``: only
    issuer members with non-empty string values, the key's own alg, and members in
    the sorted order PyJWT writes them (RFC 7515 fixes no order; sorted
    keeps the header bytes the same on both paths)."""
    if header.get("alg") != alg or not set(header) <= _PYJWT_HEADER_MEMBERS:
        return False
    if not all(isinstance(value, str) and value for value in header.values()):  # PyJWT drops typ ""
        return False
    names = list(header)
    return names == sorted(names) and alg in pyjwt_signer().get_algorithms()


def sign_jws(private_key: Any, alg: str, header: Mapping[str, Any], payload: bytes) -> str:
    """JWS compact serialisation (RFC 7515 section 7.1) of exactly
    ``header`` (as compact JSON) and ``payload`` bytes, signed with
    ``alg``: by PyJWT when it writes exactly that header, else by
    :func:`jws_signature` (see the comment above)."""
    head = compact_json(dict(header))
    if not _pyjwt_can_sign(alg, header):
        return sign_raw(private_key, alg, head, payload)
    headers = dict(header)
    headers.setdefault("typ", None)  # PyJWT adds typ "JWT" unless told None
    token = pyjwt_signer().encode(payload, private_key, algorithm=alg, headers=headers)
    # PyJWT wrote the same header bytes and payload (sorted compact JSON,
    # base64url, RFC 7515 section 2): anything else is a bug in this helper.
    expected = b64url_encode(head) + "." + b64url_encode(payload) + "."
    if not token.startswith(expected) or json.loads(head) != header:
        raise AssertionError("PyJWT wrote a different JWS header or payload than asked for")
    return token
