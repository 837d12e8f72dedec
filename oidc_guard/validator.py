"""``TokenValidator``: bearer access tokens and ID Tokens for one issuer.

A token is parsed once, its signature verified straight with the key
object of the issuer's JWKS, then its claims are checked.  The order
matters: nothing in a token is believed (or echoed in an error) before its
signature is known to be the issuer's, except the header fields needed to
pick the key (``alg``, ``kid``).

Specs implemented here:

* RFC 7515 (JWS) compact serialization, section 7.1; ``crit`` (4.1.11).
* RFC 7519 (JWT) section 7.2 validation; registered claims 4.1.
* RFC 8725 (JWT BCP): explicit algorithm allow-list (3.1), no ``none``,
  key type must fit the algorithm, ``typ`` checks (3.11), no keys from the
  token itself (``jwk``, ``jku``, ``x5u``, ``x5c`` are ignored).
* RFC 9068 (JWT access tokens) section 4: ``typ`` ``at+jwt``, iss, aud, exp.
* OpenID Connect Core 1.0 sections 3.1.3.7, 3.2.2.11 and 3.3.2.12: ID Token
  validation (aud/azp, nonce, at_hash, c_hash, auth_time with max_age).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from collections import OrderedDict

from ._b64 import b64url_encode
from ._sharing import StringSharing, check_no_duplicates
from .claims import Claims
from .discovery import IssuerMismatch, ProviderMetadata, looks_like_discovery_url
from .errors import ConfigurationError, InvalidToken, ProviderError
from .http import check_url, fetch_json
from .jwks import HASH_FOR_ALG, SUPPORTED_ALGORITHMS, KeySet, VerifyKey, _show

__all__ = ["TokenValidator", "ConfigurationError"]

MAX_JWKS_BYTES = 512 * 1024

# RFC 7515 section 2 / RFC 4648 section 5: base64url without padding, three
# segments.  One anchored regex checks the alphabet of the whole token at C
# speed (PyJWT does this per character in Python).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_B64URL_ANY = re.compile(r"[A-Za-z0-9_.-]*")

# The same check without the regex engine (measured 0.5 us instead of
# 1.2 us on an 800-character token): an ASCII token from which
# bytes.translate deletes every base64url character must leave exactly the
# two dots, and no segment may be empty (dpop and multi check segments this
# way; _verify_signature folds it into its one translation, _TO_STD_OR_BAD
# below).  _COMPACT_JWS stays the reference (and _shape_error explains a
# failure).
_B64URL_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# base64url -> base64 (RFC 4648 sections 4 and 5), applied once to the whole
# token; "+" and "/" cannot be in it (the alphabet check above), so the
# mapping is one-to-one.  binascii.a2b_base64 then decodes each segment,
# exactly what base64.urlsafe_b64decode does, without its per-call overhead.
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
# Padding for a segment of length n: _PADDING[n % 4] (n % 4 == 1 is not
# base64 at all: _b64decode_std refuses it first).
_PADDING = (b"", b"===", b"==", b"=")
# The two steps above in one pass, as _verify_signature does them: this
# table maps the base64url alphabet to the standard one (_URLSAFE_TO_STD),
# keeps ".", and turns every other byte into "!", which is in neither.  So
# a token whose translation holds no "!" and exactly two dots is exactly
# one that _COMPACT_JWS accepts, empty segments aside (checked after the
# split), and the translation is already what a2b_base64 decodes.
_BAD_BYTE = ord("!")
_TO_STD_OR_BAD = bytes(
    b if b in _B64URL_BYTES or b == ord(".") else _BAD_BYTE for b in range(256)
).translate(_URLSAFE_TO_STD)
# The same for one segment on its own (dpop converts its segments one by
# one): "." is outside a segment's alphabet, so it becomes "!" too, and
# "no '!' in the result" is the whole alphabet check.
_SEGMENT_TO_STD_OR_BAD = _TO_STD_OR_BAD.translate(bytes.maketrans(b".", b"!"))

# Verified-token cache entries share their claim names and string values
# (one str object each instead of one per entry): oidc_guard._sharing.
# The front of the verified-token cache: the most recent entries keyed by
# the token string itself.  A hit there costs one str hash and compare
# (about 0.2 us for 800 characters) instead of SHA-256 plus the LRU under its
# lock (about 1 us); exact string equality, so two different token strings
# never share an entry here either.  At most _FRONT_MAX tokens (whole
# strings, about 1 KB each): cleared when full.  Plain dict operations are
# atomic, so it needs no lock; it only ever holds entries the LRU made.
_FRONT_MAX = 256
# Parsed, checked headers (memo of _verify_signature, see there): bounded.
_HEADER_MEMO_MAX = 64

# RFC 9068 section 2.1 / 4: access tokens are typed "at+jwt"; plain "JWT"
# or no typ is what most providers (IdentityServer v3 among them) send.
# Compared case-insensitively with an optional "application/" prefix
# (RFC 7515 section 4.1.9).
_ACCESS_TYP = frozenset({"at+jwt", "jwt"})
_ID_TOKEN_TYP = frozenset({"jwt"})

# Claims only an ID Token carries (OpenID Connect Core 2: nonce; 3.1.3.6 /
# 3.3.2.11: at_hash, c_hash): with verify_audience=False they are how an ID
# Token presented as an access token is recognised (RFC 9068 section 4).
_ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash")

# Header parameters that would bring keys from the token itself (jwk, jku,
# x5u, x5c) are never read (RFC 8725 section 3.10): keys come only from the
# issuer's JWKS.


# RFC 4648 section 3.5 (canonical encoding): the pad bits of the last
# character must be zero.  Otherwise several strings decode to the same
# bytes, and one signed token would have many spellings (which defeats
# anything keyed on the token string: deny-lists, replay caches, logs).
_sha256 = hashlib.sha256
_a2b_base64 = binascii.a2b_base64
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LAST_BYTE_OF_2 = frozenset(b for i, b in enumerate(_STD_ALPHABET) if i & 0x0F == 0)  # 4 pad bits
_LAST_BYTE_OF_3 = frozenset(b for i, b in enumerate(_STD_ALPHABET) if i & 0x03 == 0)  # 2 pad bits


def _b64decode_std(segment: bytes) -> bytes:
    """Strict decoding of one JWS segment (RFC 7515 section 2) already
    translated to the standard alphabet (_URLSAFE_TO_STD keeps every
    character's index, so the pad bits are the same): a length of 1 mod 4
    is impossible, and the encoding must be canonical (above)."""
    rest = len(segment) & 3
    if rest == 1:
        raise ValueError("impossible base64 length")
    if (rest == 2 and segment[-1] not in _LAST_BYTE_OF_2) or (rest == 3 and segment[-1] not in _LAST_BYTE_OF_3):
        raise ValueError("non-canonical base64url")
    return _a2b_base64(segment + _PADDING[rest])


def _reject_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """``object_pairs_hook``: RFC 7515 section 4 / RFC 7519 section 4 say a
    JSON object with duplicate member names MUST be rejected (or only the
    last kept); parsers disagree, so oidc_guard rejects."""
    obj = dict(pairs)
    if len(obj) != len(pairs):  # the check's own test, inlined: no call when nothing was lost
        check_no_duplicates(pairs, obj)  # (oidc_guard._sharing: shared with the sharing decoder's hook)
    return obj


_json_decoder = json.JSONDecoder(object_pairs_hook=_reject_duplicates)


def _parse_json_object(raw: bytes, what: str, decoder: json.JSONDecoder = _json_decoder) -> Dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        # A JOSE header or payload is one JSON object, as a rule with no
        # whitespace around it: then the decoder's C scanner alone parses it
        # (JSONDecoder.decode adds two regular-expression matches for
        # surrounding whitespace and two Python calls: about 2 us per
        # segment).  Anything else -- leading or trailing whitespace, extra
        # data, a scanner error -- is parsed again by decode(), which accepts
        # and refuses exactly as it always did (same errors, same texts).
        obj: Any = None
        if text[:1] == "{":
            try:
                # scan_once: set by JSONDecoder.__init__ (json.scanner), not in the stubs
                obj, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]
            except StopIteration:
                end = -1
            if end != len(text):
                obj = decoder.decode(text)
        else:
            obj = decoder.decode(text)
    except UnicodeDecodeError:
        raise InvalidToken(f"token {what} is not UTF-8", reason="malformed") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        message = str(exc)
        if message.startswith("duplicate member"):
            raise InvalidToken(f"token {what} has a {message}", reason="malformed") from None
        raise InvalidToken(f"token {what} is not valid JSON", reason="malformed") from None
    except RecursionError:
        raise InvalidToken(f"token {what} is nested too deeply", reason="malformed") from None
    if not isinstance(obj, dict):
        raise InvalidToken(f"token {what} is not a JSON object", reason="malformed")
    return obj


# Header segments already seen to decode to a JSON object with "alg"
# (looks_like_jws): the header of every token signed with one key is the
# same string, so a real JWT's header is decoded here once, not per token.
# Only headers up to _JWS_HEADER_MEMO_LEN characters are remembered, at most
# _JWS_HEADERS_MAX of them (cleared when full).  A pure function's memo: what
# it holds only repeats what decoding would say again.
_JWS_HEADERS: Dict[str, bool] = {}
_JWS_HEADERS_MAX = 256
_JWS_HEADER_MEMO_LEN = 1024


def looks_like_jws(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS in the compact serialization
    (RFC 7515 section 7.1): three base64url segments (RFC 4648 section 5,
    no padding), the first of which decodes to a JSON object with an
    ``alg`` member (RFC 7515 section 4.1.1).  Nothing is verified: this only
    decides where a token goes in validation_mode "both" (and which member
    of a MultiIssuerValidator gets it).  Everything else -- no dot, one dot,
    or three dotted segments that are not a JOSE header such as the RFC 7662
    / RFC 9449 example token ``mF_9.B5f-4.1JqM`` -- is a reference token for
    the introspection endpoint.  Empty payload or signature segments still
    have the shape: the local path then refuses them in plain words (an
    unsigned token)."""
    first = token.find(".")
    if first <= 0 or token.count(".") != 2 or not token.isascii():
        return False
    # the alphabet of all three segments at once (dots kept, every byte
    # outside base64url becomes "!": _TO_STD_OR_BAD)
    if b"!" in token.encode("ascii").translate(_TO_STD_OR_BAD):
        return False
    head = token[:first]
    if head in _JWS_HEADERS:
        return True
    try:
        header = json.loads(_b64decode_std(head.encode("ascii").translate(_URLSAFE_TO_STD)).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError / JSONDecodeError are ValueErrors
        return False
    if not isinstance(header, dict) or "alg" not in header:
        return False
    if len(head) <= _JWS_HEADER_MEMO_LEN:
        if len(_JWS_HEADERS) >= _JWS_HEADERS_MAX:
            _JWS_HEADERS.clear()
        _JWS_HEADERS[head] = True
    return True


# NumericDate (RFC 7519 section 2) values oidc_guard accepts: finite and
# within what datetime can represent (years 1-9999).  Python's json accepts
# NaN and Infinity; a signed token carrying them is refused, not crashed on.
_MIN_TIME = -62135596800.0
_MAX_TIME = 253402300799.0


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and _MIN_TIME <= value <= _MAX_TIME)  # also false for NaN and +-inf


def _token_text(token: Any, what: str, max_bytes: int) -> str:
    """The token as a non-empty str within ``max_bytes``, else InvalidToken.
    The size limit comes first, before anything is decoded; bytes must be
    ASCII.  Shared by TokenValidator and MultiIssuerValidator (which must
    refuse exactly what a member would, before choosing one)."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken(f"{what} is not ASCII", reason="malformed") from None
    if not isinstance(token, str):
        raise InvalidToken(f"{what} must be a string, not {type(token).__name__}", reason="malformed")
    if not token:
        raise InvalidToken(f"{what} is empty", reason="malformed")
    if len(token) > max_bytes:
        raise InvalidToken(f"{what} is {len(token)} bytes; the limit is {max_bytes}", reason="malformed")
    return token


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


class TokenValidator:
    """Validates access tokens and ID Tokens issued by one OpenID Provider.

    Parameters (all keyword-only but ``issuer``):

    issuer
        The issuer identifier, exactly as the provider writes it in ``iss``.
        Discovery is fetched from ``issuer + /.well-known/openid-configuration``.
    audience
        The identifier(s) of this API (str or list).  A token is accepted
        only when its ``aud`` contains one of them (RFC 7519 4.1.3).
        Required; ``None`` is allowed only with ``verify_audience=False``.
    algorithms
        Allowed JWS algorithms; a subset of RS256/384/512, PS256/384/512,
        ES256/384/512, EdDSA.  ``none`` and HS* are refused at construction.
    leeway
        Seconds of clock skew tolerated for exp, nbf and iat (default 60).
    verify_audience
        ``False`` turns the audience check off.  Only for providers that
        cannot mint audience-restricted tokens; tokens for other APIs of the
        same issuer are then accepted too, and so would be the issuer's ID
        Tokens: the audience is what tells an access token for this API from
        an ID Token for a client (RFC 9068 section 4; RFC 8725 section 3.11
        on telling token kinds apart).  In this mode a token carrying an
        ID-Token-only claim (``nonce``, ``at_hash``, ``c_hash``, OpenID
        Connect Core 2 and 3.3.2.11) is therefore refused, and a ``typ``
        other than ``at+jwt``/``JWT`` is refused in every mode; an ID Token
        without any of those claims (code flow without nonce) is still
        indistinguishable from an access token: prefer audience-restricted
        tokens.
    http_timeout
        Seconds for each discovery/JWKS request (default 5).
    allow_http
        Allow plain-http issuer and jwks_uri on non-loopback hosts.  Loopback
        (127.0.0.0/8, ::1, localhost) is always allowed.
    jwks_cooldown
        Minimum seconds between JWKS refetches caused by unknown ``kid``
        values (default 30).
    cache_size
        Number of verified access tokens remembered (default 10000; 0 turns
        the cache off).  An entry never outlives its token's ``exp`` and is
        dropped when its key leaves the JWKS.
    max_token_bytes
        Tokens longer than this are rejected before any parsing (default
        16 KiB).
    jwks_uri
        Use this JWKS URL instead of discovery (same scheme rules).
    introspection_client_id, introspection_client_secret
        This API's credentials at the provider's RFC 7662 introspection
        endpoint, for reference (opaque) access tokens.  The secret is never
        shown in a repr, a log line or an error.
    introspection_endpoint
        Default: the discovery document's ``introspection_endpoint``.
    introspection_auth_method
        ``"client_secret_basic"`` (default) or ``"client_secret_post"``.
    validation_mode
        ``"local"``: JWTs only (the default without introspection
        credentials); ``"both"``: a token with the shape of a compact JWS
        (three base64url segments, the first a JSON object with ``alg``) is
        validated locally, any other -- dotted or not, such as RFC 7662's
        example ``mF_9.B5f-4.1JqM`` -- is introspected (the default with
        credentials; IdentityServer3.AccessTokenValidation's
        ``ValidationMode.Both``); ``"introspection"``: every token is
        introspected.
    introspection_cache_ttl
        Seconds an introspection result is reused (default 60; 0 = off).
        An active result never outlives the token's ``exp``; an inactive one
        is kept ``min(ttl, 10)`` seconds.  A token revoked at the provider
        is therefore still accepted for up to this many seconds.
    shared_cache
        ``None`` (in-process memory) or a Redis URL ``redis://host:port/db``
        or a ``redis.Redis`` client: introspection results (and DPoP replay
        records) shared by every worker and host.  Redis down: validation
        goes on against the endpoint (logged once).
    dpop_accept_evicting_redis
        ``False`` (default): a ``shared_cache`` Redis whose
        ``maxmemory-policy`` evicts keys (``allkeys-*``, ``volatile-*``) is
        not trusted with DPoP replay records, because an evicted record lets
        a captured proof be replayed: :meth:`check` raises
        ``ConfigurationError`` and DPoP requests get 503.  ``True`` accepts
        that risk (logged at WARNING).  Only ``noeviction`` is safe.
    introspection_max_in_flight
        At most this many introspection calls at once (default 4); callers
        over the bound wait up to ``introspection_queue_timeout`` seconds
        (default 1) and then get ``ProviderError`` (503, Retry-After 1).
    introspection_audience_optional
        ``False`` (default): an active introspection answer without ``aud``
        is refused (``InvalidToken`` naming this setting): an endpoint that
        answers for any token of the provider (django-oauth-toolkit, npm
        oidc-provider, for tokens minted without an RFC 8707 ``resource``)
        would otherwise make this API accept every API's tokens.  ``True``
        accepts such answers: only for endpoints that answer active only for
        tokens meant for the calling API (IdentityServer's).  An ``aud``
        that is present is checked either way (unless
        ``verify_audience=False``).
    clock
        Returns the current Unix time; for tests.
    """

    def __init__(
        self,
        issuer: str,
        *,
        audience: Union[str, Sequence[str], None],
        algorithms: Optional[Iterable[str]] = None,
        leeway: float = 60,
        verify_audience: bool = True,
        http_timeout: float = 5,
        allow_http: bool = False,
        jwks_cooldown: float = 30.0,
        cache_size: int = 10000,
        max_token_bytes: int = 16384,
        jwks_uri: Optional[str] = None,
        clock: Callable[[], float] = time.time,
        introspection_client_id: Optional[str] = None,
        introspection_client_secret: Optional[str] = None,
        introspection_endpoint: Optional[str] = None,
        introspection_auth_method: str = "client_secret_basic",
        validation_mode: Optional[str] = None,
        introspection_cache_ttl: float = 60,
        shared_cache: Any = None,
        introspection_max_in_flight: int = 4,
        introspection_queue_timeout: float = 1.0,
        dpop_accept_evicting_redis: bool = False,
        introspection_audience_optional: bool = False,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("issuer must be a non-empty string")
        try:
            check_url(issuer, allow_http, "issuer")
        except ProviderError as exc:
            raise ConfigurationError(exc.description) from None
        if jwks_uri is not None:
            try:
                check_url(jwks_uri, allow_http, "jwks_uri")
            except ProviderError as exc:
                raise ConfigurationError(exc.description) from None

        if isinstance(audience, str):
            audiences: Tuple[str, ...] = (audience,)
        elif audience is None:
            audiences = ()
        else:
            audiences = tuple(audience)
            if not all(isinstance(a, str) and a for a in audiences):
                raise ConfigurationError("audience must be a string or a list of non-empty strings")
        if verify_audience and not audiences:
            raise ConfigurationError(
                "audience is required (the identifier of this API); pass verify_audience=False "
                "only if the provider cannot issue audience-restricted tokens"
            )

        if algorithms is None:
            algs = frozenset(SUPPORTED_ALGORITHMS)
        else:
            if isinstance(algorithms, str):
                algorithms = [algorithms]
            algs = frozenset(algorithms)
            bad = sorted(a for a in algs if a not in SUPPORTED_ALGORITHMS)
            if bad:
                raise ConfigurationError(
                    f"algorithm(s) {bad} not accepted; choose from {list(SUPPORTED_ALGORITHMS)} "
                    "(none and HS* are never accepted by a resource server)"
                )
            if not algs:
                raise ConfigurationError("algorithms must not be empty")
        if leeway < 0:
            raise ConfigurationError("leeway must be >= 0")
        if http_timeout <= 0:
            raise ConfigurationError("http_timeout must be > 0")

        self.issuer = issuer
        self.audiences: Tuple[str, ...] = audiences
        self._audience_set: FrozenSet[str] = frozenset(audiences)
        self.algorithms: FrozenSet[str] = algs
        self.leeway = float(leeway)
        self.verify_audience = verify_audience
        self.http_timeout = float(http_timeout)
        self.allow_http = allow_http
        self.max_token_bytes = int(max_token_bytes)
        self._clock = clock
        self._jwks_uri = jwks_uri

        self.metadata = ProviderMetadata(issuer, http_timeout=self.http_timeout, allow_http=allow_http)
        self.keys = KeySet(
            self._fetch_jwks,
            cooldown=jwks_cooldown,
            # A follower waits for discovery + JWKS of the leader at most.
            wait_timeout=2 * self.http_timeout + 1.0,
            on_change=self._keys_removed,
            name=issuer,
        )
        # The verified-token cache: SHA-256(token) -> Claims, least recently
        # used first.  A C OrderedDict used directly (move_to_end on a hit,
        # popitem(last=False) to evict): one hash table per entry instead of
        # the two of cachetools.LRUCache (its data dict plus its own
        # OrderedDict), about 1 us less per stored token and less memory.
        self._cache_size = int(cache_size)
        self._cache: Optional["OrderedDict[bytes, Claims]"] = OrderedDict() if cache_size > 0 else None
        self._cache_lock = threading.Lock()
        # token string -> cached Claims, for the most recent hits (see _FRONT_MAX)
        self._front: Dict[str, Claims] = {}
        # The payload of a token that will be cached is parsed with
        # _sharing.decoder: one pass that rejects duplicates and shares
        # strings (oidc_guard._sharing).  Strings not yet shared are
        # collected per thread (_sharing.start()) and only join the tables
        # once the signature is verified (_sharing.learn()), so unsigned junk
        # can never fill them.
        self._sharing = StringSharing()
        # (header segment, allowed typ, algorithms) -> (read-only header, alg, kid)
        self._header_memo: Dict[Tuple[bytes, FrozenSet[str], FrozenSet[str]],
                                Tuple[Mapping[str, Any], str, Optional[str]]] = {}
        self._setup_introspection(
            introspection_client_id, introspection_client_secret, introspection_endpoint,
            introspection_auth_method, validation_mode, introspection_cache_ttl, shared_cache,
            introspection_max_in_flight, introspection_queue_timeout, introspection_audience_optional,
        )
        if not isinstance(dpop_accept_evicting_redis, bool):
            raise ConfigurationError("dpop_accept_evicting_redis must be True or False")
        if dpop_accept_evicting_redis and self.shared_cache is not None:
            # The DPoP replay store is a view of this cache (made later by
            # the middleware) and inherits the setting.
            self.shared_cache.accept_evicting_for_replay = True

    def _setup_introspection(self, client_id: Optional[str], client_secret: Optional[str],
                             endpoint: Optional[str], auth_method: str, mode: Optional[str],
                             cache_ttl: float, shared_cache: Any, max_in_flight: int,
                             queue_timeout: float, audience_optional: bool = False) -> None:
        """Reference tokens (RFC 7662, oidc_guard.introspection) and the
        shared cache.  ``introspection_client_id`` and ``validation_mode``
        are public attributes (MultiIssuerValidator reads them)."""
        from .cache import RedisCache, open_cache
        from .introspection import VALIDATION_MODES, Introspector

        if (client_id is None) != (client_secret is None):
            raise ConfigurationError(
                "introspection needs both introspection_client_id and introspection_client_secret"
            )
        if mode is None:
            mode = "both" if client_id is not None else "local"
        if mode not in VALIDATION_MODES:
            raise ConfigurationError(f"validation_mode must be one of {list(VALIDATION_MODES)}, not {mode!r}")
        if mode != "local" and client_id is None:
            raise ConfigurationError(
                f"validation_mode {mode!r} needs introspection_client_id and introspection_client_secret"
            )
        self.validation_mode = mode
        self.introspection_client_id = client_id
        #: the shared cache (a RedisCache) or None; DPoP keeps its replay
        #: records there under its own prefix.
        self.shared_cache: Optional[RedisCache] = None
        if shared_cache is not None:
            opened = open_cache(shared_cache, prefix="")
            if not isinstance(opened, RedisCache):
                raise ConfigurationError("shared_cache must be a redis://host:port/db URL or a redis.Redis client")
            self.shared_cache = opened
        self.introspector: Optional[Introspector] = None
        if client_id is not None and client_secret is not None:
            self.introspector = Introspector(
                issuer=self.issuer, audiences=self.audiences, verify_audience=self.verify_audience,
                leeway=self.leeway, client_id=client_id, client_secret=client_secret,
                metadata=self.metadata, endpoint=endpoint, auth_method=auth_method,
                http_timeout=self.http_timeout, allow_http=self.allow_http, cache_ttl=cache_ttl,
                shared_cache=self.shared_cache, max_in_flight=max_in_flight,
                queue_timeout=queue_timeout, max_token_bytes=self.max_token_bytes, clock=self._clock,
                audience_optional=audience_optional,
            )
        from .userinfo import UserInfoClient

        self._userinfo = UserInfoClient(self, ttl=cache_ttl if cache_ttl > 0 else 0)
        # Which tokens go to the introspection endpoint: none ("local"),
        # those without the shape of a compact JWS ("both", looks_like_jws),
        # all ("introspection").
        self._introspect_all = mode == "introspection"
        self._introspect_opaque = mode == "both"

    def __repr__(self) -> str:
        return f"TokenValidator(issuer={self.issuer!r}, audience={list(self.audiences)!r})"

    # --- key set plumbing -------------------------------------------------------
    def _fetch_jwks(self) -> Tuple[Any, Optional[str]]:
        uri = self._jwks_uri or self.metadata.jwks_uri()
        resp = fetch_json(uri, timeout=self.http_timeout, max_bytes=MAX_JWKS_BYTES,
                          allow_http=self.allow_http, what="JWKS", kind="jwks")
        return resp.json, resp.headers.get("cache-control")

    def _keys_removed(self, fingerprints: FrozenSet[str]) -> None:
        """Drop cached tokens verified by keys that left the JWKS."""
        cache = self._cache
        if cache is None:
            return
        self._front.clear()
        with self._cache_lock:
            stale = [k for k, claims in cache.items() if claims._key_fingerprint in fingerprints]
            for k in stale:
                del cache[k]

    def clear_cache(self) -> None:
        if self._cache is not None:
            self._front.clear()
            with self._cache_lock:
                self._cache.clear()

    # --- start-up check -----------------------------------------------------------
    def check(self) -> None:
        """Fetch discovery and the JWKS now and say exactly what is wrong.

        Returns ``None`` when the provider is usable for this configuration;
        raises ``ConfigurationError`` when the configuration is the likely
        cause (the issuer is a discovery URL, the document names another
        issuer, no published key fits ``algorithms``), and ``ProviderError``
        when the provider cannot be used (unreachable, HTTP error,
        malformed document or JWKS).  Messages name the URLs: they are for
        the operator starting the application, never sent to clients.

        Nothing else changes: requests never call this, and an app that does
        not call it still starts while the provider is down (keys are then
        fetched on first use).  With ``jwks_uri=`` discovery is not needed
        for JWT validation and is fetched only when something else needs it
        (see :meth:`_check_extra`).  With ``shared_cache``, the Redis is
        asked for its ``maxmemory-policy`` too (DPoP replay records must not
        be evicted; see ``dpop_accept_evicting_redis``).
        """
        meant = looks_like_discovery_url(self.issuer)
        if meant is not None:
            raise ConfigurationError(
                f"the issuer looks like a discovery URL: {self.issuer!r}; configure the issuer "
                f"identifier itself, probably {meant!r} (discovery is fetched from issuer + "
                "/.well-known/openid-configuration, OpenID Connect Discovery section 4)"
            )
        document: Optional[Dict[str, Any]] = None
        if self._jwks_uri is None or self._check_needs_discovery():
            try:
                document = self.metadata.fetch_now()
            except IssuerMismatch as exc:
                raise ConfigurationError(exc.description) from None
            except ProviderError as exc:
                raise ProviderError(
                    f"{exc.description} (start-up check: is the issuer {self.issuer!r} right - scheme, host "
                    "and port - and is the provider up?)", retry_after=exc.retry_after,
                ) from None
        self.keys.refresh(strict=True)
        fitting = sorted({alg for alg in self.algorithms for key in self.keys.keys if key.fits(alg)})
        if not fitting:
            published = sorted({key.kty + (f" {key.crv}" if key.crv else "") + (f" ({key.alg})" if key.alg else "")
                                for key in self.keys.keys})
            raise ConfigurationError(
                f"no key of the issuer's JWKS can verify the allowed algorithms {sorted(self.algorithms)}; "
                f"it publishes {', '.join(published)} keys: widen algorithms= or fix the provider's keys"
            )
        self._check_extra(document)
        self._check_shared_cache()

    def _check_shared_cache(self) -> None:
        """The shared cache holds DPoP replay records: its Redis must not
        evict them (RFC 9449 section 11.1).  Reads the maxmemory-policy now."""
        if self.shared_cache is None:
            return
        from .cache import CacheUnavailable

        try:
            problem = self.shared_cache.replay_problem(fresh=True)
        except CacheUnavailable as exc:
            raise ProviderError(
                f"{exc.description} (start-up check: shared_cache holds introspection results and DPoP "
                "replay records; is the Redis URL right and is Redis up?)", retry_after=exc.retry_after,
            ) from None
        if problem is not None:
            raise ConfigurationError(problem)

    def _check_needs_discovery(self) -> bool:
        """True when :meth:`check` must fetch discovery even with an
        explicit ``jwks_uri`` (for example, to find an introspection
        endpoint).  A hook for the features built on the validator."""
        intro = self.introspector
        return intro is not None and self.validation_mode != "local" and intro._endpoint is None

    def _check_extra(self, document: Optional[Dict[str, Any]]) -> None:
        """More start-up checks on the discovery ``document`` (None when it
        was not fetched), run last by :meth:`check`; raise
        ConfigurationError or ProviderError.  For example: the introspection
        endpoint is named when introspection is configured."""
        intro = self.introspector
        if intro is not None and self.validation_mode != "local" and intro._endpoint is None:
            # The OpenID document, else the issuer's RFC 8414 document (fetched now).
            try:
                url, where = self.metadata.introspection_endpoint(fresh=True)
            except IssuerMismatch as exc:
                raise ConfigurationError(exc.description) from None
            if url is None:
                raise ConfigurationError(
                    f"introspection is configured (validation_mode {self.validation_mode!r}) but no "
                    f"introspection_endpoint is named: {where}; pass introspection_endpoint="
                )
            try:
                check_url(url, self.allow_http, "introspection_endpoint")
            except ProviderError as exc:
                raise ConfigurationError(exc.description) from None

    # --- public API ---------------------------------------------------------------
    def validate_access_token(self, token: Any) -> Claims:
        """Validate a bearer access token; return its ``Claims``.

        Raises ``InvalidToken`` (the token's fault) or ``ProviderError``
        (the provider's discovery/JWKS cannot be used).

        Reference tokens (validation_mode "both": every token without the
        shape of a compact JWS, ``oidc_guard.validator.looks_like_jws``; "introspection":
        every token) go to the RFC 7662 endpoint; in "local" a token that is
        not a JWS is refused here and nothing is sent anywhere.
        """
        # "both": only a token with the shape of a compact JWS is validated
        # here; any other (dotted or not) is a reference token.  A token in
        # the front cache was validated here before, so it has that shape:
        # a cache hit costs no shape check.  An oversized token goes to the
        # introspector, which refuses it before sending anything.
        if self._introspect_all or (self._introspect_opaque and type(token) is str
                                    and token not in self._front
                                    and (len(token) > self.max_token_bytes or not looks_like_jws(token))):
            assert self.introspector is not None
            return self.introspector.introspect(token)
        cache = self._cache
        if cache is None or type(token) is not str:
            return self._validate_access(token)[0]
        # A cache entry is the Claims itself: its payload has the exp/nbf to
        # re-check and its _key_fingerprint says which key verified it (no
        # entry object of its own: 64 bytes less per entry).
        front = self._front
        claims = front.get(token)
        digest = None
        if claims is None:
            # The cache key is a SHA-256 of the whole token: two different
            # token strings never share an entry, and memory per entry stays
            # small.
            digest = _sha256(token.encode("utf-8", "surrogatepass")).digest()
            with self._cache_lock:
                claims = cache.get(digest)
                if claims is not None:
                    cache.move_to_end(digest)  # least recently used goes first
            if claims is not None:
                if len(front) >= _FRONT_MAX:
                    front.clear()
                front[token] = claims
        if claims is not None:
            # A hit costs the look-up plus the exp/nbf checks of the cold path
            # (same expressions, same leeway, on the verified payload, which
            # a Claims never changes) and "is the key still in the JWKS";
            # everything else was checked when the entry was made.
            payload = claims._payload
            nbf = payload.get("nbf")
            now = self._clock()
            leeway = self.leeway
            if not now > payload["exp"] + leeway and (nbf is None or not now + leeway < nbf) \
                    and claims._key_fingerprint in self.keys.live:
                return claims
            front.pop(token, None)
            if digest is None:
                digest = _sha256(token.encode("utf-8", "surrogatepass")).digest()
            with self._cache_lock:
                cache.pop(digest, None)
        claims, key, _nbf, _exp = self._validate_access(token, share=True)
        claims._key_fingerprint = key.fingerprint
        if digest is None:
            digest = _sha256(token.encode("utf-8", "surrogatepass")).digest()
        with self._cache_lock:
            cache[digest] = claims
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return claims

    def userinfo(self, access_token: Any, claims: Optional[Claims] = None) -> Mapping[str, Any]:
        """The user's profile from the provider's UserInfo endpoint (OpenID
        Connect Core 5.3), as a read-only mapping; see oidc_guard.userinfo.

        The token is validated first (``claims``: its result, when the
        caller already has it).  ``InvalidToken`` when the endpoint answers
        401 or the profile's ``sub`` is missing or not the token's;
        ``ProviderError`` when it is unreachable or answers 5xx.  Cached per
        token (SHA-256) within the token's lifetime.
        """
        return self._userinfo.get(access_token, claims)

    def validate_id_token(
        self,
        token: Any,
        client_id: str,
        nonce: Optional[str] = None,
        access_token: Optional[str] = None,
        code: Optional[str] = None,
        max_age: Optional[float] = None,
    ) -> Claims:
        """Validate an ID Token for the client ``client_id``.

        OpenID Connect Core 3.1.3.7 (code flow), 3.2.2.11 (implicit) and
        3.3.2.12 (hybrid):

        * iss equals the issuer; aud contains ``client_id``; with several
          audiences, ``azp`` must be present; when ``azp`` is present it must
          equal ``client_id``;
        * exp in the future, iat present (both with leeway), sub present;
        * ``nonce``: when given, the token's nonce must equal it;
        * ``access_token``: when given, ``at_hash`` must be present and equal
          the left half of the hash of the access token (hash of the alg);
        * ``code``: likewise for ``c_hash``;
        * ``max_age``: ``auth_time`` must be present and not older than
          ``max_age`` seconds (plus leeway).
        """
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("client_id is required to validate an ID Token")
        header, payload, key, alg = self._verify_signature(token, _ID_TOKEN_TYP, "ID Token")
        now = self._clock()
        self._check_issuer(payload)
        self._check_times(payload, now, iat_required=True)

        aud = payload.get("aud")
        auds = self._audience_list(aud)
        if client_id not in auds:
            raise InvalidToken(f"ID Token audience {_show(list(auds), 120)} does not contain client_id {client_id!r}", reason="audience")
        azp = payload.get("azp")
        if len(auds) > 1 and azp is None:
            raise InvalidToken("ID Token has several audiences but no azp claim", reason="authorized_party")
        if azp is not None and azp != client_id:
            raise InvalidToken(f"ID Token azp {_show(azp)} is not client_id {client_id!r}", reason="authorized_party")

        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("ID Token has no sub claim", reason="claims")

        if nonce is not None:
            got = payload.get("nonce")
            if not isinstance(got, str):
                raise InvalidToken("ID Token has no nonce, but one was sent in the request", reason="nonce")
            if not hmac.compare_digest(got.encode(), nonce.encode()):
                raise InvalidToken("ID Token nonce does not match the nonce sent in the request", reason="nonce")

        if access_token is not None:
            self._check_half_hash(payload, "at_hash", access_token, alg)
        if code is not None:
            self._check_half_hash(payload, "c_hash", code, alg)

        if max_age is not None:
            auth_time = payload.get("auth_time")
            if not _is_number(auth_time):
                raise InvalidToken("ID Token has no auth_time, but max_age was requested", reason="auth_time")
            assert auth_time is not None  # _is_number says it is a finite number
            if now > auth_time + max_age + self.leeway:
                raise InvalidToken(
                    f"authentication at {_iso(auth_time)} is older than max_age {max_age:g} s"
                , reason="auth_time")
        return Claims(payload, header)

    # --- the pipeline ------------------------------------------------------------
    def _validate_access(self, token: Any, share: bool = False) -> Tuple[Claims, VerifyKey, Optional[float], float]:
        header, payload, key, _alg = self._verify_signature(token, _ACCESS_TYP, "access token", share)
        now = self._clock()
        self._check_issuer(payload)
        exp, nbf = self._check_times(payload, now, iat_required=False)
        if self.verify_audience:
            auds = self._audience_list(payload.get("aud"))
            if not self._audience_set.intersection(auds):
                if not auds:
                    raise InvalidToken("token has no aud claim; expected one of "
                                       f"{list(self.audiences)!r}", reason="audience")
                shown = auds[0] if len(auds) == 1 else list(auds)
                raise InvalidToken(f"audience {_show(shown, 120)} not accepted; expected one of "
                                   f"{list(self.audiences)!r}", reason="audience")
        else:
            # No audience check: nothing else would stop the issuer's ID
            # Tokens (aud = a client id) being used as access tokens.
            for name in _ID_TOKEN_ONLY_CLAIMS:
                if name in payload:
                    raise InvalidToken(f"this looks like an ID Token (it has {name!r}); an ID Token is not an "
                                       "access token (RFC 9068 section 4)", reason="token_type")
        # the payload dict was made for this Claims alone: no copy
        return Claims(payload, header, _adopt=True), key, nbf, exp

    def _verify_signature(self, token: Any, allowed_typ: FrozenSet[str], what: str, share: bool = False
                          ) -> Tuple[Mapping[str, Any], Dict[str, Any], VerifyKey, str]:
        """Parse the compact JWS once and verify its signature.

        ``share``: the Claims goes into the cache; parse the payload with
        the sharing decoder to keep its memory small (oidc_guard._sharing).

        Returns (header, payload, key, alg).  Everything raised is
        InvalidToken or ProviderError; the token is never echoed.
        """
        if type(token) is not str or not 0 < len(token) <= self.max_token_bytes:
            token = _token_text(token, what, self.max_token_bytes)  # refuses, or decodes bytes
        # Same acceptance as _COMPACT_JWS.fullmatch(token) (see _TO_STD_OR_BAD).
        if not token.isascii():
            raise InvalidToken(self._shape_error(token, what), reason="malformed")
        raw = token.encode("ascii")
        std = raw.translate(_TO_STD_OR_BAD)
        if b"!" in std or std.count(b".") != 2:
            raise InvalidToken(self._shape_error(token, what), reason="malformed")
        h_seg, p_seg, s_seg = std.split(b".")
        if not (h_seg and p_seg and s_seg):
            raise InvalidToken(self._shape_error(token, what), reason="malformed")

        # The header of every token signed with one key is the same string,
        # so its parse and checks below are remembered per (segment, allowed
        # typ, allowed algorithms -- a public attribute someone may narrow
        # later): only headers that passed every check, and the result
        # depends on nothing else.  The key is still looked up in the
        # current JWKS and the signature still verified for every token.
        memo_key = (h_seg, allowed_typ, self.algorithms)
        memo = self._header_memo.get(memo_key)
        try:
            header_raw = _b64decode_std(h_seg) if memo is None else b""
            payload_raw = _b64decode_std(p_seg)
            signature = _b64decode_std(s_seg)
        except (binascii.Error, ValueError):
            raise InvalidToken(f"{what} has a segment that is not valid base64url", reason="malformed") from None
        if memo is not None:
            header, alg, kid = memo
        else:
            parsed = _parse_json_object(header_raw, "header")
            alg, kid = self._check_header(parsed, allowed_typ, what)
            # Read-only, so the Claims of all tokens with this header can
            # share it (Claims keeps a MappingProxyType without copying).
            header = MappingProxyType(parsed)
            if len(self._header_memo) >= _HEADER_MEMO_MAX:
                self._header_memo.clear()
            self._header_memo[memo_key] = (header, alg, kid)

        # The payload is parsed before the key lookup (it is parsed once in
        # any case) for one reason only: a token naming another issuer is
        # refused here, in plain words, with no JWKS refetch and no network
        # request at all (its kid is of course not in our JWKS; looking it up
        # would cost an unknown-kid refetch per token); docs/multi-issuer.md,
        # "How the issuer is chosen".  This unverified iss can only cause
        # a rejection, never an acceptance: the signature is still verified
        # below with our issuer's key, and the verified iss is checked again
        # (_check_issuer).  A missing iss goes the normal path.
        if share:
            sharing = self._sharing
            misses = sharing.start()
            payload = _parse_json_object(payload_raw, "payload", sharing.decoder)
        else:
            payload = _parse_json_object(payload_raw, "payload")
        iss = payload.get("iss")
        if iss is not None and iss != self.issuer:  # exact string, RFC 7519 4.1.1
            raise InvalidToken(self._foreign_issuer(iss, what), reason="issuer")
        key = self.keys.get(kid, alg)
        signing_input = raw[: len(h_seg) + 1 + len(p_seg)]
        if not key.verify(alg, signing_input, signature):
            raise InvalidToken(f"{what} signature is invalid (kid {_show(kid)}, alg {alg})", reason="signature")
        if share and misses:  # verified: what it had that was not shared yet may be
            sharing.learn(misses)
        return header, payload, key, alg

    def _foreign_issuer(self, iss: Any, what: str) -> str:
        """Why a token whose (unverified) iss is not ours is refused.  The
        value is attacker-controlled: repr-quoted and bounded by _show; the
        token itself is never echoed."""
        reason = f"{what} issued by {_show(iss, 120)}, not by the trusted issuer {self.issuer!r}"
        if isinstance(iss, str) and iss.rstrip("/") == self.issuer.rstrip("/"):
            # The usual misconfiguration: say so (TokenValidator.check()
            # explains it at start-up).
            reason += " (they differ only in a trailing slash: is the configured issuer exact?)"
        return reason

    def _check_header(self, header: Dict[str, Any], allowed_typ: FrozenSet[str], what: str
                      ) -> Tuple[str, Optional[str]]:
        """The JOSE header rules; returns (alg, kid)."""

        alg = header.get("alg")
        if not isinstance(alg, str):
            raise InvalidToken(f"{what} header has no alg", reason="algorithm")
        if alg not in self.algorithms:
            if alg.lower() == "none":
                raise InvalidToken(f"{what} is unsigned (alg {_show(alg)}); unsigned tokens are never accepted", reason="algorithm")
            if alg.upper().startswith("HS"):
                raise InvalidToken(f"{what} uses symmetric alg {_show(alg)}; only asymmetric algorithms are accepted", reason="algorithm")
            raise InvalidToken(f"{what} alg {_show(alg)} is not allowed; allowed: {sorted(self.algorithms)}", reason="algorithm")
        # RFC 7515 4.1.11: a crit we do not understand MUST make the JWS
        # invalid.  oidc_guard implements no extension, so any crit fails.
        if "crit" in header:
            raise InvalidToken(f"{what} has critical header extension(s) {_show(header['crit'])} that are not supported", reason="malformed")
        # RFC 7515 4.1.10 / RFC 8725 2.8: nested JWTs are not accepted.
        cty = header.get("cty")
        if isinstance(cty, str) and cty.lower() in ("jwt", "application/jwt"):
            raise InvalidToken(f"{what} is a nested JWT (cty {_show(cty)}); nested tokens are not accepted", reason="token_type")
        typ = header.get("typ")
        if typ is not None:
            t = typ.lower() if isinstance(typ, str) else None
            if t is not None and t.startswith("application/"):
                t = t[len("application/"):]
            if t not in allowed_typ:
                raise InvalidToken(f"{what} has typ {_show(typ)}; expected {sorted(allowed_typ)} or none", reason="token_type")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken(f"{what} kid is not a string", reason="malformed")
        # jwk / jku / x5u / x5c are deliberately never read (see module doc).
        return alg, kid

    @staticmethod
    def _shape_error(token: str, what: str) -> str:
        parts = token.count(".") + 1
        if parts == 5:
            return f"{what} is an encrypted JWT (JWE); only signed tokens (JWS) are accepted"
        if parts != 3:
            return f"{what} has {parts} segment(s); a JWS has 3"
        if _B64URL_ANY.fullmatch(token) is None:
            return f"{what} contains characters outside the base64url alphabet"
        if token.endswith("."):
            return f"{what} has no signature; unsigned tokens (alg none) are never accepted"
        return f"{what} has an empty segment"

    def _check_issuer(self, payload: Dict[str, Any]) -> None:
        iss = payload.get("iss")
        if iss is None:
            raise InvalidToken("token has no iss claim", reason="issuer")
        if iss != self.issuer:  # RFC 7519 4.1.1 / OIDC Core 3.1.3.7 step 2: exact match
            raise InvalidToken(f"issuer {_show(iss, 120)} is not the expected {self.issuer!r}", reason="issuer")

    def _check_times(self, payload: Dict[str, Any], now: float, *, iat_required: bool
                     ) -> Tuple[float, Optional[float]]:
        """Check ``exp`` (always required: RFC 9068 section 2.2 for access
        tokens, OpenID Connect Core section 2 for ID Tokens), ``nbf`` and
        ``iat``; returns (exp, nbf), both checked NumericDates."""
        leeway = self.leeway
        exp = payload.get("exp")
        if exp is None:
            raise InvalidToken("token has no exp claim", reason="claims")
        if not _is_number(exp):
            raise InvalidToken("token exp is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
        if now > exp + leeway:  # RFC 7519 4.1.4
            raise InvalidToken(f"token expired at {_iso(exp)}", reason="expired")
        nbf = payload.get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise InvalidToken("token nbf is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
            if now + leeway < nbf:  # RFC 7519 4.1.5
                raise InvalidToken(f"token not valid before {_iso(nbf)}", reason="not_yet_valid")
        iat = payload.get("iat")
        if iat is None:
            if iat_required:
                raise InvalidToken("token has no iat claim", reason="claims")
        elif not _is_number(iat):
            raise InvalidToken("token iat is not a number in the NumericDate range (RFC 7519 section 2)", reason="claims")
        elif iat > now + leeway:
            raise InvalidToken(f"token issued in the future ({_iso(iat)})", reason="not_yet_valid")
        return exp, nbf

    @staticmethod
    def _audience_list(aud: Any) -> Tuple[str, ...]:
        if isinstance(aud, str):
            return (aud,)
        if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            return tuple(aud)
        if aud is None:
            return ()
        raise InvalidToken("token aud is neither a string nor an array of strings", reason="claims")

    @staticmethod
    def _check_half_hash(payload: Dict[str, Any], claim: str, value: str, alg: str) -> None:
        """OIDC Core 3.1.3.6 (at_hash) / 3.3.2.11 (c_hash): base64url of the
        left-most half of the hash of the ASCII octets, hash per alg."""
        got = payload.get(claim)
        if not isinstance(got, str):
            raise InvalidToken(f"ID Token has no {claim}, but the "
                               f"{'access token' if claim == 'at_hash' else 'code'} must be bound to it", reason="token_hash")
        digest = HASH_FOR_ALG[alg](value.encode("ascii", "replace")).digest()
        expected = b64url_encode(digest[: len(digest) // 2])
        if not hmac.compare_digest(got.encode("ascii", "replace"), expected.encode("ascii")):
            raise InvalidToken(f"ID Token {claim} does not match the "
                               f"{'access token' if claim == 'at_hash' else 'code'}", reason="token_hash")
