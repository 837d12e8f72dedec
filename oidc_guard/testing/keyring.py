"""The test issuer's key ring: its signing keys by ``kid``, which of them
are published in the JWKS, which one signs by default, and the check of a
JWT against them. :class:`~oidc_guard.testing.LocalIssuer` is a key ring
(it inherits this API).

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, cast

from .jose import with_changes
from .keys import SUPPORTED_ALGS, generate_key, key_family, pooled_key, public_jwk

__all__ = ["SigningKey", "KeyRing"]


@dataclass
class SigningKey:
    kid: str
    alg: str
    private_key: Any
    published: bool = True


class KeyRing:
    """Signing keys in the order they were added (thread-safe).

    A key's material comes from the process-wide pool of :mod:`.keys` (the
    ring's i-th key of a family is the pool's i-th: keys are shared between
    issuers in one process, never within one) unless :attr:`fresh_keys`.

    Attributes that tests may change at any time: :attr:`jwk_overrides`
    (``{kid: {member: value}}`` merged into that key's published JWK) and
    :attr:`extra_jwks` (raw JWK dicts appended to the JWKS).
    """

    def __init__(self, *, fresh_keys: bool = False) -> None:
        self.fresh_keys = bool(fresh_keys)
        self.jwk_overrides: Dict[str, Dict[str, Any]] = {}
        self.extra_jwks: List[Dict[str, Any]] = []
        self.__lock = threading.RLock()
        self.__keys: Dict[str, SigningKey] = {}  # insertion-ordered
        self.__signing_kid: Optional[str] = None
        self.__family_use: Dict[str, int] = {}

    def add_key(self, alg: str = "RS256", kid: Optional[str] = None, publish: bool = True) -> str:
        """Add a signing key for ``alg``; returns its kid. Does not change
        the default signing key unless there was none (see :meth:`rotate`).
        ``publish=False`` keeps it out of the JWKS (for unknown-kid tests;
        :meth:`publish` it later)."""
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported alg {alg!r}; supported: {', '.join(SUPPORTED_ALGS)}")
        family = key_family(alg)
        with self.__lock:
            if kid is None:
                kid = f"{alg.lower()}-{secrets.token_hex(6)}"
            if kid in self.__keys:
                raise ValueError(f"kid {kid!r} already exists")
            if self.fresh_keys:
                private_key = generate_key(family)
            else:
                index = self.__family_use.get(family, 0)
                self.__family_use[family] = index + 1
                private_key = pooled_key(family, index)
            self.__keys[kid] = SigningKey(kid, alg, private_key, publish)
            if self.__signing_kid is None:
                self.__signing_kid = kid
        return kid

    def rotate(self, alg: str = "RS256") -> str:
        """Key rotation (OIDC Core 10.1): add a new published key and make it
        the default signing key; the old keys stay published. Returns the new
        kid. Remove the old one later with :meth:`remove_key`."""
        kid = self.add_key(alg)
        with self.__lock:
            self.__signing_kid = kid
        return kid

    def remove_key(self, kid: str) -> None:
        """Forget a key (it leaves the JWKS). If it was the signing key, the
        most recently added remaining key becomes the signing key."""
        with self.__lock:
            if kid not in self.__keys:
                raise KeyError(kid)
            del self.__keys[kid]
            if self.__signing_kid == kid:
                self.__signing_kid = next(reversed(list(self.__keys)), None)

    def publish(self, kid: str) -> None:
        with self.__lock:
            self.__keys[kid].published = True

    def unpublish(self, kid: str) -> None:
        """Keep the key for signing but take it out of the JWKS."""
        with self.__lock:
            self.__keys[kid].published = False

    @property
    def signing_kid(self) -> Optional[str]:
        """The kid ``mint()`` uses when given neither ``kid`` nor ``alg``."""
        with self.__lock:
            return self.__signing_kid

    @signing_kid.setter
    def signing_kid(self, kid: str) -> None:
        with self.__lock:
            if kid not in self.__keys:
                raise KeyError(kid)
            self.__signing_kid = kid

    @property
    def kids(self) -> List[str]:
        with self.__lock:
            return list(self.__keys)

    def key_alg(self, kid: str) -> str:
        with self.__lock:
            return self.__keys[kid].alg

    def private_key(self, kid: str) -> Any:
        with self.__lock:
            return self.__keys[kid].private_key

    def public_key(self, kid: str) -> Any:
        """The ``cryptography`` public key object of ``kid``."""
        return self.private_key(kid).public_key()

    def public_key_pem(self, kid: Optional[str] = None) -> bytes:
        """SubjectPublicKeyInfo PEM of ``kid`` (default: the signing key),
        e.g. as the HMAC secret of the HS256 key-confusion attack."""
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self.public_key(cast(str, kid or self.signing_kid)).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def public_jwk(self, kid: str) -> Dict[str, Any]:
        """The JWK as published for ``kid`` (with :attr:`jwk_overrides`)."""
        with self.__lock:
            key = self.__keys[kid]
            return with_changes(public_jwk(key.private_key, key.alg, key.kid), self.jwk_overrides.get(kid))

    def jwks(self) -> Dict[str, Any]:
        """The JWKS document as served (RFC 7517 section 5)."""
        with self.__lock:
            keys = [self.public_jwk(k.kid) for k in self.__keys.values() if k.published]
            keys.extend(dict(extra) for extra in self.extra_jwks)
        return {"keys": keys}

    def _published_algs(self) -> List[str]:
        """The algs of the published keys, sorted, each once."""
        with self.__lock:
            return sorted({k.alg for k in self.__keys.values() if k.published})

    def _pick_key(self, alg: Optional[str] = None, kid: Optional[str] = None) -> SigningKey:
        """The key to sign with: ``kid`` (whose alg must be ``alg`` if both
        are given); else for ``alg`` the signing key if it is an ``alg``
        key, else the last ``alg`` key, else a new one; else the signing key."""
        with self.__lock:
            if kid is not None:
                if kid not in self.__keys:
                    raise KeyError(f"no key with kid {kid!r}")
                key = self.__keys[kid]
                if alg is not None and key.alg != alg:
                    raise ValueError(f"kid {kid!r} is a {key.alg} key, not {alg}")
                return key
            if alg is not None:
                if alg not in SUPPORTED_ALGS:
                    raise ValueError(f"unsupported alg {alg!r}")
                signing = self.__keys.get(self.__signing_kid or "")
                if signing is not None and signing.alg == alg:
                    return signing
                matching = [k for k in self.__keys.values() if k.alg == alg]
                if matching:
                    return matching[-1]
                return self.__keys[self.add_key(alg)]
            if self.__signing_kid is None:
                raise RuntimeError("LocalIssuer has no keys: add_key() first")
            return self.__keys[self.__signing_kid]

    def _decode_jwt(self, token: str, **checks: Any) -> Dict[str, Any]:
        """The payload of ``token`` if one of these keys signed it, checked by
        PyJWT with the key's own alg (never the token's) and ``checks``
        (``jwt.decode`` keywords: ``issuer``, ``audience``, ``options``).
        Raises ``jwt.InvalidTokenError`` (``"unknown kid"`` when no key has
        the token's kid)."""
        import jwt

        kid = jwt.get_unverified_header(token).get("kid")
        with self.__lock:
            key = self.__keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        payload: Dict[str, Any] = jwt.decode(token, key.private_key.public_key(), algorithms=[key.alg], **checks)
        return payload
