"""Reference (opaque) access tokens: the OAuth 2.0 Token Introspection client
(RFC 7662), with a cache in front of the endpoint.

IdentityServer v3 (and npm oidc-provider without a resource indicator)
issue access tokens that are handles, not JWTs; only the provider knows
what they mean.  :class:`Introspector` asks it, under these rules:

Request (RFC 7662 section 2.1)
    ``POST`` ``application/x-www-form-urlencoded`` with ``token`` and
    ``token_type_hint=access_token``, authenticated as this API:
    ``client_secret_basic`` (RFC 6749 section 2.3.1: client id and secret are
    each form-urlencoded *before* being joined with ``:`` and base64-encoded)
    or ``client_secret_post`` (both in the form body).  Transport rules are
    those of discovery and JWKS (oidc_guard.http): timeout, size limit, https
    except loopback, JSON required, no redirect to another origin.

Response (RFC 7662 section 2.2)
    Accepted only when it is a JSON object whose ``active`` is the JSON value
    ``true`` and that names an ``aud`` intersecting the audience (unless
    ``verify_audience=False``; an answer without ``aud`` only with
    ``audience_optional=True``, see below); where present: ``iss`` equals the
    issuer, ``exp`` has not passed and
    ``nbf`` is not in the future (leeway as for JWTs; both NumericDates as in
    RFC 7519 section 2), and ``token_type`` does not say refresh token.  Any
    other ``active`` (``false``, missing, ``"true"``) -> ``InvalidToken``.

    ``aud`` is OPTIONAL in RFC 7662 section 2.2, and an endpoint that
    answers for any token of the provider (django-oauth-toolkit, npm
    oidc-provider: any authenticated client may introspect any token) omits
    it for a token minted without an RFC 8707 ``resource``: accepting such an
    answer would accept every API's tokens, so by default it is refused
    (``InvalidToken``, naming the setting).  ``audience_optional=True``
    (``TokenValidator(introspection_audience_optional=True)``) accepts it,
    for endpoints that answer active only for tokens meant for the calling
    API (IdentityServer's); an ``aud`` that is present is still checked.

Failures of the endpoint
    unreachable, timing out, 5xx, non-JSON, a redirect elsewhere, or 401/403
    (the provider refusing *this API's* credentials) -> ``ProviderError``
    (503 + Retry-After), never 401: a client must not throw away a good token
    because our configuration is wrong.  The credential refusal is logged at
    WARNING once (until a call succeeds again) in words that say so.

Bounds
    * a token that cannot be a token (empty, over ``max_token_bytes``,
      outside the RFC 6750 section 2.1 ``b64token`` characters) is refused
      before anything is sent;
    * concurrent validations of one token share one call (single flight);
    * at most ``max_in_flight`` calls run at once; a caller over the bound
      waits up to ``queue_timeout`` seconds for a slot, then gets
      ``ProviderError`` (503, Retry-After 1): a flood of random tokens cannot
      turn the API into an amplifier against the provider.

Cache (keys are SHA-256 of the token, never the token)
    in-process front (bounded) -> shared cache (Redis, optional) -> endpoint.
    An active result lives until ``min(exp, now + cache_ttl)``; an inactive
    one for ``inactive_ttl`` seconds (default ``min(cache_ttl, 10)``): a
    revoked token stays accepted for at most ``cache_ttl`` seconds after the
    revocation, an unknown token costs one call per 10 s however often it is
    sent.  ``cache_ttl=0`` turns caching off (single flight and the bound
    stay).

    What Redis gives back is untrusted: each entry carries an HMAC-SHA256
    under a key derived from this API's client secret and bound to its Redis
    key (which names issuer, audience, client and endpoint), and every
    response rule above is applied again to what is read.  Anything that
    does not pass is ignored (logged once) and the endpoint is asked.  Redis
    down or slow: the endpoint is asked (the cache logs it once and retries
    by itself).

    Each entry also carries the time it was written.  A reader never keeps a
    result longer than its *own* ``cache_ttl`` (``inactive_ttl`` for an
    inactive one) after that time, nor past the token's ``exp``, whatever
    lifetime the writer gave it: two APIs or releases sharing one Redis with
    different TTLs each get the revocation delay they configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from types import MappingProxyType
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote_plus, urlencode

from ._bounded import Fifo
from ._flight import SharedFlight, SingleFlight
from .cache import Cache, CacheUnavailable, open_cache
from .claims import Claims
from .discovery import ProviderMetadata
from .errors import ConfigurationError, InvalidToken, ProviderError
from .http import check_url, decode_json_object, fetch
# The NumericDate rule (RFC 7519 section 2) and the bounded repr of an
# untrusted value are those of the JWT path: one definition each.
from ._text import show as _show
from ._jws import is_numeric_date as _is_number

__all__ = [
    "Introspector",
    "AUTH_METHODS",
    "VALIDATION_MODES",
    "looks_like_token",
]

log = logging.getLogger("oidc_guard.introspection")

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
VALIDATION_MODES = ("local", "both", "introspection")

MAX_RESPONSE_BYTES = 64 * 1024

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
# / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# Header marking a Claims built from an introspection response (the Claims
# of a JWT carries its JOSE header there).  Read-only and shared.
INTROSPECTION_HEADER: Mapping[str, Any] = MappingProxyType({"oidc_guard.source": "introspection"})

# Version 2 added the write time ("at") that readers cap their own TTL on;
# it is also in the Redis key prefix, so workers of two releases never read
# each other's entries during a rolling deploy.
_ENTRY_VERSION = 2


def looks_like_token(token: Any, max_bytes: int) -> Optional[str]:
    """``None`` when ``token`` may be sent to the provider, else the reason."""
    if not isinstance(token, str):
        return f"access token must be a string, not {type(token).__name__}"
    if not token:
        return "access token is empty"
    if len(token) > max_bytes:
        return f"access token is {len(token)} bytes; the limit is {max_bytes}"
    if not token.isascii() or _B64TOKEN.fullmatch(token) is None:
        return "access token contains characters outside the RFC 6750 token syntax"
    return None


class _Entry:
    """A front-cache entry: active Claims, or the reason it is inactive."""

    __slots__ = ("claims", "reason", "until", "code")

    def __init__(self, claims: Optional[Claims], reason: str, until: float, code: str = "inactive") -> None:
        self.claims = claims
        self.reason = reason
        self.until = until
        self.code = code  # the refusal's InvalidToken.reason


def _too_long() -> ProviderError:
    return ProviderError("introspection of this token is taking too long", retry_after=1)


class Introspector:
    """RFC 7662 client plus cache for one issuer and one API (see module doc).

    Built by :class:`~oidc_guard.TokenValidator` from its ``introspection_*``
    keywords; usable alone.  ``metadata`` supplies the discovery document's
    ``introspection_endpoint`` when ``endpoint`` is not given.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audiences: Sequence[str],
        verify_audience: bool,
        leeway: float,
        client_id: str,
        client_secret: str,
        metadata: Optional[ProviderMetadata],
        endpoint: Optional[str] = None,
        auth_method: str = "client_secret_basic",
        http_timeout: float = 5.0,
        allow_http: bool = False,
        cache_ttl: float = 60.0,
        inactive_ttl: Optional[float] = None,
        shared_cache: Union[None, str, Cache, Any] = None,
        max_in_flight: int = 4,
        queue_timeout: float = 1.0,
        max_token_bytes: int = 16384,
        front_size: int = 10000,
        clock: Callable[[], float] = time.time,
        audience_optional: bool = False,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("introspection_client_id must be a non-empty string")
        if not isinstance(client_secret, str) or not client_secret:
            raise ConfigurationError("introspection_client_secret must be a non-empty string")
        if auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"introspection_auth_method must be one of {list(AUTH_METHODS)}, not {_show(auth_method)}"
            )
        if endpoint is not None:
            try:
                check_url(endpoint, allow_http, "introspection_endpoint")
            except ProviderError as exc:
                raise ConfigurationError(exc.description) from None
        if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, (int, float)) or cache_ttl < 0:
            raise ConfigurationError("introspection_cache_ttl must be a number of seconds >= 0")
        if inactive_ttl is None:
            inactive_ttl = min(float(cache_ttl), 10.0)
        if isinstance(inactive_ttl, bool) or not isinstance(inactive_ttl, (int, float)) or inactive_ttl < 0:
            raise ConfigurationError("introspection_inactive_ttl must be a number of seconds >= 0")
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ConfigurationError("introspection_max_in_flight must be an int >= 1")
        if metadata is None and endpoint is None:
            raise ConfigurationError("introspection needs an introspection_endpoint or discovery")

        self.issuer = issuer
        self.audiences: Tuple[str, ...] = tuple(audiences)
        self._audience_set: FrozenSet[str] = frozenset(audiences)
        self.verify_audience = verify_audience
        #: accept an active answer without aud (see the module doc)
        self.audience_optional = bool(audience_optional)
        self.leeway = float(leeway)
        self.client_id = client_id
        self.__secret = client_secret  # name-mangled; never in repr or errors
        self.auth_method = auth_method
        self.http_timeout = float(http_timeout)
        self.allow_http = allow_http
        self.cache_ttl = float(cache_ttl)
        self.inactive_ttl = float(inactive_ttl)
        self.max_in_flight = max_in_flight
        self.queue_timeout = float(queue_timeout)
        self.max_token_bytes = int(max_token_bytes)
        self._metadata = metadata
        self._endpoint = endpoint
        self._clock = clock

        # Entries bind to this configuration: the Redis key prefix names the
        # issuer and hashes everything that changes what "active" means here.
        # An API that accepts aud-less answers and one that refuses them must
        # not share entries (one would cache the other's refusal).
        binding = json.dumps(
            [issuer, sorted(self.audiences), verify_audience, client_id, endpoint]
            + (["audience optional"] if self.audience_optional else []), separators=(",", ":")
        ).encode("utf-8")
        self._binding = hashlib.sha256(binding).hexdigest()[:24]
        self.cache_prefix = f"oidc_guard:introspection:v{_ENTRY_VERSION}:{issuer}:{self._binding}:"
        # HMAC key for shared entries: only holders of this API's secret can
        # write an entry this API believes.
        self._mac_key = hmac.new(client_secret.encode("utf-8"), b"oidc_guard introspection cache v1",
                                 hashlib.sha256).digest()
        self._shared: Optional[Cache] = None
        if shared_cache is not None and self.cache_ttl > 0:
            self._shared = open_cache(shared_cache, prefix=self.cache_prefix)
        # One process per token calls the endpoint (shared cache only): the
        # lock lives for one call, the others wait for its result as long.
        self._shared_flight: Optional[SharedFlight] = None
        if self._shared is not None:
            self._shared_flight = SharedFlight(self._shared, lock_ttl=self.http_timeout + 1.0,
                                               wait=self.http_timeout + 0.5, on_down=self._cache_down)

        # SHA-256 of the token -> _Entry; bounded to front_size entries
        # whatever the entry came from (a fresh answer or the shared cache),
        # so random tokens replayed to every worker cannot grow any worker's
        # memory without limit.  Reads are plain dict look-ups.
        self._front: "Fifo[bytes, _Entry]" = Fifo(max(1, int(front_size)))
        # one introspection per token at a time (concurrent requests with it wait)
        self._flights: "SingleFlight[bytes, Claims]" = SingleFlight()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._refusal_logged = False
        self._bad_entry_logged = False
        self._cache_down_logged = False
        # Counters for tests and benchmarks (plain ints; approximate under
        # threads, exact where tests count them from one thread).
        self.calls = 0
        self.in_flight = 0
        self.max_seen_in_flight = 0
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Introspector(issuer={self.issuer!r}, client_id={self.client_id!r}, "
                f"auth_method={self.auth_method!r}, shared_cache={self._shared!r})")

    # --- endpoint -----------------------------------------------------------
    def endpoint(self) -> str:
        """The introspection endpoint: configured, else from discovery
        (the OpenID document, else the RFC 8414 document of the issuer).
        ``ProviderError`` when the provider names none."""
        if self._endpoint is not None:
            return self._endpoint
        assert self._metadata is not None
        # The OpenID document, else the issuer's RFC 8414 document (oidc_guard.discovery).
        url, where = self._metadata.introspection_endpoint()
        if url is None:
            raise ProviderError(f"no introspection_endpoint: {where}; pass introspection_endpoint=")
        check_url(url, self.allow_http, "introspection_endpoint")
        return str(url)

    def check(self) -> None:
        """Start-up check: the endpoint is known (configured or named by discovery)."""
        self.endpoint()

    # --- public ---------------------------------------------------------------
    def introspect(self, token: Any) -> Claims:
        """Validate a reference token; ``Claims`` or ``InvalidToken`` /
        ``ProviderError``."""
        if type(token) is not str or len(token) > self.max_token_bytes:
            raise InvalidToken(looks_like_token(token, self.max_token_bytes) or "access token is not a string", reason="malformed")
        # Only tokens that passed looks_like_token below ever get an entry,
        # so a hit (same SHA-256, same token) skips the syntax check.
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        entry = self._front.data.get(digest)  # dict get: atomic, no lock needed
        if entry is None:
            reason = looks_like_token(token, self.max_token_bytes)
            if reason is not None:
                raise InvalidToken(reason, reason="malformed")
        else:
            if self._clock() < entry.until:
                if entry.claims is not None:
                    return entry.claims
                raise InvalidToken(entry.reason, reason=entry.code)
            self._front.discard(digest, entry)
        return self._single_flight(token, digest)

    def cached(self, token: str) -> Optional[Claims]:
        """The ``Claims`` of an active result still in the in-process cache,
        else ``None`` (no I/O: Redis and the endpoint are not asked, and an
        inactive or expired entry is left to :meth:`introspect`)."""
        if len(token) > self.max_token_bytes:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        entry = self._front.data.get(digest)
        if entry is not None and entry.claims is not None and self._clock() < entry.until:
            return entry.claims
        return None

    def clear_cache(self) -> None:
        self._front.clear()

    def _single_flight(self, token: str, digest: bytes) -> Claims:
        # Concurrent validations of one token share one call; the others
        # wait for the leader, which finishes within its own deadline (queue
        # wait + one HTTP exchange + a Redis round trip).  (Apart from
        # introspect(): a closure there would make every hit pay for cells.)
        return self._flights.run(digest, lambda: self._resolve(token, digest),
                                 self.queue_timeout + self.http_timeout + 2.0, _too_long)

    def _resolve(self, token: str, digest: bytes) -> Claims:
        key = digest.hex()
        shared = self._shared_flight
        if shared is not None:
            claims = self._from_shared(key, digest)
            if claims is not None:
                return claims
            if self.cache_ttl > 0:
                if shared.claim(key):
                    # Double check: a process that just finished wrote its
                    # result before releasing the lock we now hold.
                    try:
                        claims = self._from_shared(key, digest)
                    except InvalidToken:
                        self._release_call(key)
                        raise
                    if claims is not None:
                        self._release_call(key)
                        return claims
                else:
                    # Another process is introspecting this token right now:
                    # wait a little for its result in the shared cache.
                    claims = shared.wait(key, lambda: self._from_shared(key, digest))
                    if claims is not None:
                        return claims
        try:
            doc = self._call(token)
        except ProviderError:
            self._release_call(key)  # no result is coming: let the others call
            raise
        now = self._clock()
        try:
            claims, until = self._accept(doc, now)
        except InvalidToken as exc:
            self._remember(digest, key, None, exc.description, now + self.inactive_ttl, doc=None, code=exc.reason)
            self._release_call(key)
            raise
        self._remember(digest, key, claims, "", until, doc=doc)
        self._release_call(key)  # the result is in the shared cache now
        return claims

    # --- the response rules (RFC 7662 section 2.2) -----------------------------
    def _accept(self, doc: Mapping[str, Any], now: float) -> Tuple[Claims, float]:
        """Apply every rule; return the Claims and how long it may be cached."""
        if doc.get("active") is not True:  # the JSON value true, nothing else
            if doc.get("active") is False:
                raise InvalidToken("token is not active (introspection: revoked, expired or unknown)", reason="inactive")
            raise InvalidToken("introspection response 'active' is not the JSON value true", reason="inactive")
        token_type = doc.get("token_type")
        if token_type is not None:
            if not isinstance(token_type, str):
                raise InvalidToken("introspection response token_type is not a string", reason="claims")
            if "refresh" in token_type.lower():
                raise InvalidToken("token is a refresh token, not an access token", reason="token_type")
        iss = doc.get("iss")
        if iss is not None and iss != self.issuer:  # RFC 7662 2.2 iss; exact match
            raise InvalidToken(f"issuer {_show(iss, 120)} is not the expected {self.issuer!r}", reason="issuer")
        if self.verify_audience and "aud" not in doc and not self.audience_optional:
            # RFC 7662 2.2: aud is optional; without it the answer does not
            # say the token is meant for this API (see the module doc).
            raise InvalidToken(
                "the introspection answer names no aud, so nothing says the token is meant for this API; "
                "if this provider's endpoint answers active only for tokens meant for the calling API "
                "(IdentityServer's does), set introspection_audience_optional=True "
                "(OIDC_GUARD_INTROSPECTION_AUDIENCE_OPTIONAL); otherwise have the client ask for its "
                "token with an RFC 8707 resource so that it carries aud", reason="audience")
        if self.verify_audience and "aud" in doc:
            aud = doc.get("aud")
            if isinstance(aud, str):
                auds: Tuple[str, ...] = (aud,)
            elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
                auds = tuple(aud)
            else:
                raise InvalidToken("introspection response aud is neither a string nor an array of strings", reason="claims")
            if not self._audience_set.intersection(auds):
                shown = auds[0] if len(auds) == 1 else list(auds)
                raise InvalidToken(f"audience {_show(shown, 120)} not accepted; expected one of "
                                   f"{list(self.audiences)!r}", reason="audience")
        exp = doc.get("exp")
        if exp is not None:
            if not _is_number(exp):
                raise InvalidToken("introspection exp is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
            if now > exp + self.leeway:
                raise InvalidToken("token expired (introspection exp)", reason="expired")
        nbf = doc.get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise InvalidToken("introspection nbf is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
            if now + self.leeway < nbf:
                raise InvalidToken("token not valid yet (introspection nbf)", reason="not_yet_valid")
        iat = doc.get("iat")
        if iat is not None and not _is_number(iat):
            raise InvalidToken("introspection iat is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
        for name in ("sub", "client_id", "username"):
            value = doc.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidToken(f"introspection response {name} is not a string", reason="claims")
        scope = doc.get("scope")
        if scope is not None and not (isinstance(scope, str) or
                                      (isinstance(scope, list) and all(isinstance(s, str) for s in scope))):
            raise InvalidToken("introspection response scope is neither a string nor an array of strings", reason="claims")
        # Claims: everything the provider said (cnf kept for DPoP / mTLS),
        # without the protocol field "active".
        payload = {k: v for k, v in doc.items() if k != "active"}
        until = now + self.cache_ttl
        if exp is not None:
            until = min(until, float(exp))  # an active result never outlives exp
        return Claims(payload, INTROSPECTION_HEADER), until

    # --- caches ----------------------------------------------------------------
    def _remember(self, digest: bytes, key: str, claims: Optional[Claims], reason: str, until: float,
                  doc: Optional[Mapping[str, Any]], code: str = "inactive") -> None:
        now = self._clock()
        if self.cache_ttl <= 0 or until <= now:
            return
        self._front.put(digest, _Entry(claims, reason, until, code))
        if self._shared is not None:
            # "at": when the answer was obtained (this API's Unix clock);
            # readers cap the entry at at + their own TTL (_from_shared).
            body = {"v": _ENTRY_VERSION, "at": now, "until": until,
                    "active": claims is not None, "doc": dict(doc) if doc is not None else None}
            value = json.dumps(body, separators=(",", ":")).encode("utf-8")
            try:
                self._shared.set(key, self._seal(key, value), until - now)
            except CacheUnavailable as exc:
                self._cache_down(exc)

    def _seal(self, key: str, value: bytes) -> bytes:
        mac = hmac.new(self._mac_key, self.cache_prefix.encode() + key.encode() + b"\n" + value,
                       hashlib.sha256).hexdigest()
        return mac.encode("ascii") + b"." + value

    def _from_shared(self, key: str, digest: bytes) -> Optional[Claims]:
        """The shared entry, re-checked; ``None`` to ask the endpoint.
        Raises ``InvalidToken`` for a valid inactive entry."""
        assert self._shared is not None
        try:
            raw = self._shared.get(key)
        except CacheUnavailable as exc:
            self._cache_down(exc)
            return None
        self._cache_down_logged = False
        if raw is None:
            return None
        now = self._clock()
        parsed = self._unseal(key, raw)
        if parsed is None:
            return None
        at, until, active, doc = parsed
        if at > now + self.leeway:
            # Written "in the future" by more than the clock leeway: the
            # writer's clock is wrong, and trusting it would stretch our TTL.
            return None
        # The writer chose `until` with its own TTL; ours may be shorter.  A
        # result is never used longer than our TTL after it was obtained
        # (RFC 7662 section 4: the cache duration is the resource server's
        # choice, bounding how long a revoked token stays accepted).
        until = min(until, at + (self.cache_ttl if active else self.inactive_ttl))
        if until <= now:
            return None
        if not active:
            reason = "token is not active (introspection: revoked, expired or unknown)"
            self._front.put(digest, _Entry(None, reason, min(until, now + self.inactive_ttl)))
            raise InvalidToken(reason, reason="inactive")
        try:
            claims, max_until = self._accept(doc, now)  # max_until: at most exp
        except InvalidToken:
            return None  # the entry says active, the rules say no: ask the endpoint
        self._front.put(digest, _Entry(claims, "", min(until, max_until)))
        return claims

    def _release_call(self, key: str) -> None:
        if self._shared_flight is not None:
            self._shared_flight.release(key)

    def _unseal(self, key: str, raw: bytes) -> Optional[Tuple[float, float, bool, Dict[str, Any]]]:
        try:
            mac, _, value = raw.partition(b".")
            expected = hmac.new(self._mac_key, self.cache_prefix.encode() + key.encode() + b"\n" + value,
                                hashlib.sha256).hexdigest().encode("ascii")
            if not hmac.compare_digest(mac, expected):
                raise ValueError("MAC mismatch")
            body = json.loads(value.decode("utf-8"))
            if not isinstance(body, dict) or body.get("v") != _ENTRY_VERSION:
                raise ValueError("not an entry")
            at, until = body.get("at"), body.get("until")
            active, doc = body.get("active"), body.get("doc")
            if not _is_number(at) or not _is_number(until) or not isinstance(active, bool):
                raise ValueError("not an entry")
            if active and not isinstance(doc, dict):
                raise ValueError("not an entry")
            return float(at), float(until), active, doc if isinstance(doc, dict) else {}  # type: ignore[arg-type]
        except (ValueError, UnicodeDecodeError, RecursionError):
            if not self._bad_entry_logged:
                self._bad_entry_logged = True
                log.warning("oidc_guard: an introspection entry in the shared cache is not one this API "
                            "wrote (bad MAC or shape); ignoring it and asking the endpoint")
            return None

    def _cache_down(self, exc: CacheUnavailable) -> None:
        if not self._cache_down_logged:
            self._cache_down_logged = True
            log.warning("oidc_guard: shared cache unusable (%s); introspection goes on against the "
                        "endpoint until it is back", exc.description)

    # --- the call (RFC 7662 section 2.1) ------------------------------------------
    def _call(self, token: str) -> Mapping[str, Any]:
        url = self.endpoint()
        if not self._slots.acquire(timeout=self.queue_timeout):
            raise ProviderError(
                f"too many introspection calls in flight (limit {self.max_in_flight}); try again",
                retry_after=1,
            )
        with self._count_lock:
            self.calls += 1
            self.in_flight += 1
            if self.in_flight > self.max_seen_in_flight:
                self.max_seen_in_flight = self.in_flight
        try:
            return self._post(url, token)
        finally:
            with self._count_lock:
                self.in_flight -= 1
            self._slots.release()

    def _post(self, url: str, token: str) -> Mapping[str, Any]:
        form: Dict[str, str] = {"token": token, "token_type_hint": "access_token"}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.auth_method == "client_secret_basic":
            # RFC 6749 section 2.3.1: form-urlencode id and secret, then
            # "id:secret", then base64 (RFC 7617).
            pair = quote_plus(self.client_id) + ":" + quote_plus(self.__secret)
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        else:  # client_secret_post: RFC 6749 section 2.3.1, in the body
            form["client_id"] = self.client_id
            form["client_secret"] = self.__secret
        body = urlencode(form).encode("ascii")
        raw = fetch(url, timeout=self.http_timeout, max_bytes=MAX_RESPONSE_BYTES, allow_http=self.allow_http,
                    what="introspection endpoint", method="POST", body=body, headers=headers, kind="introspection")
        if raw.status in (401, 403):
            # Our credentials, not the token: 503, and say it once.
            message = (f"the introspection endpoint {raw.url} refused this API's credentials "
                       f"(HTTP {raw.status}): check introspection_client_id {self.client_id!r}, "
                       f"introspection_client_secret and introspection_auth_method {self.auth_method!r}")
            if not self._refusal_logged:
                self._refusal_logged = True
                log.warning("oidc_guard: %s", message)
            raise ProviderError(message)
        if raw.status != 200:
            raise ProviderError(f"introspection endpoint {raw.url}: HTTP {raw.status}", retry_after=5)
        doc = decode_json_object(raw, "introspection endpoint")
        self._refusal_logged = False  # a later refusal is news again
        return doc
