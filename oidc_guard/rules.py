"""Route rules and the decorators built on them, framework-free: every
scope or any scope (:class:`ScopeRule`), scope groups, claim checks, the
issuer a route accepts, a sender-constrained token (:class:`BoundRule`).
:func:`evaluate` decides a request's :class:`~oidc_guard.auth.AuthResult`
against a rule, and :class:`Decorators` is the one definition of the
``require_*`` decorator family: :mod:`oidc_guard.wsgi` and
:mod:`oidc_guard.flask` (and every later adapter) only say how to wrap a
callable and how to send a refusal.

A rule looks only at the :class:`~oidc_guard.Claims` of a token the
validator already verified, and answers ``None`` (allowed) or the error to
send.  The answers, and why:

* scope groups -- :class:`~oidc_guard.InsufficientScope`, 403
  ``insufficient_scope`` (RFC 6750 section 3.1): more scope *would* help.
  The ``scope`` attribute lists *one* group that would be enough: the group
  the token is closest to (fewest scopes missing; the first listed on a
  tie).  RFC 6750 section 3 gives the attribute a single scope list "required
  ... for accessing the requested resource"; the union of all groups would
  ask for more than is needed (RFC 6749 section 3.3, least privilege), and a
  client that requests the group named gets in.  ``error_description``
  spells out every alternative.
* claim checks and the issuer rule -- :class:`InsufficientClaims`, 403 with
  ``error="insufficient_claims"``.  The token is valid (so not 401
  ``invalid_token``, which tells clients to throw the token away), and more
  scope would not help (so not ``insufficient_scope``, which tells clients
  to ask for more).  RFC 9470's ``insufficient_user_authentication`` is a 401
  for step-up authentication (acr, auth_time) and says to re-authenticate,
  which cannot change a tenant or a role.  RFC 6750 section 3 lets a resource
  server use other error codes; ``insufficient_claims`` is the name
  Microsoft's identity platform uses for claims challenges.  The description
  names the claim, never the values the rule expects (other tenants' names,
  role names) nor the values in the token.
* step-up rules (:class:`AcrRule`, :class:`AuthTimeRule`) --
  :class:`~oidc_guard.errors.InsufficientUserAuthentication`, 401
  ``insufficient_user_authentication`` with ``acr_values`` / ``max_age``
  (RFC 9470 section 3): signing the user in again, with those parameters,
  *would* help, and the challenge tells the client how.  A token without
  ``acr`` / ``auth_time`` does not meet the rule (nothing says how the
  user signed in).  The values the rule expects are in the challenge
  anyway, so the description names them.
"""

from __future__ import annotations

import logging
import re
import time
from typing import (
    Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, cast,
    Protocol, overload,
)

from .errors import InsufficientScope, InsufficientUserAuthentication, InvalidToken, MissingToken, OIDCGuardError
from .loghint import note_refusal



class _Outcome(Protocol):
    """What :func:`evaluate` reads of an :class:`oidc_guard.auth.AuthResult`
    (a protocol, so that this module, which auth imports, need not import
    auth)."""

    @property
    def claims(self) -> Any: ...

    @property
    def error(self) -> Optional[OIDCGuardError]: ...

__all__ = [
    "InsufficientClaims",
    "Rule",
    "ScopeRule",
    "BoundRule",
    "AllRules",
    "ScopeGroups",
    "ClaimRules",
    "IssuerRule",
    "AcrRule",
    "AuthTimeRule",
    "includes",
    "check_scope_names",
    "scope_rule",
    "evaluate",
    "log_denial",
    "Decorators",
]

logger = logging.getLogger("oidc_guard.rules")

# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


class InsufficientClaims(OIDCGuardError):
    """The token is valid but its claims do not satisfy the resource's rules
    (a claim check or the issuer rule): HTTP 403 ``insufficient_claims``.
    See the module doc for why this code and status."""

    error = "insufficient_claims"
    status = 403
    reason = "insufficient_claims"


class Rule:
    """What a decorated resource needs of a verified token."""

    __slots__ = ()

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        """``None`` to allow, else the error to answer with."""
        raise NotImplementedError


