"""Contenders several sections time: the bare signature verify of a
compact JWS (the floor every ratio is taken against) and a validator fed a
rotating pool of tokens (a new token per call)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from benchkit.issuer import b64url_decode


def bare_verifier(public_key: Any, alg: str, jws: str) -> Callable[[], None]:
    """``public_key.verify(...)`` of ``jws``'s signature (RS256, ES256 or
    EdDSA) with the signing input and signature prepared in advance (DER
    for ECDSA): a call does nothing but the verify."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    head, body, sig = jws.split(".")
    data = f"{head}.{body}".encode("ascii")
    raw = b64url_decode(sig)
    if alg == "RS256":
        pad, sha = padding.PKCS1v15(), hashes.SHA256()
        return lambda: public_key.verify(raw, data, pad, sha)
    if alg == "ES256":
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        algo = ec.ECDSA(hashes.SHA256())
        return lambda: public_key.verify(der, data, algo)
    if alg == "EdDSA":
        return lambda: public_key.verify(raw, data)
    raise ValueError(f"no bare verify for {alg!r}")


def rotating(validator: Any, tokens: Sequence[str]) -> Callable[[], Any]:
    """Each call validates the next of ``tokens`` (each stored as "." +
    token: the call slices a new str, as a server does per request), the
    first call ``tokens[0]``.  With ``cache_size=len(tokens) - 1`` every call
    is a cache miss that stores and evicts; a cache warmed with all of them
    in order still misses from the first call on (tokens[0] was evicted,
    and each call evicts the token due next)."""
    state = [-1]
    n = len(tokens)

    def call() -> Any:
        i = state[0] = (state[0] + 1) % n
        return validator.validate_access_token(tokens[i][1:])

    return call
