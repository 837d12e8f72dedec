"""DPoP proof verification (RFC 9449) and stateless server nonces.

Framework-free: :meth:`DPoPVerifier.verify` takes the request method, the
request URL and the request's headers (a mapping or ``(name, value)`` pairs),
never a WSGI environ; :mod:`oidc_guard.wsgi` supplies them.

The order of the checks (RFC 9449 section 4.3) never believes anything the
proof's payload says before the proof's signature is verified:

1. size bound, before any parsing (``max_proof_bytes``);
2. exactly one ``DPoP`` header (4.3 step 1), one JWS in it;
3. JWS compact serialization with strict, canonical base64url (step 2; the
   parser of :mod:`oidc_guard.validator`, so one JWS has one spelling);
4. header: ``typ`` is ``dpop+jwt`` (step 4); ``alg`` in the same asymmetric
   allow-list as access tokens, never ``none`` or HS* (step 5); ``jwk`` a
   public key (step 7: no private members), parsed by the very function that
   parses the issuer's JWKS (:func:`oidc_guard.jwks.parse_jwk`: RSA >= 2048
   bits, EC points on their curve, Ed25519), and fitting ``alg``;
5. the signature verifies with that ``jwk`` (step 6);
6. only now the payload: ``htm`` equals the method (step 8); ``htu`` equals
   the request URL after normalisation, query and fragment ignored (step 9,
   RFC 3986 sections 6.2.2 and 6.2.3); ``nonce`` when nonces are on (step
   10); ``iat`` within the window (step 11); ``ath`` equals
   base64url(SHA-256(access token)) (step 12 / 4.2); the RFC 7638 thumbprint
   of ``jwk`` equals the token's ``cnf.jkt`` (step 12 / 6.1);
7. last, ``jti`` is recorded in the replay store (section 11.1): a ``jti``
   seen before within the window is a replay.  Recording last means a proof
   that fails any other check never uses up its ``jti``.

Window: a proof is accepted from ``iat - leeway`` (its ``iat`` may be up to
``leeway`` seconds, default 30, ahead of this server's clock) until
``iat + max_age`` (default 300 s; section 11.1 leaves the choice to the
server).  Its replay record lives exactly as long as the proof could still
be accepted, plus ``leeway`` for clock differences between hosts.

Replay store: anything with ``add(key, value, ttl_seconds) -> bool`` (atomic
add-if-absent: ``True`` when this call stored the key), the interface of
:mod:`oidc_guard.cache`.  The default is :class:`MemoryReplayStore` (one
process).  A :class:`~oidc_guard.cache.RedisCache` makes a proof replayed to
another worker or host fail too.  A store that cannot answer raises a
:class:`~oidc_guard.errors.ProviderError` (503): replay protection can no
longer be promised, so DPoP requests fail closed.  So does a store that
may forget a record before its expiry: a Redis whose ``maxmemory-policy``
evicts keys (anything but ``noeviction``; the store's ``replay_problem()``
reads it at first use and every minute) gets 503 for every DPoP request,
logged once at ERROR, unless the operator accepted the risk by name
(``dpop_accept_evicting_redis=True``).  Keys are a SHA-256 of a
namespace, the key thumbprint and the ``jti``; never a token.
"""

from __future__ import annotations

import binascii
import collections
import functools
import hashlib
import hmac
import logging
import math
import os
import re
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import unquote_to_bytes, urlsplit

from ._b64 import b64url_encode
from .cache import POLICY_RECHECK_SECONDS
from .errors import InvalidToken, ProviderError
from .jwks import SUPPORTED_ALGORITHMS, VerifyKey, _show, parse_jwk
from .validator import (
    _B64URL_BYTES,
    _SEGMENT_TO_STD_OR_BAD,
    _URLSAFE_TO_STD,
    _b64decode_std,
    _is_number,
    _parse_json_object,
)

__all__ = [
    "DPoPVerifier",
    "DPoPProof",
    "DPoPNonces",
    "InvalidDPoPProof",
    "UseDPoPNonce",
    "MemoryReplayStore",
    "ReplayStoreFull",
    "jwk_thumbprint",
    "access_token_hash",
    "normalize_htu",
]

log = logging.getLogger("oidc_guard.dpop")