def check_scope_names(scopes: Sequence[Any], name: str) -> None:
    """Check, at decoration time, the scope names given to the decorator (or
    rule) ``name``: each a str that is an RFC 6749 section 3.3
    ``scope-token``.  :class:`TypeError` for a non-str (with a hint when it
    is a function: the decorator was used without parentheses),
    :class:`ValueError` for a bad name (with a hint when it holds white
    space: several scopes in one string).  The one check behind every
    ``require_*scope*`` decorator and :class:`ScopeGroups`."""
    for scope in scopes:
        if not isinstance(scope, str):
            hint = f' (write @{name}("scope"), not @{name})' if callable(scope) else ""
            raise TypeError(f"{name}() takes scope names as str, got {type(scope).__name__}{hint}")
        if _SCOPE_TOKEN.fullmatch(scope) is None:
            hint = "; pass each scope separately" if any(c.isspace() for c in scope) else ""
            raise ValueError(f"{name}(): {scope!r} is not a valid scope name (RFC 6749 section 3.3{hint})")


class ScopeRule(Rule):
    """Every one (``mode="all"``) or at least one (``mode="any"``) of
    ``scopes``: 403 ``insufficient_scope`` naming them otherwise."""

    __slots__ = ("scopes", "mode", "_needed", "_all")

    def __init__(self, scopes: Tuple[str, ...], mode: str = "all") -> None:
        if mode not in ("all", "any"):
            raise ValueError("mode is 'all' or 'any'")
        self.scopes = scopes
        self.mode = mode
        self._needed = frozenset(scopes)
        self._all = mode == "all"

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        granted = claims.scopes
        if self._all:
            if self._needed.issubset(granted):  # the common case, in C
                return None
            missing = [scope for scope in self.scopes if scope not in granted]
            if not missing:
                return None
            plural = "s" if len(missing) > 1 else ""
            description = f"the token lacks the required scope{plural} " + " ".join(missing)
        else:
            if not self._needed.isdisjoint(granted):
                return None
            description = "the token has none of the accepted scopes " + " ".join(self.scopes)
        # RFC 6750 section 3: scope="..." lists the scopes the resource needs.
        return InsufficientScope(description, self.scopes)


class BoundRule(Rule):
    """A sender-constrained token: ``Claims.binding`` is ``"dpop"`` or
    ``"mtls"`` (the request proved possession, RFC 9449 / RFC 8705); a
    plain bearer token gets 401 ``invalid_token``: a stolen bearer token
    must not work here."""

    __slots__ = ()

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        if getattr(claims, "binding", None) is not None:
            return None
        return InvalidToken(
            "this resource needs a sender-constrained token (DPoP, RFC 9449, or certificate-bound, RFC 8705)",
            reason="binding")


class AllRules(Rule):
    """Every rule, in order: the first refusal is the answer."""

    __slots__ = ("rules",)

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: Tuple[Rule, ...] = tuple(rules)

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        for rule in self.rules:
            denied = rule.deny(claims)
            if denied is not None:
                return denied
        return None


def scope_rule(scopes: Sequence[Any], mode: str, name: str, bound: bool = False) -> Rule:
    """The rule of ``require_scope(*scopes)`` (``mode="all"``) or
    ``require_any_scope`` (``"any"``), checked once, at decoration time
    (``name`` is the decorator's, for the messages); ``bound=True`` puts a
    :class:`BoundRule` first."""
    if not scopes:
        raise TypeError(f"{name}() needs at least one scope; use require_token() for any valid token")
    check_scope_names(scopes, name)
    rule: Rule = ScopeRule(tuple(dict.fromkeys(scopes)), mode)
    return AllRules((BoundRule(), rule)) if bound else rule


