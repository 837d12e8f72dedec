"""The issuer's signing keys: JWK parsing, signature verification and the
cached, self-refreshing key set.

* JWKs (RFC 7517) are parsed once per fetch into ``cryptography`` key
  objects; a request never parses a key.
* A key is used for a token only when it fits the token's ``alg``
  (RFC 7518 section 3.1): its ``kty``/``crv`` match, its own ``alg`` (when
  present) is the same, ``use`` (when present) is ``sig`` and ``key_ops``
  (when present) contains ``verify`` (RFC 7517 sections 4.2-4.4).
  Symmetric (``oct``) and encryption keys are never loaded.
* Key rotation (OIDC Core 10.1): a ``kid`` that is not in the cached set
  makes the set refetch, at most once per ``cooldown`` however many unknown
  kids arrive (the first fetch does not start a cooldown).  Concurrent
  callers share one fetch in flight.  When a refresh fails the keys already
  known stay in use (last-known-good) and the failure is logged once per
  outage, not once per request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# the public key objects a JWK becomes (RFC 7518 6.3.1, 6.2.1; RFC 8037 2)
_PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]

from ._b64 import b64url_encode
from ._flight import Flight, SingleFlight
from ._text import show
from .errors import InvalidToken, ProviderError

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "VerifyKey",
    "parse_jwk",
    "parse_jwks",
    "KeySet",
]

log = logging.getLogger("oidc_guard.jwks")

_show = show  # the bounded repr; validator.py and dpop.py import it from here

_FETCH = "jwks"  # the key of a KeySet's one fetch in flight

#: The JWS algorithms oidc_guard can verify: asymmetric only (RFC 7518
#: section 3.1).  ``none`` and the HMAC family are deliberately absent: a
#: resource server holds only public keys, and "HS256 signed with the RSA
#: public key" is the classic key-confusion attack.
SUPPORTED_ALGORITHMS: Tuple[str, ...] = (
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
)

MIN_RSA_BITS = 2048  # NIST SP 800-131A; RFC 7518 section 3.3 requires at least 2048

_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}

# EC curves per alg (RFC 7518 section 3.4) and the byte length of r and s.
_EC = {
    "ES256": ("P-256", ec.SECP256R1, 32),
    "ES384": ("P-384", ec.SECP384R1, 48),
    "ES512": ("P-521", ec.SECP521R1, 66),
}
_CURVES_BY_CRV = {crv: (alg, curve, size) for alg, (crv, curve, size) in _EC.items()}

# What each alg's key must be, as (kty, crv or None).
_KTY_FOR_ALG: Dict[str, Tuple[str, Optional[str]]] = {}
for _a in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
    _KTY_FOR_ALG[_a] = ("RSA", None)
for _a, (_crv, _c, _s) in _EC.items():
    _KTY_FOR_ALG[_a] = ("EC", _crv)
_KTY_FOR_ALG["EdDSA"] = ("OKP", "Ed25519")

#: OIDC Core 3.1.3.6 / 3.3.2.11: at_hash and c_hash use the hash of the
#: ID Token's alg.  For EdDSA with Ed25519 that is SHA-512.
HASH_FOR_ALG: Dict[str, Callable[..., Any]] = {
    "RS256": hashlib.sha256, "PS256": hashlib.sha256, "ES256": hashlib.sha256,
    "RS384": hashlib.sha384, "PS384": hashlib.sha384, "ES384": hashlib.sha384,
    "RS512": hashlib.sha512, "PS512": hashlib.sha512, "ES512": hashlib.sha512,
    "EdDSA": hashlib.sha512,
}


_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


def _b64u_uint(value: Any, what: str) -> int:
    return int.from_bytes(_b64u_bytes(value, what), "big")


def _b64u_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} missing or not a string")
    # urlsafe_b64decode silently drops characters outside the alphabet:
    # check it first (RFC 7518 6.3.1: base64urlUInt, no padding).
    if _B64URL_RE.fullmatch(value) is None:
        raise ValueError(f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64url") from None


class VerifyKey:
    """One parsed public key from the JWKS, ready to verify signatures."""

    __slots__ = ("kid", "kty", "crv", "alg", "key", "fingerprint", "_verify")

    def __init__(self, kid: Optional[str], kty: str, crv: Optional[str], alg: Optional[str], key: Any, fingerprint: str) -> None:
        self.kid = kid
        self.kty = kty
        self.crv = crv
        self.alg = alg  # the JWK's own "alg", if it declared one
        self.key = key
        self.fingerprint = fingerprint  # RFC 7638 thumbprint: identifies the key material
        self._verify: Dict[str, Callable[[bytes, bytes], bool]] = {}

    def fits(self, alg: str) -> bool:
        """Can this key verify a token signed with ``alg``? (RFC 7518 3.1)"""
        if self.alg is not None and self.alg != alg:
            return False
        want = _KTY_FOR_ALG.get(alg)
        if want is None or want[0] != self.kty:
            return False
        return want[1] is None or want[1] == self.crv

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` over ``signing_input`` is valid for ``alg``.

        The caller must have checked :meth:`fits` first.
        """
        fn = self._verify.get(alg)
        if fn is None:
            fn = self._verify[alg] = _make_verifier(alg, self.key)
        return fn(signing_input, signature)

    def __repr__(self) -> str:
        return f"VerifyKey(kid={self.kid!r}, kty={self.kty!r}, crv={self.crv!r}, alg={self.alg!r})"