#: Default bounds.  A proof is a header (with the public key) and a small
#: payload: an RSA-4096 proof is about 1.9 KB, so 8 KiB leaves room.
DEFAULT_MAX_PROOF_BYTES = 8192
DEFAULT_MAX_AGE = 300.0
DEFAULT_LEEWAY = 30.0
#: RFC 9449 section 4.2: jti "SHOULD" have at least 96 bits of randomness; a
#: UUID is 36 characters.  Longer values only cost replay-store memory.
MAX_JTI_LENGTH = 256
_MAX_NONCE_LENGTH = 256
_HEADER_MEMO_MAX = 1024

# RFC 9449 section 4.2: "typ": "dpop+jwt", compared exactly (as Spring and
# auth0 do; no "application/" prefix).
_DPOP_TYP = "dpop+jwt"
# Members of a JWK that only a private (or symmetric) key has
# (RFC 7518 sections 6.2.2, 6.3.2, 6.4; RFC 8037 section 2).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_REPLAY_NAMESPACE = b"oidc_guard/dpop/jti/v1\x00"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


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


class ReplayStoreFull(ProviderError):
    """The in-process replay store holds ``maxsize`` live records: a new one
    cannot be added without forgetting one that could still be replayed, so
    the request fails closed (503) instead."""

    reason = "store_unavailable"


# --- helpers ------------------------------------------------------------------


