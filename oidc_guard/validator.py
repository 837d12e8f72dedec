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

The rules live in shared modules: oidc_guard._jws (split, base64url, strict
JSON, JOSE header), oidc_guard._checks (iss, aud, exp/nbf/iat),
oidc_guard._idtoken (the ID Token rules), oidc_guard._tokencache (the
verified-token cache) and oidc_guard._startup (``TokenValidator.check()``).
"""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import Any, Callable, Dict, FrozenSet, Iterable, Mapping, Optional, Sequence, Tuple, Union

from ._bounded import Memo
from ._checks import audience_list, check_audience, check_issuer, check_times
from ._idtoken import ID_TOKEN_ONLY_CLAIMS, check_id_token
from ._jws import (COMPACT_JWS, SEGMENT_TO_STD_OR_BAD, URLSAFE_TO_STD, b64decode_std, check_header, foreign_issuer,
                   is_numeric_date, json_decoder, looks_like_jws, parse_json_object, shape_error, show, split,
                   token_text)
from ._options import allowed_algorithms, configured_audiences, configured_url
from ._sharing import StringSharing
from ._startup import check_introspection_endpoint, run_startup_check
from ._tokencache import VerifiedTokenCache, token_digest
from .claims import Claims
from .discovery import ProviderMetadata
from .errors import ConfigurationError, InvalidToken
from .http import fetch_json
from .jwks import KeySet, VerifyKey

__all__ = ["TokenValidator", "ConfigurationError", "looks_like_jws"]

MAX_JWKS_BYTES = 512 * 1024

# Names other modules imported from here before the compact-JWS parsing
# moved to oidc_guard._jws (multi, introspection, tests): new code imports
# them from _jws (SEGMENT_TO_STD_OR_BAD, b64decode_std, ...).
_COMPACT_JWS = COMPACT_JWS
_URLSAFE_TO_STD = URLSAFE_TO_STD
_SEGMENT_TO_STD_OR_BAD = SEGMENT_TO_STD_OR_BAD
_b64decode_std = b64decode_std
_json_decoder = json_decoder
_parse_json_object = parse_json_object
_is_number = is_numeric_date
_token_text = token_text

# The front of the verified-token cache (oidc_guard._tokencache): at most
# _FRONT_MAX token strings, read when a TokenValidator is made.
_FRONT_MAX = 256
# Parsed, checked headers (memo of _verify_signature, see there): bounded.
_HEADER_MEMO_MAX = 64

# RFC 9068 section 2.1 / 4: access tokens are typed "at+jwt"; plain "JWT"
# or no typ is what most providers (IdentityServer v3 among them) send.
# Compared case-insensitively with an optional "application/" prefix
# (RFC 7515 section 4.1.9).
_ACCESS_TYP = frozenset({"at+jwt", "jwt"})
_ID_TOKEN_TYP = frozenset({"jwt"})


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
        configured_url(issuer, allow_http, "issuer")
        if jwks_uri is not None:
            configured_url(jwks_uri, allow_http, "jwks_uri")
        audiences = configured_audiences(audience, verify_audience)
        algs = allowed_algorithms(algorithms)
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
        # The verified-token cache (oidc_guard._tokencache): SHA-256(token)
        # -> Claims, least recently used first, and its front table (token
        # string -> Claims of the most recent hits).  _cache and _front are
        # its two tables (the hit path below reads _front directly).
        self._cache_size = int(cache_size)
        self._tokens: Optional[VerifiedTokenCache] = (
            VerifiedTokenCache(self._cache_size, _FRONT_MAX) if cache_size > 0 else None)
        self._cache = self._tokens.lru if self._tokens is not None else None
        # the front Memo's plain dict: the hit path reads it with one C call
        self._front: Dict[str, Claims] = self._tokens.front.data if self._tokens is not None else {}
        # The payload of a token that will be cached is parsed with
        # _sharing.decoder: one pass that rejects duplicates and shares
        # strings (oidc_guard._sharing).  Strings not yet shared are
        # collected per thread (_sharing.start()) and only join the tables
        # once the signature is verified (_sharing.learn()), so unsigned junk
        # can never fill them.
        self._sharing = StringSharing()
        # (header segment, allowed typ, algorithms) -> (read-only header, alg, kid)
        # (a Memo: cleared when it holds _HEADER_MEMO_MAX entries)
        self._header_memo: Memo[Tuple[bytes, FrozenSet[str], FrozenSet[str]],
                                Tuple[Mapping[str, Any], str, Optional[str]]] = Memo(_HEADER_MEMO_MAX)
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
        if self._tokens is not None:
            self._tokens.remove_keys(fingerprints)

    def clear_cache(self) -> None:
        if self._tokens is not None:
            self._tokens.clear()

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
        run_startup_check(self)

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
        check_introspection_endpoint(self)

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
        tokens = self._tokens
        if tokens is None or type(token) is not str:
            return self._validate_access(token)[0]
        # A cache entry is the Claims itself (oidc_guard._tokencache): its
        # payload has the exp/nbf to re-check and its _key_fingerprint says
        # which key verified it.
        front = self._front
        claims = front.get(token)
        digest = None
        if claims is None:
            claims, digest = tokens.lookup(token)
        if claims is not None:
            # A hit costs the look-up plus the exp/nbf checks of the cold path
            # (the expressions of _checks.check_times, same leeway, on the
            # verified payload, which a Claims never changes) and "is the key
            # still in the JWKS"; everything else was checked when the entry
            # was made.  Inline: a call here would cost more than the rest.
            payload = claims._payload
            nbf = payload.get("nbf")
            now = self._clock()
            leeway = self.leeway
            if not now > payload["exp"] + leeway and (nbf is None or not now + leeway < nbf) \
                    and claims._key_fingerprint in self.keys.live:
                return claims
            digest = tokens.drop(token, digest)
        claims, key, _nbf, _exp = self._validate_access(token, share=True)
        claims._key_fingerprint = key.fingerprint
        tokens.store(digest if digest is not None else token_digest(token), claims)
        return claims

    def cached_access_token(self, token: Any) -> Optional[Claims]:
        """The ``Claims`` of ``token`` when it can be answered from memory
        alone, with no network or Redis I/O and no signature check: a
        verified-token cache hit that is still within exp/nbf and whose key
        is still in the JWKS (or, for a reference token, an active result of
        the introspector's in-process cache).  ``None`` otherwise -- never a
        refusal: the caller then calls :meth:`validate_access_token`, which
        decides (and may do I/O).  Lets an event loop answer cached tokens
        on the loop and send everything else to a thread
        (``oidc_guard._aio``)."""
        if type(token) is not str:
            return None
        if self._introspect_all or (self._introspect_opaque and token not in self._front
                                    and (len(token) > self.max_token_bytes or not looks_like_jws(token))):
            return self.introspector.cached(token) if self.introspector is not None else None
        tokens = self._tokens
        if tokens is None:
            return None
        claims = self._front.get(token)
        if claims is None:
            claims = tokens.lookup(token)[0]
        if claims is None:
            return None
        # The checks of the hit path of validate_access_token, unchanged.
        payload = claims._payload
        nbf = payload.get("nbf")
        now = self._clock()
        leeway = self.leeway
        if not now > payload["exp"] + leeway and (nbf is None or not now + leeway < nbf) \
                and claims._key_fingerprint in self.keys.live:
            return claims
        return None

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
        check_issuer(payload.get("iss"), self.issuer)
        check_times(payload, now, self.leeway, iat_required=True)
        # aud / azp, sub, nonce, at_hash / c_hash, auth_time (oidc_guard._idtoken)
        check_id_token(payload, alg, client_id, now=now, leeway=self.leeway, nonce=nonce,
                       access_token=access_token, code=code, max_age=max_age)
        return Claims(payload, header)

    # --- the pipeline ------------------------------------------------------------
    def _validate_access(self, token: Any, share: bool = False
                         ) -> Tuple[Claims, VerifyKey, Optional[float], Optional[float]]:
        header, payload, key, _alg = self._verify_signature(token, _ACCESS_TYP, "access token", share)
        now = self._clock()
        check_issuer(payload.get("iss"), self.issuer)
        exp, nbf = check_times(payload, now, self.leeway)
        if self.verify_audience:
            check_audience(audience_list(payload.get("aud")), self._audience_set, self.audiences)
        else:
            # No audience check: nothing else would stop the issuer's ID
            # Tokens (aud = a client id) being used as access tokens.
            for name in ID_TOKEN_ONLY_CLAIMS:
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
            token = token_text(token, what, self.max_token_bytes)  # refuses, or decodes bytes
        # RFC 7515 section 7.1, strict base64url (oidc_guard._jws.split)
        raw, h_seg, p_seg, s_seg = split(token, what)

        # The header of every token signed with one key is the same string,
        # so its parse and checks below are remembered per (segment, allowed
        # typ, allowed algorithms -- a public attribute someone may narrow
        # later): only headers that passed every check, and the result
        # depends on nothing else.  The key is still looked up in the
        # current JWKS and the signature still verified for every token.
        memo_key = (h_seg, allowed_typ, self.algorithms)
        memo = self._header_memo.data.get(memo_key)
        try:
            header_raw = b64decode_std(h_seg) if memo is None else b""
            payload_raw = b64decode_std(p_seg)
            signature = b64decode_std(s_seg)
        except ValueError:  # binascii.Error is a ValueError
            raise InvalidToken(f"{what} has a segment that is not valid base64url", reason="malformed") from None
        if memo is not None:
            header, alg, kid = memo
        else:
            parsed = parse_json_object(header_raw, "header")
            alg, kid = check_header(parsed, self.algorithms, allowed_typ, what)  # jwk/jku/x5u/x5c never read
            # Read-only, so the Claims of all tokens with this header can
            # share it (Claims keeps a MappingProxyType without copying).
            header = MappingProxyType(parsed)
            self._header_memo.put(memo_key, (header, alg, kid))

        # The payload is parsed before the key lookup (it is parsed once in
        # any case) for one reason only: a token naming another issuer is
        # refused here, in plain words, with no JWKS refetch and no network
        # request at all (its kid is of course not in our JWKS; looking it up
        # would cost an unknown-kid refetch per token); docs/multi-issuer.md,
        # "How the issuer is chosen".  This unverified iss can only cause
        # a rejection, never an acceptance: the signature is still verified
        # below with our issuer's key, and the verified iss is checked again
        # (_checks.check_issuer).  A missing iss goes the normal path.
        if share:
            sharing = self._sharing
            misses = sharing.start()
            payload = parse_json_object(payload_raw, "payload", sharing.decoder)
        else:
            payload = parse_json_object(payload_raw, "payload")
        iss = payload.get("iss")
        if iss is not None and iss != self.issuer:  # exact string, RFC 7519 4.1.1
            raise foreign_issuer(iss, self.issuer, what)
        key = self.keys.get(kid, alg)
        signing_input = raw[: len(h_seg) + 1 + len(p_seg)]
        if not key.verify(alg, signing_input, signature):
            raise InvalidToken(f"{what} signature is invalid (kid {show(kid)}, alg {alg})", reason="signature")
        if share and misses:  # verified: what it had that was not shared yet may be
            sharing.learn(misses)
        return header, payload, key, alg

    # multi.py words its shape errors with this (oidc_guard._jws.shape_error).
    _shape_error = staticmethod(shape_error)
