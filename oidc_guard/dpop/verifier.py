"""The DPoP proof check of RFC 9449 section 4.3 (part of oidc_guard.dpop;
the order of the checks is in the package docstring).  The proof is parsed
by the compact-JWS rules every token follows (oidc_guard._jws)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

from .._b64 import b64url_encode
from .._bounded import Memo
from .._jws import URLSAFE_TO_STD, b64decode_std, is_numeric_date, parse_json_object, show, split_std
from ..cache import POLICY_RECHECK_SECONDS
from ..errors import InvalidToken, ProviderError
from ..jwks import SUPPORTED_ALGORITHMS, VerifyKey, parse_jwk
from .htu import normalize_htu
from .nonces import DPoPNonces
from .replay import MemoryReplayStore

__all__ = ["DPoPVerifier", "DPoPProof", "InvalidDPoPProof", "UseDPoPNonce", "access_token_hash", "jwk_thumbprint"]

log = logging.getLogger("oidc_guard.dpop")

#: Default bounds.  A proof is a header (with the public key) and a small
#: payload: an RSA-4096 proof is about 1.9 KB, so 8 KiB leaves room.
DEFAULT_MAX_PROOF_BYTES = 8192
DEFAULT_MAX_AGE = 300.0
DEFAULT_LEEWAY = 30.0
#: RFC 9449 section 4.2: jti "SHOULD" have at least 96 bits of randomness; a
#: UUID is 36 characters.  Longer values only cost replay-store memory.
MAX_JTI_LENGTH = 256
_HEADER_MEMO_MAX = 1024

# RFC 9449 section 4.2: "typ": "dpop+jwt", compared exactly (as Spring and
# auth0 do; no "application/" prefix).
_DPOP_TYP = "dpop+jwt"
# Members of a JWK that only a private (or symmetric) key has
# (RFC 7518 sections 6.2.2, 6.3.2, 6.4; RFC 8037 section 2).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_REPLAY_NAMESPACE = b"oidc_guard/dpop/jti/v1\x00"


class InvalidDPoPProof(InvalidToken):
    """The DPoP proof is missing, malformed, badly signed, for another
    request, too old, replayed, or not bound to the token (RFC 9449 section
    7.1: ``invalid_dpop_proof``, HTTP 401).

    A subclass of :class:`~oidc_guard.InvalidToken`: code that catches token
    errors catches it too.
    """

    error = "invalid_dpop_proof"
    status = 401
    reason = "dpop_proof"


class UseDPoPNonce(InvalidDPoPProof):
    """The server wants a (fresh) nonce in the proof (RFC 9449 section 9:
    ``use_dpop_nonce``).  ``nonce`` goes into the ``DPoP-Nonce`` header of
    the 401 so the client can retry at once."""

    error = "use_dpop_nonce"
    reason = "dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


def access_token_hash(access_token: str) -> str:
    """RFC 9449 section 4.2 ``ath``: base64url(SHA-256(ASCII of the token))."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii", "surrogateescape")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (its required members
    only, sorted, no whitespace): the ``cnf.jkt`` of RFC 9449 section 6.1."""
    return parse_jwk(dict(jwk)).fingerprint


def _header_values(headers: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]], name: str) -> List[str]:
    """Every value of header ``name`` (case-insensitive), each comma-joined
    value split (RFC 9110 5.3: repeated fields may be joined with commas; a
    JWS never contains a comma)."""
    items: Iterable[Tuple[str, Any]]
    if type(headers) is list:  # what BearerMiddleware passes; skips the slower ABC check
        items = headers
    elif isinstance(headers, Mapping):
        items = headers.items()
    else:
        items = headers
    wanted = name.lower()
    out: List[str] = []
    for key, value in items:
        if not isinstance(key, str) or key.lower() != wanted:
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            continue
        out.extend(_split_field(value))
    return out


def _split_field(value: str) -> List[str]:
    """One header field value split at its commas (RFC 9110 5.3), each piece
    stripped of SP and HTAB.  Without a comma (one proof: the rule) there is
    nothing to split, and ``in`` finds that faster than ``split`` would."""
    if "," not in value:
        return [value.strip(" \t")]
    return [piece.strip(" \t") for piece in value.split(",")]


def _desc(exc: InvalidToken) -> str:
    # The validator's parsing helpers say "token header ..."; here it is the proof's.
    text = exc.description
    return "DPoP proof " + text[len("token "):] if text.startswith("token ") else text


class DPoPProof:
    """A verified DPoP proof: what the request proved."""

    __slots__ = ("jkt", "jti", "iat", "htm", "htu", "alg", "nonce_state")

    def __init__(self, jkt: str, jti: str, iat: float, htm: str, htu: str, alg: str,
                 nonce_state: Optional[str]) -> None:
        #: RFC 7638 thumbprint of the proof's key (= the token's cnf.jkt)
        self.jkt = jkt
        self.jti = jti
        self.iat = iat
        self.htm = htm
        self.htu = htu
        self.alg = alg
        #: "current" / "previous" when a server nonce was checked, else None
        self.nonce_state = nonce_state

    def __repr__(self) -> str:
        return f"DPoPProof(jkt={self.jkt!r}, alg={self.alg!r}, htm={self.htm!r}, htu={self.htu!r})"


class DPoPVerifier:
    """Verifies DPoP proofs (RFC 9449 section 4.3) for one resource server.

    algorithms
        proof algs accepted (default: every asymmetric alg oidc_guard
        verifies, :data:`oidc_guard.jwks.SUPPORTED_ALGORITHMS`); ``none``
        and HS* are refused at construction.  They are also the ``algs`` of
        the ``WWW-Authenticate: DPoP`` challenge (section 7.1).
    max_age, leeway
        the ``iat`` window in seconds (see the module docstring).
    replay_store
        an object with ``add(key, value, ttl_seconds) -> bool``; default a
        new :class:`MemoryReplayStore`.
    nonces
        a :class:`DPoPNonces` to require server nonces, else ``None``.
    max_proof_bytes
        longer proofs are refused before any parsing.
    clock
        Unix time in seconds (tests).
    """

    def __init__(
        self,
        *,
        algorithms: Optional[Iterable[str]] = None,
        max_age: float = DEFAULT_MAX_AGE,
        leeway: float = DEFAULT_LEEWAY,
        replay_store: Any = None,
        nonces: Optional[DPoPNonces] = None,
        max_proof_bytes: int = DEFAULT_MAX_PROOF_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithms is None:
            algs = tuple(SUPPORTED_ALGORITHMS)
        else:
            algs = tuple(dict.fromkeys([algorithms] if isinstance(algorithms, str) else algorithms))
            bad = [a for a in algs if a not in SUPPORTED_ALGORITHMS]
            if bad or not algs:
                raise ValueError(
                    f"DPoP proof algorithm(s) {bad} not accepted; choose from {list(SUPPORTED_ALGORITHMS)} "
                    "(none and HS* are never accepted)"
                )
        for name, value in (("max_age", max_age), ("leeway", leeway)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"DPoP {name} must be a non-negative number of seconds")
        if max_age <= 0:
            raise ValueError("DPoP max_age must be > 0")
        if not isinstance(max_proof_bytes, int) or max_proof_bytes < 256:
            raise ValueError("max_proof_bytes must be an int >= 256")
        if replay_store is not None and not callable(getattr(replay_store, "add", None)):
            raise TypeError("replay_store must have add(key, value, ttl_seconds) -> bool")
        self.algorithms: Tuple[str, ...] = algs
        self._alg_set: FrozenSet[str] = frozenset(algs)
        self.max_age = float(max_age)
        self.leeway = float(leeway)
        self.replay_store = replay_store if replay_store is not None else MemoryReplayStore()
        self.nonces = nonces
        self.max_proof_bytes = max_proof_bytes
        self._clock = clock
        # Proof key cache (RFC 9449 section 4.3 steps 3-5 and 7 done once per
        # key): exact bytes of the base64url header segment -> (alg, key,
        # jkt).  The header of every proof made with one key is the same
        # string (typ, alg, jwk: public data), so a client's proofs hit it.
        # Only headers that passed every header check (typ, alg allow-list,
        # no crit, no private jwk members, the JWKS key rules: RSA >= 2048,
        # on-curve EC, Ed25519) are stored; a header that differs in any
        # byte (another key, an added "d") is a miss and is checked in full.
        # The signature, the payload checks and the jti record run on every
        # proof.  Bounded: a Memo, cleared when it holds _HEADER_MEMO_MAX
        # entries.  Entries: (alg, key, jkt, jkt as bytes, replay-key prefix).
        self._header_memo: Memo[bytes, Tuple[str, VerifyKey, str, bytes, bytes]] = Memo(_HEADER_MEMO_MAX)
        self._memo_lock = threading.Lock()
        self._store_failing = False
        self._store_untrusted = False

    def __repr__(self) -> str:
        return (f"DPoPVerifier(algorithms={list(self.algorithms)!r}, max_age={self.max_age:g}, "
                f"leeway={self.leeway:g}, nonces={self.nonces is not None})")

    @property
    def algs_value(self) -> str:
        """The ``algs`` attribute of the ``WWW-Authenticate: DPoP`` challenge."""
        return " ".join(self.algorithms)

    # -- the checks ---------------------------------------------------------------
    def verify(
        self,
        method: str,
        url: str,
        headers: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]],
        *,
        access_token: Optional[str] = None,
        jkt: Optional[str] = None,
    ) -> DPoPProof:
        """Verify the request's DPoP proof; returns a :class:`DPoPProof`.

        ``access_token``: when given, the proof's ``ath`` must be its hash
        (always, at a resource server).  ``jkt``: when given, the thumbprint
        of the proof's key must equal it (the token's ``cnf.jkt``).

        Raises :class:`InvalidDPoPProof` (401), :class:`UseDPoPNonce` (401
        with a nonce to retry with) or :class:`~oidc_guard.ProviderError`
        (503: the replay store cannot answer).
        """
        return self._verify(method, url, _header_values(headers, "DPoP"), access_token, jkt)

    def verify_field(self, method: str, url: str, value: Any, access_token: Optional[str] = None,
                     jkt: Optional[str] = None) -> DPoPProof:
        """:meth:`verify` for the request's ``DPoP`` field value as one
        string (what a WSGI server passes as ``HTTP_DPOP``, repeated fields
        joined with commas by PEP 3333; what an ASGI adapter gets by joining
        the ``dpop`` header lines with ``", "``), or ``None`` when absent:
        the same checks without building a header list and searching it.
        Two proofs joined with a comma are refused as two proofs (RFC 9449
        section 4.3 step 1), as :meth:`verify` refuses two header lines.
        What :class:`oidc_guard.auth.Authenticator` calls."""
        if type(value) is str:
            values = _split_field(value)
        else:
            values = [] if value is None else _header_values([("DPoP", value)], "DPoP")
        return self._verify(method, url, values, access_token, jkt)

    # The name it had before it was public (kept for code that called it).
    _verify_header_value = verify_field

    def _verify(self, method: str, url: str, values: List[str], access_token: Optional[str],
                jkt: Optional[str]) -> DPoPProof:
        if len(values) != 1:
            if not values:
                raise InvalidDPoPProof("the request has no DPoP header (RFC 9449 section 7.1)")
            raise InvalidDPoPProof("the request has more than one DPoP proof (RFC 9449 section 4.3 step 1)")
        proof = values[0]
        if not proof:
            raise InvalidDPoPProof("the DPoP header is empty")
        if len(proof) > self.max_proof_bytes:  # step 0: bound before parsing
            raise InvalidDPoPProof(f"DPoP proof is {len(proof)} bytes; the limit is {self.max_proof_bytes}")

        # RFC 9449 4.3 step 2: a well-formed JWS (compact, canonical base64url).
        if not proof.isascii():
            raise InvalidDPoPProof("DPoP proof is not a JWS (characters outside base64url)")
        raw = proof.encode("ascii")
        # The header memo (see _header_memo in __init__) is keyed by the exact
        # bytes of a header segment that passed steps 2-5 and 7 before: on a
        # hit those bytes were already checked to be base64url, so only the
        # payload and signature segments are checked (_jws.split_std).  Every
        # client sends the same header (typ, alg, jwk) with every proof it
        # makes with one key, so this is the common case, and it skips the
        # JSON parse, the key parse (RSA modulus size, EC on-curve check) and
        # the RFC 7638 thumbprint.  The signature is still verified below.
        memo_table = self._header_memo.data  # its plain dict: C look-ups only
        parts = split_std(raw, memo_table)
        if parts is None:
            raise InvalidDPoPProof("DPoP proof is not a JWS compact serialization (three base64url segments)")
        h_raw, p_std, s_std, second = parts
        if not (h_raw and p_std and s_std):
            raise InvalidDPoPProof("DPoP proof has an empty segment (unsigned proofs are never accepted)")
        memo = memo_table.get(h_raw)
        try:
            payload_raw = b64decode_std(p_std)
            signature = b64decode_std(s_std)
            header_raw = b64decode_std(h_raw.translate(URLSAFE_TO_STD)) if memo is None else b""
        except ValueError:  # binascii.Error is a ValueError
            raise InvalidDPoPProof("DPoP proof has a segment that is not valid base64url") from None

        if memo is None:
            alg, key, thumbprint = self._check_header(header_raw)
            memo = (alg, key, thumbprint, thumbprint.encode("ascii"),
                    _REPLAY_NAMESPACE + thumbprint.encode("ascii") + b"\x00")
            with self._memo_lock:
                self._header_memo.put(h_raw, memo)
        alg, key, thumbprint, thumbprint_bytes, replay_prefix = memo

        # Step 6: the signature, with the key of the proof's own header.
        if not key.verify(alg, raw[:second], signature):
            raise InvalidDPoPProof(f"DPoP proof signature is invalid (alg {alg}, key of its jwk header)")

        # From here on the payload is what the key holder signed.
        try:
            payload = parse_json_object(payload_raw, "payload")
        except InvalidToken as exc:
            raise InvalidDPoPProof(_desc(exc)) from None
        now = self._clock()

        # Step 8: htm.  HTTP methods are case-sensitive (RFC 9110 9.1).
        htm = payload.get("htm")
        if not isinstance(htm, str):
            raise InvalidDPoPProof("DPoP proof has no htm claim" if htm is None else "DPoP proof htm is not a string")
        if htm != method:
            raise InvalidDPoPProof(f"DPoP proof htm {show(htm)} is not the request method {method!r}")

        # Step 9: htu.
        htu = payload.get("htu")
        if not isinstance(htu, str):
            raise InvalidDPoPProof("DPoP proof has no htu claim" if htu is None else "DPoP proof htu is not a string")
        try:
            got_url = normalize_htu(htu)
        except ValueError as exc:
            raise InvalidDPoPProof(f"DPoP proof htu {show(htu, 120)} is not an http(s) URL ({exc})") from None
        # The same string as the request URL (the rule when the client names
        # the URL the server reconstructs): equal after normalisation too,
        # and htu normalised above, so the request URL needs no second look.
        if htu != url:
            try:
                want_url = normalize_htu(url)
            except ValueError as exc:  # our own URL: a configuration or server problem
                raise InvalidDPoPProof(f"the request URL cannot be compared with htu ({exc})") from None
            if got_url != want_url:
                raise InvalidDPoPProof(f"DPoP proof htu {show(htu, 120)} is not the request URL {show(url, 120)}")

        # Step 11: iat within the window.
        iat = payload.get("iat")
        if iat is None:
            raise InvalidDPoPProof("DPoP proof has no iat claim")
        if not is_numeric_date(iat):
            raise InvalidDPoPProof("DPoP proof iat is not a number in the NumericDate range")
        if iat > now + self.leeway:
            raise InvalidDPoPProof(f"DPoP proof iat is {iat - now:.0f} s in the future (leeway {self.leeway:g} s)")
        if now > iat + self.max_age:
            raise InvalidDPoPProof(f"DPoP proof is {now - iat:.0f} s old; proofs are accepted for {self.max_age:g} s")

        # jti: present, a string, bounded (recorded last, below).
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidDPoPProof("DPoP proof has no jti claim" if jti is None else "DPoP proof jti is not a non-empty string")
        if len(jti) > MAX_JTI_LENGTH:
            raise InvalidDPoPProof(f"DPoP proof jti is {len(jti)} characters; the limit is {MAX_JTI_LENGTH}")

        # Step 12 / section 4.2: ath binds the proof to this access token.
        if access_token is not None:
            ath = payload.get("ath")
            if ath is None:
                raise InvalidDPoPProof("DPoP proof has no ath claim (hash of the access token)")
            # compare_digest takes ASCII str; a non-ASCII ath is never the hash.
            if not isinstance(ath, str) or not ath.isascii() or not hmac.compare_digest(
                    ath, access_token_hash(access_token)):
                raise InvalidDPoPProof("DPoP proof ath is not the hash of the access token")

        # Step 12 / section 6.1: the key is the one the token is bound to.
        if jkt is not None and not hmac.compare_digest(
                thumbprint_bytes, jkt.encode("ascii", "replace") if isinstance(jkt, str) else b""):
            raise InvalidDPoPProof("DPoP proof key is not the key the access token is bound to (cnf.jkt)", reason="binding")

        # Step 10 / section 9: the server nonce, when nonces are on.
        nonce_state: Optional[str] = None
        if self.nonces is not None:
            nonce = payload.get("nonce")
            nonce_state = self.nonces.check(nonce)
            if nonce_state is None:
                raise UseDPoPNonce(
                    "DPoP proof has no nonce; use the DPoP-Nonce header's value" if nonce is None
                    else "DPoP proof nonce is not current; use the DPoP-Nonce header's value",
                    self.nonces.current(),
                )

        # Section 11.1: a jti is accepted once.  Last, so that only proofs that
        # passed every other check use up their jti.
        self._record(replay_prefix, jti, iat, now)
        return DPoPProof(thumbprint, jti, float(iat), htm, htu, alg, nonce_state)

    def _check_header(self, header_raw: bytes) -> Tuple[str, VerifyKey, str]:
        """Steps 3-5 and 7 on the proof's JOSE header; returns (alg, key, jkt)."""
        try:
            header = parse_json_object(header_raw, "header")
        except InvalidToken as exc:
            raise InvalidDPoPProof(_desc(exc)) from None
        typ = header.get("typ")
        if typ != _DPOP_TYP:  # step 4
            raise InvalidDPoPProof(f"DPoP proof typ is {show(typ)}; it must be 'dpop+jwt'")
        alg = header.get("alg")  # step 5
        if not isinstance(alg, str):
            raise InvalidDPoPProof("DPoP proof header has no alg")
        if alg not in self._alg_set:
            if alg.lower() == "none":
                raise InvalidDPoPProof("DPoP proof is unsigned (alg none)")
            if alg.upper().startswith("HS"):
                raise InvalidDPoPProof(f"DPoP proof uses symmetric alg {show(alg)}; only asymmetric algorithms are accepted")
            raise InvalidDPoPProof(f"DPoP proof alg {show(alg)} is not accepted; accepted: {list(self.algorithms)}")
        if "crit" in header:  # RFC 7515 4.1.11
            raise InvalidDPoPProof("DPoP proof has critical header extensions that are not supported")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise InvalidDPoPProof("DPoP proof header has no jwk object (the public key)")
        private = [name for name in _PRIVATE_MEMBERS if name in jwk]
        if private:  # step 7
            raise InvalidDPoPProof(f"DPoP proof jwk contains private key members {private}; only a public key may be sent")
        try:
            key = parse_jwk(jwk)  # the JWKS rules: RSA >= 2048, on-curve EC, Ed25519
        except ValueError as exc:
            raise InvalidDPoPProof(f"DPoP proof jwk is not usable: {exc}") from None
        if not key.fits(alg):
            raise InvalidDPoPProof(f"DPoP proof jwk ({key.kty}{' ' + key.crv if key.crv else ''}) cannot verify alg {alg}")
        return alg, key, key.fingerprint

    def _record(self, prefix: bytes, jti: str, iat: float, now: float) -> None:
        # prefix: _REPLAY_NAMESPACE + key thumbprint + NUL, made once per
        # proof key (header memo): the key is SHA-256(namespace, jkt, jti).
        digest = hashlib.sha256(prefix + jti.encode("utf-8", "surrogatepass")).hexdigest()
        # Until the proof could no longer be accepted anywhere, plus leeway
        # for hosts whose clocks run behind ours.
        ttl = max(1.0, iat + self.max_age - now + self.leeway)
        try:
            # A store that can forget a record before its expiry (a Redis
            # that evicts keys) cannot promise section 11.1: ask it first.
            problem = self._store_problem()
            first = problem is None and self.replay_store.add("dpop:jti:" + digest, b"1", ttl)
        except ProviderError as exc:
            self._store_down(exc.description)
            raise ProviderError(
                f"the DPoP replay store cannot be used ({exc.description}); DPoP requests are refused "
                "until it is back, because replays could not be detected", retry_after=exc.retry_after,
                reason="store_unavailable",
            ) from None
        except Exception as exc:  # any other failure of a store: fail closed, never 500
            self._store_down(exc.__class__.__name__)
            raise ProviderError(
                f"the DPoP replay store failed ({exc.__class__.__name__}); DPoP requests are refused "
                "until it is back", retry_after=5.0, reason="store_unavailable",
            ) from None
        if self._store_failing:
            self._store_failing = False
            log.warning("oidc_guard: the DPoP replay store answers again; DPoP requests are accepted again")
        if problem is not None:
            if not self._store_untrusted:  # once, until the store may be trusted again
                self._store_untrusted = True
                log.error("oidc_guard: DPoP requests are refused with 503: %s", problem)
            raise ProviderError(f"the DPoP replay store cannot be trusted: {problem}",
                                retry_after=POLICY_RECHECK_SECONDS)
        if self._store_untrusted:
            self._store_untrusted = False
            log.warning("oidc_guard: the DPoP replay store may be trusted again; DPoP requests are accepted again")
        if not first:
            raise InvalidDPoPProof("DPoP proof was already used (jti seen before; RFC 9449 section 11.1)")

    def _store_problem(self) -> Optional[str]:
        """Why the replay store must not be trusted, or ``None``: a store
        with ``replay_problem()`` (:class:`~oidc_guard.cache.RedisCache`:
        its ``maxmemory-policy``) is asked; others are trusted."""
        ask = getattr(self.replay_store, "replay_problem", None)
        if not callable(ask):
            return None
        problem = ask()
        return problem if isinstance(problem, str) and problem else None

    def _store_down(self, why: str) -> None:
        if not self._store_failing:  # once per outage
            self._store_failing = True
            log.warning("oidc_guard: the DPoP replay store is unavailable (%s); DPoP requests fail "
                        "closed with 503 until it answers again", why)