def access_token_hash(access_token: str) -> str:
    """RFC 9449 section 4.2 ``ath``: base64url(SHA-256(ASCII of the token))."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii", "surrogateescape")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (its required members
    only, sorted, no whitespace): the ``cnf.jkt`` of RFC 9449 section 6.1."""
    return parse_jwk(dict(jwk)).fingerprint


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 section 5.2.4."""
    out: List[bytes] = []
    segments = path.split(b"/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == b".":
            if last:
                out.append(b"")
            continue
        if seg == b"..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append(b"")
            continue
        out.append(seg)
    result = b"/".join(out)
    if path.startswith(b"/") and not result.startswith(b"/"):
        result = b"/" + result
    return result


def normalize_htu(url: str) -> Tuple[str, str, int, bytes]:
    """``(scheme, host, port, path)`` of an http(s) URL, normalised for the
    ``htu`` comparison of RFC 9449 section 4.3 step 9:

    * scheme and host case-insensitive (RFC 3986 6.2.2.1), port default
      filled in (6.2.3: ``https://h`` = ``https://h:443``);
    * empty path is ``/`` (6.2.3); percent-encodings decoded and dot segments
      removed (6.2.2.2-6.2.2.3).  The path is compared decoded because a
      WSGI application only ever sees the decoded path (PEP 3333
      ``PATH_INFO``): two URLs that reach the same route are the same URL;
    * query and fragment ignored (RFC 9449 4.3 step 9).

    Raises ``ValueError`` for anything that is not an absolute http(s) URL
    with a host (user info is refused too).
    """
    if not isinstance(url, str) or not url or len(url) > 4096:
        raise ValueError("not a URL")
    return _normalize_htu(url)


@functools.lru_cache(maxsize=1024)
def _normalize_htu(url: str) -> Tuple[str, str, int, bytes]:
    # Pure function of the string: memoised (a client names the same few
    # URLs, and the request URL repeats), bounded.
    if _CONTROL.search(url) is not None:
        raise ValueError("contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("scheme is not http or https")
    netloc = parts.netloc
    if not netloc or "@" in netloc:
        raise ValueError("no host, or user info in the authority")
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("bad port") from None
    if port is None:
        if netloc.endswith(":"):  # "host:" is allowed by RFC 3986 3.2.3, means default
            pass
        port = _DEFAULT_PORTS[scheme]
    path = unquote_to_bytes(parts.path or "/")
    if not path.startswith(b"/"):
        path = b"/" + path
    return scheme, host.lower(), port, _remove_dot_segments(path)


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


# --- replay store ---------------------------------------------------------------


class MemoryReplayStore:
    """The in-process replay store: ``add(key, value, ttl) -> bool``.

    Bounded without ever forgetting a live record: records expire in the
    order they were added when they share one lifetime, and a store full of
    live records refuses new ones (:class:`ReplayStoreFull`, 503) instead of
    evicting one, because an evicted ``jti`` could be replayed.  The default
    100,000 records (about 25 MB at most) are 300 DPoP requests/s sustained
    over a 330 s window.  Thread-safe.
    """

    shared = False

    def __init__(self, maxsize: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError("maxsize must be a positive int")
        self.maxsize = maxsize
        self._clock = clock
        self._expiry: Dict[str, float] = {}
        # (expiry, key) in insertion order; with one ttl per store this is
        # expiry order, and the pruning below stops at the first live record.
        self._queue: Deque[Tuple[float, str]] = collections.deque()
        self._lock = threading.Lock()
        # While the store is full of live records, no full scan can free
        # anything before the earliest live expiry the last scan saw: skip
        # scans until then, so that a full store costs O(1) per refused
        # proof instead of a scan of every record under the lock.
        self._rescan_at = 0.0
        #: full scans made (tests)
        self.full_scans = 0

    def __len__(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._expiry)

    def _prune(self, now: float) -> None:
        queue, expiry = self._queue, self._expiry
        while queue and queue[0][0] <= now:
            when, key = queue.popleft()
            if expiry.get(key) == when:
                del expiry[key]
        # Records with a shorter lifetime behind a longer one are found
        # here when the store is full.
        if len(expiry) >= self.maxsize and now >= self._rescan_at:
            self.full_scans += 1
            earliest = math.inf
            for key, when in list(expiry.items()):
                if when <= now:
                    del expiry[key]
                elif when < earliest:
                    earliest = when
            self._rescan_at = earliest if len(expiry) >= self.maxsize else 0.0

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty str")
        if not (isinstance(ttl_seconds, (int, float)) and math.isfinite(ttl_seconds) and ttl_seconds > 0):
            raise ValueError("ttl_seconds must be a positive number")
        with self._lock:
            now = self._clock()
            self._prune(now)
            when = self._expiry.get(key)
            if when is not None and when > now:
                return False
            if len(self._expiry) >= self.maxsize:
                raise ReplayStoreFull(
                    f"the in-process DPoP replay store holds {self.maxsize} live records; "
                    "refusing new proofs rather than forgetting one that could be replayed",
                    retry_after=5.0,
                )
            expires = now + ttl_seconds
            self._expiry[key] = expires
            self._queue.append((expires, key))
            self._rescan_at = 0.0  # a new record may expire before the last scan's earliest
            return True


# --- nonces -------------------------------------------------------------------


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


# --- the verifier -----------------------------------------------------------------


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
        # proof.  Bounded: cleared when it holds _HEADER_MEMO_MAX entries.
        # Entries: (alg, key, jkt, jkt as bytes, replay-key prefix).
        self._header_memo: Dict[bytes, Tuple[str, VerifyKey, str, bytes, bytes]] = {}
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

    def _verify_header_value(self, method: str, url: str, value: Any, access_token: Optional[str],
                             jkt: Optional[str]) -> DPoPProof:
        """:meth:`verify` for the one ``DPoP`` value a WSGI server passes
        (``HTTP_DPOP``, repeated fields joined with commas by PEP 3333;
        ``None`` when absent): the same checks without building a header
        list and searching it (what :mod:`oidc_guard.wsgi` calls)."""
        if type(value) is str:
            values = _split_field(value)
        else:
            values = [] if value is None else _header_values([("DPoP", value)], "DPoP")
        return self._verify(method, url, values, access_token, jkt)

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
        # The two dots, found with find() (a memchr) rather than a split of
        # the whole proof.  A third dot cannot slip through: a dot is not a
        # base64url character, and every segment is checked against the
        # alphabet below (the header either in full or as the exact bytes of
        # a memo entry that was).
        first = raw.find(b".")
        second = raw.find(b".", first + 1) if first >= 0 else -1
        if second < 0:
            raise InvalidDPoPProof("DPoP proof is not a JWS compact serialization (three base64url segments)")
        h_raw = raw[:first]
        p_raw = raw[first + 1:second]
        s_raw = raw[second + 1:]
        # The header memo (see _header_memo in __init__) is keyed by the exact
        # bytes of a header segment that passed steps 2-5 and 7 before: on a
        # hit those bytes were already checked to be base64url, so only the
        # payload and signature segments are checked here.  Every client
        # sends the same header (typ, alg, jwk) with every proof it makes
        # with one key, so this is the common case, and it skips the JSON
        # parse, the key parse (RSA modulus size, EC on-curve check) and the
        # RFC 7638 thumbprint.  The signature is still verified below.
        memo = self._header_memo.get(h_raw)
        # Payload and signature: one translate each maps base64url to base64
        # and every byte outside the base64url alphabet ("+", "/", "=", "."
        # and the rest) to "!" (validator._SEGMENT_TO_STD_OR_BAD), so that
        # "no '!' in the result" is the alphabet check.  The header, on a
        # memo miss, is checked with the whole proof.
        p_std = p_raw.translate(_SEGMENT_TO_STD_OR_BAD)
        s_std = s_raw.translate(_SEGMENT_TO_STD_OR_BAD)
        if b"!" in p_std or b"!" in s_std or (memo is None and raw.translate(None, _B64URL_BYTES) != b".."):
            raise InvalidDPoPProof("DPoP proof is not a JWS compact serialization (three base64url segments)")
        if not (h_raw and p_raw and s_raw):
            raise InvalidDPoPProof("DPoP proof has an empty segment (unsigned proofs are never accepted)")
        try:
            payload_raw = _b64decode_std(p_std)
            signature = _b64decode_std(s_std)
            header_raw = _b64decode_std(h_raw.translate(_URLSAFE_TO_STD)) if memo is None else b""
        except (binascii.Error, ValueError):
            raise InvalidDPoPProof("DPoP proof has a segment that is not valid base64url") from None

        if memo is None:
            alg, key, thumbprint = self._check_header(header_raw)
            memo = (alg, key, thumbprint, thumbprint.encode("ascii"),
                    _REPLAY_NAMESPACE + thumbprint.encode("ascii") + b"\x00")
            with self._memo_lock:
                if len(self._header_memo) >= _HEADER_MEMO_MAX:
                    self._header_memo.clear()
                self._header_memo[h_raw] = memo
        alg, key, thumbprint, thumbprint_bytes, replay_prefix = memo

        # Step 6: the signature, with the key of the proof's own header.
        if not key.verify(alg, raw[:second], signature):
            raise InvalidDPoPProof(f"DPoP proof signature is invalid (alg {alg}, key of its jwk header)")

        # From here on the payload is what the key holder signed.
        try:
            payload = _parse_json_object(payload_raw, "payload")
        except InvalidToken as exc:
            raise InvalidDPoPProof(_desc(exc)) from None
        now = self._clock()

        # Step 8: htm.  HTTP methods are case-sensitive (RFC 9110 9.1).
        htm = payload.get("htm")
        if not isinstance(htm, str):
            raise InvalidDPoPProof("DPoP proof has no htm claim" if htm is None else "DPoP proof htm is not a string")
        if htm != method:
            raise InvalidDPoPProof(f"DPoP proof htm {_show(htm)} is not the request method {method!r}")

        # Step 9: htu.
        htu = payload.get("htu")
        if not isinstance(htu, str):
            raise InvalidDPoPProof("DPoP proof has no htu claim" if htu is None else "DPoP proof htu is not a string")
        try:
            got_url = normalize_htu(htu)
        except ValueError as exc:
            raise InvalidDPoPProof(f"DPoP proof htu {_show(htu, 120)} is not an http(s) URL ({exc})") from None
        # The same string as the request URL (the rule when the client names
        # the URL the server reconstructs): equal after normalisation too,
        # and htu normalised above, so the request URL needs no second look.
        if htu != url:
            try:
                want_url = normalize_htu(url)
            except ValueError as exc:  # our own URL: a configuration or server problem
                raise InvalidDPoPProof(f"the request URL cannot be compared with htu ({exc})") from None
            if got_url != want_url:
                raise InvalidDPoPProof(f"DPoP proof htu {_show(htu, 120)} is not the request URL {_show(url, 120)}")

        # Step 11: iat within the window.
        iat = payload.get("iat")
        if iat is None:
            raise InvalidDPoPProof("DPoP proof has no iat claim")
        if not _is_number(iat):
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
            header = _parse_json_object(header_raw, "header")
        except InvalidToken as exc:
            raise InvalidDPoPProof(_desc(exc)) from None
        typ = header.get("typ")
        if typ != _DPOP_TYP:  # step 4
            raise InvalidDPoPProof(f"DPoP proof typ is {_show(typ)}; it must be 'dpop+jwt'")
        alg = header.get("alg")  # step 5
        if not isinstance(alg, str):
            raise InvalidDPoPProof("DPoP proof header has no alg")
        if alg not in self._alg_set:
            if alg.lower() == "none":
                raise InvalidDPoPProof("DPoP proof is unsigned (alg none)")
            if alg.upper().startswith("HS"):
                raise InvalidDPoPProof(f"DPoP proof uses symmetric alg {_show(alg)}; only asymmetric algorithms are accepted")
            raise InvalidDPoPProof(f"DPoP proof alg {_show(alg)} is not accepted; accepted: {list(self.algorithms)}")
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