class ScopeGroups(Rule):
    """Any one of several all-of groups: ``ScopeGroups(("contacts", "wte"),
    ("coordinate",))`` allows a token with both contacts and wte, or with
    coordinate.  (Authlib's ``require_oauth(["contacts wte", "coordinate"])``.)"""

    __slots__ = ("groups",)

    def __init__(self, groups: Sequence[Tuple[str, ...]]) -> None:
        self.groups: Tuple[Tuple[str, ...], ...] = tuple(groups)

    @classmethod
    def parse(cls, groups: Sequence[Any], name: str = "require_scope_groups") -> "ScopeGroups":
        """Each group a space-delimited str (``"contacts wte"``) or a
        sequence of scope names; checked once, at decoration time."""
        if not groups:
            raise TypeError(f"{name}() needs at least one scope group")
        parsed: List[Tuple[str, ...]] = []
        for group in groups:
            if isinstance(group, str):
                names = group.split()
            elif isinstance(group, (list, tuple)):
                names = list(group)
            else:
                raise TypeError(f"{name}() takes each group as a str \"a b\" or a list of scopes, "
                                f"got {type(group).__name__}")
            if not names:
                raise ValueError(f"{name}(): an empty scope group would allow every token; use require_token()")
            check_scope_names(names, name)
            parsed.append(tuple(dict.fromkeys(names)))
        return cls(tuple(dict.fromkeys(parsed)))

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        granted: FrozenSet[str] = claims.scopes
        best: Optional[Tuple[str, ...]] = None
        best_missing = 0
        for group in self.groups:
            missing = sum(1 for scope in group if scope not in granted)
            if missing == 0:
                return None
            if best is None or missing < best_missing:
                best, best_missing = group, missing
        assert best is not None
        alternatives = " or ".join('"' + " ".join(group) + '"' for group in self.groups)
        return InsufficientScope(f"the token has none of the accepted scope groups {alternatives}", best)


class _Includes:
    """Matcher: the claim is an array containing every one of ``values``, or
    a single string equal to the only value (IdentityServer v3 sends a claim
    with one value, such as ``amr`` or ``role``, as a plain string)."""

    __slots__ = ("values",)

    def __init__(self, values: Tuple[Any, ...]) -> None:
        self.values = values

    def __call__(self, claim: Any) -> bool:
        if isinstance(claim, list):
            return all(any(_same(item, value) for item in claim) for value in self.values)
        return len(self.values) == 1 and _same(claim, self.values[0])

    def __repr__(self) -> str:
        return "includes(" + ", ".join(repr(v) for v in self.values) + ")"


def includes(*values: Union[str, int, bool]) -> Callable[[Any], bool]:
    """A claim rule for :func:`~oidc_guard.wsgi.require_claims`: the claim
    (an array, or a single string) contains every one of ``values``, e.g.
    ``roles=includes("admin")``."""
    if not values:
        raise TypeError("includes() needs at least one value")
    for value in values:
        if not isinstance(value, (str, int, bool)):
            raise TypeError(f"includes() takes str, int or bool values, got {type(value).__name__}")
    return _Includes(tuple(values))


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality without Python's coercions: ``True`` is not ``1``, and
    ``"1"`` is not ``1``."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    return type(actual) is type(expected) and bool(actual == expected)


_Matcher = Union[str, int, float, bool, Callable[[Any], bool]]