def _make_verifier(alg: str, key: Any) -> Callable[[bytes, bytes], bool]:
    """Build a closure that verifies one alg with one key, with the padding
    and hash objects created once (they are immutable)."""
    if alg.startswith("RS"):  # RSASSA-PKCS1-v1_5, RFC 7518 section 3.3
        pad = padding.PKCS1v15()
        h = _HASHES[alg[2:]]

        def verify_rs(data: bytes, sig: bytes) -> bool:
            try:
                key.verify(sig, data, pad, h)
                return True
            except InvalidSignature:
                return False

        return verify_rs
    if alg.startswith("PS"):  # RSASSA-PSS, RFC 7518 section 3.5: salt = hash length
        h = _HASHES[alg[2:]]
        pad_pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)

        def verify_ps(data: bytes, sig: bytes) -> bool:
            try:
                key.verify(sig, data, pad_pss, h)
                return True
            except InvalidSignature:
                return False

        return verify_ps
    if alg.startswith("ES"):  # ECDSA, RFC 7518 section 3.4: R || S, fixed width
        size = _EC[alg][2]
        algo = ec.ECDSA(_HASHES[alg[2:]])

        def verify_es(data: bytes, sig: bytes) -> bool:
            if len(sig) != 2 * size:
                return False
            r = int.from_bytes(sig[:size], "big")
            s = int.from_bytes(sig[size:], "big")
            # "Psychic signatures" (CVE-2022-21449): r = 0 or s = 0 must
            # never verify.  OpenSSL rejects them too; this is belt and braces.
            if r == 0 or s == 0:
                return False
            try:
                key.verify(encode_dss_signature(r, s), data, algo)
                return True
            except InvalidSignature:
                return False

        return verify_es
    if alg == "EdDSA":  # RFC 8037 section 3.1

        def verify_ed(data: bytes, sig: bytes) -> bool:
            if len(sig) != 64:
                return False
            try:
                key.verify(sig, data)
                return True
            except InvalidSignature:
                return False

        return verify_ed
    raise ValueError(f"unsupported alg {alg!r}")


