"""``MultiIssuerValidator``: several trusted issuers behind one validator.

Use it during a migration (the old provider and the new one at once) or for
a multi-tenant API (one issuer per tenant).  Each member is a complete
:class:`~oidc_guard.TokenValidator` with its own discovery, keys, caches and
settings (audience, leeway, introspection); this class only *chooses* the
member, it never validates anything itself.

How a member is chosen (the design of Spring Security's
``JwtIssuerAuthenticationManagerResolver`` and auth0's ``mcd`` option):

* A JWT (a token with the shape of a compact JWS: three base64url
  segments, the first a JSON object with ``alg``; the rule of
  ``validation_mode="both"``): its payload is decoded *without* verifying the
  signature, with the same size limit, base64url and JSON rules as the
  validator (RFC 7515 section 7.1, RFC 7519 section 7.2), and its ``iss``
  is looked up by exact string equality (RFC 7519 section 4.1.1; no
  normalisation: "https://idp" and "https://idp/" are different issuers).
  That unverified ``iss`` is used for nothing else: the chosen member then
  verifies the signature with *its* keys and checks ``iss`` again
  (RFC 8725 section 3.8 / OIDC Core 3.1.3.7 step 2).  A missing or untrusted
  ``iss`` is :class:`~oidc_guard.InvalidToken` at once, without a network
  request.
* An opaque (reference) token -- any other, dotted or not, such as RFC
  7662's ``mF_9.B5f-4.1JqM`` -- has no ``iss`` to read: it goes to the one
  member configured for introspection (RFC 7662); with none, it is
  :class:`~oidc_guard.InvalidToken`.

For tenants not known in advance, ``resolver(issuer)`` may return a new
validator (or ``None`` for "not trusted").  It is bounded so that random
``iss`` values cannot make the API build validators or fetch anything:
at most ``max_resolved`` validators are ever created by it, at most
``max_concurrent_resolutions`` calls run at once, issuers it refused are
remembered in a bounded negative cache, concurrent requests for one new
issuer call it once, and an issuer is offered to it only when it is a
plausible issuer URL (https, or http on loopback/``allow_http``).

Only a definite "not trusted" is a 401: the resolver's ``None`` (or its
remembered refusal), an issuer that is not a plausible URL, or no resolver
at all.  When trust cannot be decided now -- the resolver raised, has not
answered within ``resolver_timeout``, every resolution slot is busy with
other new issuers, or ``max_resolved`` validators exist already -- the
answer is :class:`~oidc_guard.ProviderError` (503 with ``Retry-After``):
a 401 would tell a real tenant's client to throw a good token away, and
would let anyone who sends junk issuers turn the bounds against real
tenants.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ._bounded import ExpiringLRU, Memo
from ._flight import SingleFlight
from ._resolver import ResolvingMixin
from .claims import Claims
from .errors import ConfigurationError, InvalidToken, OIDCGuardError, ProviderError
from ._jws import looks_like_jws, token_text, unverified_issuer
from .validator import TokenValidator

__all__ = ["MultiIssuerValidator", "Resolver"]

#: ``resolver(issuer) -> validator or None``; user code.
Resolver = Callable[[str], Optional[Any]]

# The longest iss value that is looked at at all: longer ones are refused
# before any look-up or resolver call (no issuer URL is that long; the
# error then shows the first 120 characters, quoted).
_MAX_ISSUER_CHARS = 2048
# The most recent tokens and the member that took them (exact string key,
# as TokenValidator's front table): a repeated token is routed with one str
# hash and compare instead of a base64 + JSON decode.  Cleared when full.
_FRONT_MAX = 256
# Header segment -> the TokenValidator member that last accepted a token with
# that exact header (the header of every token signed with one key is the
# same string).  A first-seen token is handed to that member straight away:
# TokenValidator refuses a token naming another issuer before any key
# look-up (no network), and then the choice by iss is made after all, so a
# wrong guess costs a second decode on a token that is refused anyway.
# Bounded: cleared when full.
_BY_HEADER_MAX = 64


def _introspects(validator: Any) -> bool:
    """Whether ``validator`` can take an opaque token (RFC 7662).

    A member with introspection credentials (``introspection_client_id``)
    in a mode that introspects (``validation_mode`` "both" or
    "introspection"; the TokenValidator default with credentials is "both").
    A validator without these attributes cannot introspect.
    """
    if not getattr(validator, "introspection_client_id", None):
        return False
    mode = getattr(validator, "validation_mode", "both")
    return mode in ("both", "introspection")


class MultiIssuerValidator(ResolvingMixin):
    """Validate tokens of several issuers, each with its own validator.

    .. code-block:: python

        from oidc_guard import MultiIssuerValidator, TokenValidator
        v = MultiIssuerValidator([
            TokenValidator("https://old-idp", audience="https://old-idp/resources"),
            TokenValidator("https://new-idp", audience="api://contacts"),
        ])
        claims = v.validate_access_token(token)

    It has the methods of :class:`~oidc_guard.TokenValidator` that a
    resource server uses (``validate_access_token``, ``validate_id_token``,
    ``userinfo``, ``check``), so it works wherever one does:
    ``BearerMiddleware(app, v)``, ``OIDCGuard(app, validator=v)``.

    :param validators: the trusted issuers' validators (anything with an
        ``issuer`` str and ``validate_access_token``).  Two with the same
        issuer are a :class:`~oidc_guard.ConfigurationError`: which keys and
        audience would apply would be a guess.  At most one may introspect
        (an opaque token cannot say where it came from).
    :param resolver: optional ``resolver(issuer) -> validator or None`` for
        tenants not known in advance.  Called only for a plausible issuer URL
        (see ``allow_http``) that is not a member, not refused recently and
        while fewer than ``max_resolved`` validators were created; at most
        once at a time per issuer.  The validator it returns must have
        exactly that ``issuer``; ``None`` means "not trusted" and is
        remembered for ``negative_ttl`` seconds.  It must be cheap and must
        not trust an issuer because the token names it: the point of an
        allow-list is that the token does not choose its own judge.  If it
        raises (say, the tenant directory is down), the request gets
        :class:`~oidc_guard.ProviderError` (503 with ``Retry-After``) and the
        error is logged: whether the tenant is trusted is unknown, which is
        the server's trouble, not proof of a bad token (a 401 would make
        clients throw good tokens away); nothing is remembered about the
        issuer, so the tenant works as soon as the directory answers again
        (after ``resolver_backoff``).
    :param max_resolved: the most validators the resolver may create
        (default 100).  Past it, new issuers get
        :class:`~oidc_guard.ProviderError` (503: the server cannot take
        another tenant, which says nothing about the token) and a WARNING
        is logged once.  Calls in flight do not count against it; a call
        that returns a validator when the bound was reached meanwhile is
        answered 503 too and its validator dropped.
    :param max_concurrent_resolutions: the most resolver calls in flight at
        once, for different issuers (default 8).  A new issuer arriving
        while all are busy waits for a free slot, at most
        ``resolver_timeout``, then gets ProviderError (503): junk issuers
        resolving at once delay a real tenant, they never refuse it.
    :param resolver_timeout: the most seconds a request waits for a trust
        decision made by another thread: a resolver call in flight for the
        same issuer, or a free slot (default 5).  Past it: ProviderError
        (503), logged, and the back-off of ``resolver_backoff`` starts.
        The resolver itself runs in the requesting thread (so it sees that
        thread's context); give its own network or database calls their
        own timeouts.
    :param negative_cache_size: issuers the resolver refused that are
        remembered (default 1024; expired ones, then the least recently used, dropped first).
    :param negative_ttl: seconds a refusal is remembered (default 300).
    :param resolver_backoff: after the resolver raised (or returned an
        unusable validator), new issuers get ProviderError without a
        resolver call for this many seconds (default 5), with that
        ``Retry-After``; issuers already trusted keep working.
    :param allow_http: offer plain-http issuers on non-loopback hosts to the
        resolver (default False; loopback is always allowed, as everywhere).
    :param max_token_bytes: longer tokens are refused before anything is
        decoded (default: the largest limit of the members, else 16 KiB).
    :param clock: current time in seconds (negative-cache expiry); for tests.
    """

    def __init__(
        self,
        validators: Iterable[Any] = (),
        *,
        resolver: Optional[Resolver] = None,
        max_resolved: int = 100,
        negative_cache_size: int = 1024,
        negative_ttl: float = 300.0,
        resolver_backoff: float = 5.0,
        max_concurrent_resolutions: int = 8,
        resolver_timeout: float = 5.0,
        allow_http: bool = False,
        max_token_bytes: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(validators, (str, bytes)) or isinstance(validators, Mapping):
            raise ConfigurationError("validators must be a list of TokenValidator objects")
        members: Dict[str, Any] = {}
        for v in validators:
            issuer = getattr(v, "issuer", None)
            if not isinstance(issuer, str) or not issuer or not callable(getattr(v, "validate_access_token", None)):
                raise ConfigurationError(
                    f"MultiIssuerValidator members must be TokenValidator objects (with an issuer and "
                    f"validate_access_token); got {type(v).__name__}"
                )
            if isinstance(v, MultiIssuerValidator):
                raise ConfigurationError("MultiIssuerValidator members cannot be MultiIssuerValidators")
            if issuer in members:
                raise ConfigurationError(f"issuer {issuer!r} is listed twice; each issuer needs exactly one validator")
            members[issuer] = v
        if not members and resolver is None:
            raise ConfigurationError("MultiIssuerValidator needs at least one validator or a resolver")
        if resolver is not None and not callable(resolver):
            raise ConfigurationError("resolver must be a callable: resolver(issuer) -> TokenValidator or None")
        introspecting = [v for v in members.values() if _introspects(v)]
        if len(introspecting) > 1:
            raise ConfigurationError(
                "more than one member has introspection credentials ("
                + ", ".join(repr(v.issuer) for v in introspecting)
                + "); an opaque token does not say which issuer made it, so only one member may introspect"
            )
        if int(max_resolved) < 0:
            raise ConfigurationError("max_resolved must be >= 0")
        if int(negative_cache_size) < 0:
            raise ConfigurationError("negative_cache_size must be >= 0")
        if negative_ttl < 0:
            raise ConfigurationError("negative_ttl must be >= 0")
        if resolver_backoff < 0:
            raise ConfigurationError("resolver_backoff must be >= 0")
        if int(max_concurrent_resolutions) < 1:
            raise ConfigurationError("max_concurrent_resolutions must be >= 1")
        if not resolver_timeout > 0:
            raise ConfigurationError("resolver_timeout must be > 0 seconds")

        self._static: Tuple[Any, ...] = tuple(members.values())
        # issuer -> member.  Only ever grows (resolver), under _lock; reads
        # are plain dict look-ups (atomic in CPython), so the hot path takes
        # no lock.
        self._members: Dict[str, Any] = members
        self._introspector: Optional[Any] = introspecting[0] if introspecting else None
        self._resolver = resolver
        self.max_resolved = int(max_resolved)
        self.negative_cache_size = int(negative_cache_size)
        self.negative_ttl = float(negative_ttl)
        self.resolver_backoff = float(resolver_backoff)
        self.max_concurrent_resolutions = int(max_concurrent_resolutions)
        self.resolver_timeout = float(resolver_timeout)
        self.allow_http = bool(allow_http)
        limits = [getattr(v, "max_token_bytes", 0) or 0 for v in members.values()]
        self.max_token_bytes = int(max_token_bytes) if max_token_bytes is not None else (max(limits) if limits else 16384)
        self._clock = clock

        self._lock = threading.Lock()
        # Notified (under _lock) whenever a resolver call ends: a slot is free.
        self._slot_freed = threading.Condition(self._lock)
        #: how many validators the resolver created (never above max_resolved)
        self.resolved_count = 0
        #: how many times the resolver was called (for tests and metrics)
        self.resolver_calls = 0
        # issuers the resolver refused, each until its negative_ttl is over
        self._negative: "ExpiringLRU[str, bool]" = ExpiringLRU(max(1, self.negative_cache_size), clock)
        # issuer -> the resolver call in flight for it; joined under _lock
        # with the bounds, and every call that ends frees a slot
        self._in_flight: "SingleFlight[str, Any]" = SingleFlight(lock=self._lock, on_land=self._slot_freed.notify_all)
        self._limit_logged = False
        self._resolver_log_at = -1e18
        self._resolver_down_until = -1e18
        self._resolver_log_suppressed = 0
        self._front: "Memo[str, Any]" = Memo(_FRONT_MAX)
        self._by_header: "Memo[str, Any]" = Memo(_BY_HEADER_MAX)

    def __repr__(self) -> str:
        return (f"MultiIssuerValidator(issuers={list(self._members)!r}"
                + (", resolver=..." if self._resolver is not None else "") + ")")

    # --- the members -----------------------------------------------------------
    @property
    def validators(self) -> Tuple[Any, ...]:
        """Every member: the configured ones, then those the resolver made."""
        return tuple(self._members.values())

    @property
    def issuers(self) -> Tuple[str, ...]:
        return tuple(self._members)

    def validator_for(self, issuer: str) -> Optional[Any]:
        """The member for exactly ``issuer`` (resolver included), or ``None``."""
        try:
            return self._member_for(issuer)
        except InvalidToken:
            return None

    @property
    def algorithms(self) -> FrozenSet[str]:
        """The JWS algorithms any member accepts (e.g. for a DPoP ``algs``)."""
        out: Set[str] = set()
        for v in self._members.values():
            out.update(getattr(v, "algorithms", ()))
        return frozenset(out)

    # --- validation ------------------------------------------------------------
    def validate_access_token(self, token: Any) -> Claims:
        """Choose the member (see the class doc) and let it validate the
        access token.  Raises InvalidToken or ProviderError, as the member."""
        if type(token) is not str:
            return self.choose(token, "access token").validate_access_token(token)  # type: ignore[no-any-return]
        member = self._front.data.get(token)
        if member is not None:
            return member.validate_access_token(token)  # type: ignore[no-any-return]
        dot = token.find(".")
        header = token[:dot] if 0 < dot <= 1024 else None
        guess = self._by_header.data.get(header) if header is not None else None
        if guess is not None:
            # Only a guess to save decoding the payload twice: the member
            # checks everything, its own issuer included (before any key
            # look-up), and a token it refuses is routed by its iss after
            # all -- the same member re-raises, another one decides.
            try:
                claims = guess.validate_access_token(token)
                member = guess
            except InvalidToken:
                member = self.choose(token, "access token")
                if member is guess:
                    raise
                claims = member.validate_access_token(token)
        else:
            member = self.choose(token, "access token")
            claims = member.validate_access_token(token)
        # Only members that refuse a foreign iss before any network call: a
        # member in validation_mode "introspection" sends every token to its
        # endpoint, so a guess there would let tokens copying its header (any
        # iss) cost an introspection call each, and hand another issuer's
        # token to the wrong provider.
        if header is not None and type(member) is TokenValidator and not member._introspect_all:
            if self._by_header.data.get(header) is not member:
                self._by_header.put(header, member)
        front = self._front
        if len(front.data) < front.maxsize:
            front.data[token] = member  # the common case, without a method call
        else:
            front.put(token, member)  # full (cleared) or off
        return claims  # type: ignore[no-any-return]

    def cached_access_token(self, token: Any) -> Optional[Claims]:
        """The member's :meth:`TokenValidator.cached_access_token <oidc_guard.TokenValidator.cached_access_token>` for a
        token this validator has routed before, else ``None`` (no I/O, no
        resolver call)."""
        if type(token) is not str:
            return None
        member = self._front.data.get(token)
        if member is None:
            return None
        cached = getattr(member, "cached_access_token", None)
        return cached(token) if cached is not None else None

    def validate_id_token(
        self,
        token: Any,
        client_id: str,
        nonce: Optional[str] = None,
        access_token: Optional[str] = None,
        code: Optional[str] = None,
        max_age: Optional[float] = None,
    ) -> Claims:
        """Choose the member by the ID Token's ``iss`` and let it validate it
        (OIDC Core 3.1.3.7).  An ID Token is always a JWT."""
        member = self.choose(token, "ID Token", opaque_ok=False)
        return member.validate_id_token(  # type: ignore[no-any-return]
            token, client_id=client_id, nonce=nonce, access_token=access_token, code=code, max_age=max_age
        )

    def userinfo(self, access_token: Any, claims: Optional[Claims] = None) -> Mapping[str, Any]:
        """UserInfo (OIDC Core 5.3) at the provider that issued
        ``access_token`` (``claims``: its validation result, when known)."""
        member = self.choose(access_token, "access token")
        method = getattr(member, "userinfo", None)
        if method is None:
            raise ConfigurationError(f"the validator for {member.issuer!r} has no userinfo()")
        return method(access_token, claims)  # type: ignore[no-any-return]

    def check(self) -> None:
        """Start-up check of every configured member (discovery, JWKS and,
        where configured, the introspection endpoint), all of them even when
        one fails.  Raises ConfigurationError when a member is misconfigured,
        else ProviderError when a provider is unusable; the message names
        every failing issuer."""
        problems: List[Tuple[str, OIDCGuardError]] = []
        for v in self._static:
            try:
                method = getattr(v, "check", None)
                if method is not None:
                    method()
                else:  # a TokenValidator without check(): fetch what it would fetch
                    v.metadata.document()
                    v.keys.refresh()
            except (ConfigurationError, ProviderError) as exc:
                problems.append((v.issuer, exc))
        if not problems:
            return
        text = "; ".join(f"{issuer!r}: {exc.description}" for issuer, exc in problems)
        if any(isinstance(exc, ConfigurationError) for _, exc in problems):
            raise ConfigurationError(text)
        raise ProviderError(text, retry_after=min(getattr(exc, "retry_after", 30) for _, exc in problems))

    # --- choosing --------------------------------------------------------------
    def choose(self, token: Any, what: str = "access token", *, opaque_ok: bool = True) -> Any:
        """The member that must validate ``token``; raises InvalidToken when
        no trusted issuer can.  Nothing read here is believed: it only picks
        the validator that then verifies everything."""
        # Size limit first, before anything is decoded (as TokenValidator).
        token = token_text(token, what, self.max_token_bytes)
        if opaque_ok and self._introspector is not None and not looks_like_jws(token):
            # Opaque (reference) token: anything without the shape of a
            # compact JWS, dotted or not (the rule of TokenValidator's
            # validation_mode "both", one function for both): RFC 7662
            # introspection at the one member that has credentials for it.
            return self._introspector
        if "." not in token:
            if not opaque_ok:
                raise InvalidToken(f"{what} is not a JWT", reason="malformed")
            raise InvalidToken("no trusted issuer accepts reference tokens (opaque tokens need introspection)", reason="malformed")
        return self._member_for(unverified_issuer(token, what))

    def _member_for(self, iss: str) -> Any:
        member = self._members.get(iss)  # exact string equality, RFC 7519 4.1.1
        if member is not None:
            return member
        if len(iss) > _MAX_ISSUER_CHARS or self._resolver is None:
            raise self._untrusted(iss)
        return self._resolve(iss)


def members_of(validator: Any) -> Sequence[Any]:
    """The member validators of ``validator`` (itself when it is single)."""
    if isinstance(validator, MultiIssuerValidator):
        return validator.validators
    return (validator,)


_members_of = members_of  # the name flask.py imports today