class ClaimRules(Rule):
    """Every named claim must satisfy its rule: a value (equal, as JSON), or
    a predicate called with the claim's value (``includes(...)`` or your own
    function returning ``True``/``False``).  A missing claim fails without
    calling the predicate; a predicate that raises or returns anything but a
    bool fails too (logged at ERROR: a bug in a rule must deny, not allow)."""

    __slots__ = ("rules",)

    def __init__(self, rules: Mapping[str, _Matcher]) -> None:
        self.rules: Dict[str, _Matcher] = dict(rules)

    @classmethod
    def parse(cls, mapping: Optional[Mapping[str, Any]], named: Mapping[str, Any],
              name: str = "require_claims") -> "ClaimRules":
        rules: Dict[str, Any] = {}
        if mapping is not None:
            if not isinstance(mapping, Mapping):
                raise TypeError(f"{name}() takes a mapping of claim names (for names that are not Python "
                                f"identifiers) and keyword arguments, got {type(mapping).__name__}")
            rules.update(mapping)
        clash = sorted(set(rules) & set(named))
        if clash:
            raise TypeError(f"{name}(): claim(s) {', '.join(clash)} given twice")
        rules.update(named)
        if not rules:
            raise TypeError(f"{name}() needs at least one claim rule")
        for claim, rule in rules.items():
            if not isinstance(claim, str) or not claim:
                raise TypeError(f"{name}(): claim names are non-empty str")
            if rule is None or not (callable(rule) or isinstance(rule, (str, int, float, bool))):
                raise TypeError(
                    f"{name}(): the rule for {claim!r} must be a str, number or bool to compare, or a "
                    f"predicate (includes(...) or a function), got {type(rule).__name__}")
        return cls(rules)

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        failed = [claim for claim, rule in self.rules.items() if not self._holds(claims, claim, rule)]
        if not failed:
            return None
        plural = "s" if len(failed) > 1 else ""
        # Claim names only: never the expected values (they may name other
        # tenants) nor the token's values.
        return InsufficientClaims(
            f"the token's {', '.join(repr(c)[:80] for c in failed)} claim{plural} "
            f"{'do' if plural else 'does'} not satisfy the rules of this resource")

    @staticmethod
    def _holds(claims: Any, claim: str, rule: _Matcher) -> bool:
        if claim not in claims:
            return False
        value = claims[claim]
        if not callable(rule):
            return _same(value, rule)
        try:
            result = rule(value)
        except Exception:
            logger.exception("the claim rule for %r raised; the request is denied", claim)
            return False
        if type(result) is not bool:
            logger.error("the claim rule for %r returned %s, not a bool; the request is denied",
                         claim, type(result).__name__)
            return False
        return result


class IssuerRule(Rule):
    """Only tokens from one of ``issuers`` (exact string equality with the
    verified ``iss``), for routes only one tenant may call."""

    __slots__ = ("issuers",)

    def __init__(self, issuers: Sequence[str]) -> None:
        if not issuers:
            raise TypeError("require_issuer() needs at least one issuer")
        for issuer in issuers:
            if not isinstance(issuer, str) or not issuer:
                raise TypeError("require_issuer() takes issuers as non-empty str")
        self.issuers: FrozenSet[str] = frozenset(issuers)

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        if claims.issuer in self.issuers:
            return None
        return InsufficientClaims("this resource does not accept tokens from this token's issuer")


# --- step-up authentication (RFC 9470) ------------------------------------------

# An auth_time this far ahead of the clock is still taken as "just now"
# (clock skew between the provider and this host), as the validator's
# default leeway for iat/nbf.
_AUTH_TIME_LEEWAY = 60.0


def _shown(value: Any) -> str:
    return repr(value)[:100]


class AcrRule(Rule):
    """The token's ``acr`` (OpenID Connect Core section 2; RFC 9068 section
    2.2.1) is one of ``values`` (exact string equality).  Otherwise 401
    ``insufficient_user_authentication`` with ``acr_values="<values>"``
    (RFC 9470 section 3), listed in the order given: the order of
    preference the client passes on to the authorization server."""

    __slots__ = ("values", "_accepted")

    def __init__(self, values: Sequence[str]) -> None:
        if not values:
            raise TypeError('require_acr() needs at least one acr value, e.g. require_acr("urn:example:loa:2")')
        for value in values:
            if not isinstance(value, str):
                hint = ' (write @require_acr("..."), not @require_acr)' if callable(value) else ""
                raise TypeError(f"require_acr() takes acr values as str, got {type(value).__name__}{hint}")
            # acr_values is a space-separated list (OpenID Connect Core
            # 3.1.2.1), sent in a quoted-string: the characters of a scope token.
            if _SCOPE_TOKEN.fullmatch(value) is None:
                raise ValueError(f"require_acr(): {value!r} is not a usable acr value (no spaces, quotes, "
                                 f"backslashes or control characters)")
        self.values: Tuple[str, ...] = tuple(dict.fromkeys(values))
        self._accepted: FrozenSet[str] = frozenset(self.values)

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        acr = claims.get("acr")
        if isinstance(acr, str) and acr in self._accepted:
            return None
        wanted = " or ".join(self.values)
        if acr is None:
            found = "the token has no acr claim"
        elif not isinstance(acr, str):
            found = "the token's acr is not a string"
        else:
            found = f"the token's acr is {_shown(acr)}"
        return InsufficientUserAuthentication(
            f"this resource needs an authentication with acr {wanted}; {found}", acr_values=self.values)