def _thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256 of the required members, sorted)."""
    import json

    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())


def parse_jwk(jwk: Any) -> VerifyKey:
    """Parse one JWK into a :class:`VerifyKey`, or raise ``ValueError`` with
    the reason it cannot be used for verifying signatures."""
    if not isinstance(jwk, dict):
        raise ValueError("JWK is not an object")
    kty = jwk.get("kty")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    use = jwk.get("use")
    if use is not None and use != "sig":  # RFC 7517 4.2
        raise ValueError(f"use is {use!r}, not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):  # RFC 7517 4.3
        raise ValueError("key_ops does not allow 'verify'")
    alg = jwk.get("alg")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"alg {alg!r} is not an accepted signature algorithm")
    # Private members present means the provider published a private key: refuse it.
    if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise ValueError("JWK contains private or symmetric key material")

    key: _PublicKey
    try:
        if kty == "RSA":  # RFC 7518 section 6.3.1
            n = _b64u_uint(jwk.get("n"), "n")
            e = _b64u_uint(jwk.get("e"), "e")
            if n.bit_length() < MIN_RSA_BITS:
                raise ValueError(f"RSA key of {n.bit_length()} bits is below {MIN_RSA_BITS}")
            if e < 3 or e % 2 == 0:
                raise ValueError("RSA exponent is not a valid odd integer >= 3")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            crv = None
            fp = _thumbprint({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})
        elif kty == "EC":  # RFC 7518 section 6.2.1
            crv = jwk.get("crv")
            if crv not in _CURVES_BY_CRV:
                raise ValueError(f"unsupported EC curve {crv!r}")
            _alg, curve_cls, size = _CURVES_BY_CRV[crv]
            x = _b64u_bytes(jwk.get("x"), "x")
            y = _b64u_bytes(jwk.get("y"), "y")
            if len(x) != size or len(y) != size:
                raise ValueError(f"EC coordinates must be {size} bytes for {crv}")
            # from_encoded_point checks the point is on the curve.
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve_cls(), b"\x04" + x + y)
            fp = _thumbprint({"crv": crv, "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
        elif kty == "OKP":  # RFC 8037 section 2
            crv = jwk.get("crv")
            if crv != "Ed25519":
                raise ValueError(f"unsupported OKP curve {crv!r}")
            x = _b64u_bytes(jwk.get("x"), "x")
            if len(x) != 32:
                raise ValueError("Ed25519 public key must be 32 bytes")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
            fp = _thumbprint({"crv": crv, "kty": "OKP", "x": jwk["x"]})
        elif kty == "oct":
            raise ValueError("symmetric (oct) keys are never used")
        else:
            raise ValueError(f"unsupported kty {kty!r}")
    except ValueError:
        raise
    except (UnsupportedAlgorithm, TypeError, OverflowError) as exc:
        raise ValueError(f"unusable key ({exc.__class__.__name__})") from None

    vk = VerifyKey(kid, kty, crv, alg, key, fp)
    if alg is not None and not vk.fits(alg):
        raise ValueError(f"alg {alg!r} does not fit a {kty} key")
    return vk


def parse_jwks(doc: Any) -> Tuple[List[VerifyKey], List[str]]:
    """Parse a JWKS document; return the usable keys and why others were skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError('JWKS has no "keys" array')
    keys: List[VerifyKey] = []
    skipped: List[str] = []
    for index, jwk in enumerate(doc["keys"]):
        try:
            keys.append(parse_jwk(jwk))
        except ValueError as exc:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            skipped.append(f"key {index} (kid {kid!r}): {exc}")
    return keys, skipped


def _max_age(cache_control: Optional[str]) -> Optional[float]:
    """``max-age`` from a Cache-Control header (RFC 9111 5.2.2.1); no-store
    and no-cache count as 0."""
    if not cache_control:
        return None
    result: Optional[float] = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                result = float(int(value.strip().strip('"')))
            except ValueError:
                continue
    return result