class AuthTimeRule(Rule):
    """The token's ``auth_time`` (when the user last signed in, OpenID
    Connect Core section 2) is at most ``max_age`` seconds old.  Otherwise
    401 ``insufficient_user_authentication`` with ``max_age="<seconds>"``
    (RFC 9470 section 3).  ``clock``: the time source (default
    ``time.time``)."""

    __slots__ = ("max_age", "_clock")

    def __init__(self, max_age: Any, clock: Callable[[], float] = time.time) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            raise TypeError(f"require_auth_time(max_age=...) takes whole seconds as an int, "
                            f"got {type(max_age).__name__}")
        if max_age < 1:
            raise ValueError("require_auth_time(max_age=...) must be at least 1 second (a login of 0 seconds "
                             "ago can never be presented)")
        self.max_age = max_age
        self._clock = clock

    def deny(self, claims: Any) -> Optional[OIDCGuardError]:
        auth_time = claims.get("auth_time")
        if auth_time is None:
            found = "the token has no auth_time claim"
        elif isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)) or auth_time != auth_time:
            found = "the token's auth_time is not a NumericDate"
        else:
            age = self._clock() - auth_time
            if -_AUTH_TIME_LEEWAY <= age <= self.max_age:
                return None
            found = (f"the user signed in {int(age)} seconds ago" if age > 0
                     else "the token's auth_time is in the future")
        return InsufficientUserAuthentication(
            f"this resource needs a sign-in within the last {self.max_age} seconds; {found}", max_age=self.max_age)


# --- deciding a request -------------------------------------------------------


def evaluate(result: _Outcome, rule: Optional[Rule] = None) -> Optional[OIDCGuardError]:
    """``None`` when the request of ``result`` may reach a resource with
    ``rule`` (``None``: any valid token), else the error to answer with:
    the result's own error (invalid token, provider unusable) or a
    :class:`~oidc_guard.errors.MissingToken` when it has no valid token,
    else the rule's refusal."""
    claims = result.claims
    if claims is None:
        error = result.error
        return error if error is not None else MissingToken()
    if rule is None:
        return None
    return rule.deny(claims)


def log_denial(logger: logging.Logger, where: str, error: OIDCGuardError) -> None:
    """The INFO line of a rule's refusal (a valid token that the route's
    rule refuses; a refused token was logged when it was authenticated)."""
    if isinstance(error, InsufficientScope):
        logger.info("insufficient scope %s reason=%s: %s", where, error.reason, error.description)
    else:
        logger.info("access denied %s reason=%s: %s", where, error.reason, error.description)
    note_refusal(logger)


# --- the decorator family -------------------------------------------------------

#: a decorated callable (a WSGI callable, a view); given back with its signature
_F = TypeVar("_F", bound=Callable[..., Any])

#: ``wrap(rule)``: the adapter's decorator that runs a callable only when
#: :func:`evaluate` allows the request, and answers the refusal otherwise.
Wrap = Callable[[Optional[Rule]], Callable[[Callable[..., Any]], Callable[..., Any]]]


class Decorators:
    """The ``require_*`` decorators of one adapter, defined once: each turns
    its arguments into a :class:`Rule` (checked at decoration time) and
    hands it to the adapter's ``wrap``.  An adapter exposes the bound
    methods as its module's functions (``require_scope =
    decorators.require_scope``)."""

    __slots__ = ("_wrap",)

    def __init__(self, wrap: Wrap) -> None:
        self._wrap = wrap

    def _decorator(self, rule: Optional[Rule]) -> Callable[[_F], _F]:
        return cast(Callable[[_F], _F], self._wrap(rule))

    @overload
    def require_token(self, target: _F, *, bound: bool = False) -> _F: ...
    @overload
    def require_token(self, target: None = None, *, bound: bool = False) -> Callable[[_F], _F]: ...

    def require_token(self, target: Optional[_F] = None, *, bound: bool = False) -> Any:
        """The route runs only for a request with a valid token (401
        otherwise, 503 while the identity provider is unusable).

        ``bound=True``: the token must also be sender-constrained -- a DPoP
        token with its proof or a certificate-bound token with its
        certificate (``Claims.binding`` is ``"dpop"`` or ``"mtls"``); a plain
        bearer token gets 401 ``invalid_token``.

        Use as ``@require_token()``; ``@require_token`` works too.
        """
        decorate = self._decorator(BoundRule() if bound else None)
        if target is not None:
            return decorate(target)
        return decorate

    def require_scope(self, *scopes: str, bound: bool = False) -> Callable[[_F], _F]:
        """The route runs only for a valid token that has *every* one of
        ``scopes``; otherwise 403 ``insufficient_scope`` with ``scope="..."``
        naming the required scopes (RFC 6750 section 3.1).  ``bound=True``
        as for :func:`require_token`."""
        return self._decorator(scope_rule(scopes, "all", "require_scope", bound))

    def require_any_scope(self, *scopes: str, bound: bool = False) -> Callable[[_F], _F]:
        """The route runs only for a valid token that has *at least one* of
        ``scopes``; otherwise 403 ``insufficient_scope``.  ``bound=True`` as
        for :func:`require_token`."""
        return self._decorator(scope_rule(scopes, "any", "require_any_scope", bound))

    def require_scope_groups(self, *groups: Any) -> Callable[[_F], _F]:
        """The route runs only for a valid token that has every scope of *at
        least one* group; each group is a space-delimited str or a list:
        ``@require_scope_groups("contacts wte", "coordinate")``.  Otherwise
        403 ``insufficient_scope``; ``scope="..."`` names the group the token
        is closest to (see :mod:`oidc_guard.rules`)."""
        return self._decorator(ScopeGroups.parse(groups))

    def require_claims(self, _claims: Optional[Any] = None, /, **rules: Any) -> Callable[[_F], _F]:
        """The route runs only for a valid token whose claims satisfy every
        rule: a value to compare (``tenant="acme"``), ``includes(...)``
        (``roles=includes("admin")``) or a predicate (``amr=lambda v: "mfa"
        in v``).  A mapping as the first argument gives claim names that are
        not Python identifiers.  Otherwise 403 ``insufficient_claims`` naming
        the claim, never its values."""
        return self._decorator(ClaimRules.parse(_claims, rules))

    def require_issuer(self, *issuers: str) -> Callable[[_F], _F]:
        """The route runs only for a valid token from one of ``issuers``
        (exact match with the verified ``iss``): routes only one tenant may
        call behind a :class:`~oidc_guard.MultiIssuerValidator`.  Otherwise
        403 ``insufficient_claims``."""
        return self._decorator(IssuerRule(issuers))

    def require_acr(self, *values: str) -> Callable[[_F], _F]:
        """The route runs only for a valid token whose ``acr`` is one of
        ``values`` (``@require_acr("urn:a", "urn:b")``, in order of
        preference).  Otherwise 401 ``insufficient_user_authentication``
        with ``acr_values="urn:a urn:b"`` (RFC 9470 section 3): the client
        signs the user in again with those ``acr_values``.  A token without
        ``acr`` does not qualify."""
        return self._decorator(AcrRule(values))

    def require_auth_time(self, *, max_age: int) -> Callable[[_F], _F]:
        """The route runs only for a valid token whose ``auth_time`` is at
        most ``max_age`` seconds ago (``@require_auth_time(max_age=300)``).
        Otherwise 401 ``insufficient_user_authentication`` with
        ``max_age="300"`` (RFC 9470 section 3): the client signs the user in
        again with that ``max_age``.  A token without ``auth_time`` does
        not qualify."""
        return self._decorator(AuthTimeRule(max_age))