class KeySet:
    """The cached JWKS of one issuer.

    ``fetch`` returns ``(jwks_document, cache_control_header)`` or raises
    ``ProviderError``.  Parameters:

    cooldown
        Minimum seconds between refetches caused by unknown ``kid`` values.
        Bounds what a flood of forged kids can cost the provider.
    default_ttl, min_ttl, max_ttl
        How long a fetched set is fresh: ``Cache-Control: max-age`` clamped to
        [min_ttl, max_ttl], ``default_ttl`` when absent.  A stale set is
        refreshed on next use; if that fails the stale keys stay in use.
    retry_interval
        After a failed fetch, no new attempt (other than an unknown-kid
        refetch allowed by the cooldown) before this many seconds.
    wait_timeout
        How long a caller waits for another thread's fetch in flight.
    on_change
        Called with the set of fingerprints that left the JWKS after a
        refresh (used to drop verified-token cache entries).
    """

    def __init__(
        self,
        fetch: Callable[[], Tuple[Any, Optional[str]]],
        *,
        cooldown: float = 30.0,
        default_ttl: float = 3600.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        retry_interval: float = 5.0,
        wait_timeout: float = 10.0,
        timer: Callable[[], float] = time.monotonic,
        on_change: Optional[Callable[[FrozenSet[str]], None]] = None,
        name: str = "issuer",
    ) -> None:
        self._fetch = fetch
        self.cooldown = cooldown
        self.default_ttl = default_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.retry_interval = min(retry_interval, cooldown) if cooldown > 0 else retry_interval
        self.wait_timeout = wait_timeout
        self._timer = timer
        self._on_change = on_change
        self._name = name

        self._lock = threading.Lock()
        # the one fetch in flight (go-oidc's inflight); joined under _lock,
        # together with the cooldown and retry state
        self._flights: "SingleFlight[str, None]" = SingleFlight(lock=self._lock)
        self._by_kid: Dict[str, VerifyKey] = {}
        self._keys: Tuple[VerifyKey, ...] = ()
        self._loaded = False
        self._expires_at = 0.0
        self._last_unknown_refetch: Optional[float] = None  # start of the cooldown
        self._retry_at = 0.0  # no automatic retry before this, after a failure
        self._last_error: Optional[ProviderError] = None
        #: RFC 7638 thumbprints of the keys currently published
        self.live: FrozenSet[str] = frozenset()
        #: how many fetches were attempted (for tests and metrics)
        self.fetch_count = 0

    # --- public --------------------------------------------------------------
    @property
    def keys(self) -> Tuple[VerifyKey, ...]:
        return self._keys

    @property
    def failing(self) -> bool:
        """True while the last fetch attempt failed."""
        return self._last_error is not None

    def get(self, kid: Optional[str], alg: str) -> VerifyKey:
        """The key to verify a token with header ``kid``/``alg``.

        Raises ``InvalidToken`` when the issuer has no such key, and
        ``ProviderError`` when the keys cannot be obtained.
        """
        now = self._timer()
        # waited: this call already saw the outcome of a fetch, so it will
        # not start a second one (at most one fetch wait per call).
        waited = False
        if not self._loaded:
            waited = self._refresh(now, reason="first use", must_succeed=True)
        elif now >= self._expires_at and now >= self._retry_at:
            # Stale keys: one caller refreshes, the others go on with the
            # keys they have (stale-while-revalidate) instead of waiting.
            waited = self._refresh(now, reason="cache lifetime over", must_succeed=False)

        key = self._lookup(kid, alg)
        if key is not None:
            return key

        if kid is None:
            raise InvalidToken(self._no_kid_reason(alg), reason="unknown_key")

        # Unknown kid: maybe the issuer rotated keys (OIDC Core 10.1).
        if waited or self._claim_unknown_refetch(now):
            if not waited:
                self._refresh(now, reason=f"unknown kid {_show(kid)}", must_succeed=False, joined=True)
            key = self._lookup(kid, alg)
            if key is not None:
                return key
            if self._last_error is not None:
                raise ProviderError(
                    f"kid {_show(kid)} is not in the cached JWKS and refreshing it failed: "
                    f"{self._last_error.description}",
                    retry_after=self._seconds_until_refetch(),
                )
            raise InvalidToken(self._unknown_kid_reason(kid, "after refresh"), reason="unknown_key")
        if self._last_error is not None:
            raise ProviderError(
                f"kid {_show(kid)} is not in the cached JWKS and the provider is failing: "
                f"{self._last_error.description}",
                retry_after=self._seconds_until_refetch(),
            )
        raise InvalidToken(self._unknown_kid_reason(kid, "(refetch cooldown active)"), reason="unknown_key")

    def refresh(self, *, strict: bool = False) -> None:
        """Fetch the JWKS now (joins a fetch in flight).  Raises ProviderError
        when it fails and no keys are known, or (``strict``, the start-up
        check) when this fetch failed at all."""
        self._refresh(self._timer(), reason="explicit refresh", must_succeed=not self._loaded, joined=strict)
        if strict and self._last_error is not None:
            raise self._last_error

    # --- internals -----------------------------------------------------------
    def _lookup(self, kid: Optional[str], alg: str) -> Optional[VerifyKey]:
        if kid is not None:
            key = self._by_kid.get(kid)
            if key is None:
                return None
            if not key.fits(alg):
                kind = key.kty + (f" {key.crv}" if key.crv else "") + (f" key for {key.alg}" if key.alg else " key")
                raise InvalidToken(f"key {_show(kid)} is an {kind}; it cannot verify {alg}", reason="algorithm")
            return key
        # RFC 7515 4.1.4: kid is optional; use the key only if it is the
        # one and only key that fits the alg.
        fitting = [k for k in self._keys if k.fits(alg)]
        if len(fitting) == 1:
            return fitting[0]
        return None

    def _no_kid_reason(self, alg: str) -> str:
        n = sum(1 for k in self._keys if k.fits(alg))
        if n == 0:
            return f"the issuer's JWKS has no key for {alg}"
        return f"token has no kid and the issuer's JWKS has {n} keys for {alg}"

    def _unknown_kid_reason(self, kid: str, when: str) -> str:
        return f"kid {_show(kid)} not in the issuer's JWKS {when}"

    def _claim_unknown_refetch(self, now: float) -> bool:
        """Atomically take the right to one unknown-kid refetch.  Callers
        arriving while a fetch is in flight join it instead."""
        with self._lock:
            if _FETCH in self._flights:
                return True  # join the fetch in flight, don't start another
            last = self._last_unknown_refetch
            if last is not None and now - last < self.cooldown:
                return False
            self._last_unknown_refetch = now
            return True

    def _seconds_until_refetch(self) -> float:
        now = self._timer()
        waits = [self._retry_at - now]
        if self._last_unknown_refetch is not None:
            waits.append(self._last_unknown_refetch + self.cooldown - now)
        return max(1.0, min(w for w in waits if w > 0) if any(w > 0 for w in waits) else 1.0)

    def _refresh(self, now: float, *, reason: str, must_succeed: bool, joined: bool = False) -> bool:
        """Fetch the JWKS, or join the fetch in flight.

        Returns True when the caller saw a fetch finish (it led one, or waited
        for one), False when it went on without waiting: a stale-key refresh
        led by another caller (``must_succeed`` and ``joined`` false).
        """
        with self._lock:
            if _FETCH not in self._flights and must_succeed and not joined and now < self._retry_at \
                    and self._last_error is not None:
                # Still inside the retry interval after a failure: don't
                # hammer a provider that is down, answer from memory.
                raise ProviderError(self._last_error.description, retry_after=self._retry_at - now)
            flight, leader = self._flights.join_locked(_FETCH)
        if leader:
            self._lead(flight, reason)
        elif not must_succeed and not joined:
            return False
        elif not flight.wait(self.wait_timeout):
            if must_succeed and not self._loaded:
                raise ProviderError(
                    f"timed out after {self.wait_timeout:g} s waiting for the {self._name} JWKS",
                    retry_after=self.retry_interval,
                )
            return True
        if flight.error is not None and must_succeed and not self._loaded:
            raise flight.error
        return True

    def _lead(self, flight: "Flight[None]", reason: str) -> None:
        error: Optional[ProviderError] = None
        try:
            self.fetch_count += 1
            doc, cache_control = self._fetch()
            try:
                keys, skipped = parse_jwks(doc)
            except ValueError as exc:
                raise ProviderError(f"{self._name} JWKS unusable: {exc}") from None
            for why in skipped:
                log.warning("oidc_guard: skipping a JWK of %s: %s", self._name, why)
            if not keys:
                raise ProviderError(f"{self._name} JWKS has no usable signing keys")
            self._install(keys, cache_control)
            if self._last_error is not None:
                log.warning("oidc_guard: %s JWKS reachable again; %d keys loaded", self._name, len(keys))
            self._last_error = None
        except ProviderError as exc:
            # Retry-After tells clients when the next attempt will be made.
            exc = ProviderError(exc.description, retry_after=self.retry_interval)
            error = exc
            first = self._last_error is None
            self._last_error = exc
            self._retry_at = self._timer() + self.retry_interval
            if first:  # once per outage, not once per request
                if self._loaded:
                    log.warning(
                        "oidc_guard: refreshing the %s JWKS failed (%s): %s; keeping the %d keys "
                        "already known (last-known-good)",
                        self._name, reason, exc.description, len(self._keys),
                    )
                else:
                    log.warning("oidc_guard: fetching the %s JWKS failed (%s): %s", self._name, reason, exc.description)
        except Exception as exc:  # a bug must not leave followers waiting forever
            error = ProviderError(f"{self._name} JWKS fetch failed unexpectedly ({exc.__class__.__name__})")
            self._last_error = error
            self._retry_at = self._timer() + self.retry_interval
            log.exception("oidc_guard: unexpected error fetching the %s JWKS", self._name)
        finally:
            self._flights.land(_FETCH, flight, error=error)

    def _install(self, keys: Sequence[VerifyKey], cache_control: Optional[str]) -> None:
        by_kid: Dict[str, VerifyKey] = {}
        for key in keys:
            if key.kid is not None:
                if key.kid in by_kid:
                    log.warning("oidc_guard: %s JWKS has kid %s twice; the first one is used", self._name, _show(key.kid))
                    continue
                by_kid[key.kid] = key
        ttl = _max_age(cache_control)
        if ttl is None:
            ttl = self.default_ttl
        ttl = min(max(ttl, self.min_ttl), self.max_ttl)
        old_live = self.live
        new_live = frozenset(k.fingerprint for k in keys)
        with self._lock:
            self._by_kid = by_kid
            self._keys = tuple(keys)
            self.live = new_live
            self._expires_at = self._timer() + ttl
            self._loaded = True
        removed = old_live - new_live
        if removed:
            log.info("oidc_guard: %d key(s) left the %s JWKS", len(removed), self._name)
            if self._on_change is not None:
                self._on_change(removed)
