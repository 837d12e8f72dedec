"""``Claims``: the verified payload of a token, read-only.

Providers disagree on the shape of the same facts, so the accessors here
normalise them once:

* scopes: RFC 9068 section 2.2.3 / RFC 8693 section 4.2 send ``scope`` as a
  space-delimited string; IdentityServer v3 sends a JSON array; Azure AD and
  others send ``scp`` (string or array).  ``Claims.scopes`` is a frozenset of
  all of them, read by RFC 6749 section 3.3 exactly (SP the only separator;
  a value outside scope-token refuses the token: see ``parse_scopes``).
* client: RFC 9068 / RFC 8693 ``client_id``, else OIDC Core ``azp``.
* audiences: RFC 7519 section 4.1.3 allows a string or an array.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, Iterator, Mapping, Optional, Tuple

from ._bounded import Interned, Memo
from .errors import InvalidToken

__all__ = ["Claims", "parse_scopes", "confirmation_keys", "required_binding", "with_binding"]


# The tokens of one API carry a handful of distinct scope sets, and the
# validator's verified-token cache keeps a Claims per token: one shared
# frozenset per distinct set instead of one per Claims (a 5-scope frozenset
# is about 470 bytes).  frozensets are immutable, so sharing is invisible.
# Bounded (an Interned pool): past _SHARED_SCOPE_SETS_MAX distinct sets, new
# ones are not shared.
_SHARED_SCOPE_SETS_MAX = 1024
_SHARED_SCOPE_SETS: Interned[FrozenSet[str]] = Interned(_SHARED_SCOPE_SETS_MAX)
_shared_scope_set = _SHARED_SCOPE_SETS.share


# --- RFC 6749 section 3.3: the scope syntax ----------------------------------
#
#   scope       = scope-token *( SP scope-token )
#   scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
#
# The only separator is SP (U+0020).  str.split() would also split on tab,
# CR, LF, VT, FF, U+001C-001F, U+0085, U+00A0, U+1680, U+2000-200A, U+2028,
# U+2029, U+202F, U+205F, U+3000: a token with scope "wte\x1fcontacts" (one
# scope-token-less value for a provider that reads it as one name) would then
# grant "contacts" here.  The provider and this API must never read one scope
# value differently, so:
#
# * a value with any character outside scope-token (other than the SP
#   separators of a string) makes the token INVALID (InvalidToken), not just
#   that entry: an ignored entry would still mean "the API read something
#   else than the provider wrote", and refusing can never grant anything;
# * the same for ``scp``, and for each item of a JSON array (IdentityServer
#   v3, RFC 8693 style): an item is one scope-token, so an item containing a
#   space (or any other character outside scope-token) is refused too;
# * a ``scope`` / ``scp`` that is neither a string nor an array of strings
#   is refused as well;
# * empty entries (leading, trailing or doubled SP; an empty array item) are
#   ignored: with SP the only separator there is exactly one reading of
#   "a  b", and an empty name grants nothing.
#
# Claims checks this when it is built (the validator's JWTs and the
# introspection responses both build a Claims), so a token whose scopes
# cannot be read exactly is never returned to the application.

_NOT_SCOPE_TOKEN = re.compile(r"[^\x21\x23-\x5b\x5d-\x7e]")
_NOT_SCOPE_STRING = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")

# Memo of parsed scope values: the same scope string (or array) recurs in
# every token of a client, and the check + split + set above costs about
# 1 us; the memo makes it one dict look-up.  Only values that passed are
# kept; bounded (a Memo: cleared when full).  Keys are immutable (str, or a
# tuple of the array's items), so an entry can never change.
_SCOPE_MEMO_MAX = 2048
_SCOPE_MEMO: Memo[Any, FrozenSet[str]] = Memo(_SCOPE_MEMO_MAX)
_SCOPE_MEMO_MAX_LEN = 2048


def _invalid(claim: str, why: str) -> InvalidToken:
    return InvalidToken(f"the {claim} claim {why} (RFC 6749 section 3.3)", reason="claims")


def parse_scopes(value: Any, claim: str = "scope") -> FrozenSet[str]:
    """The scope names of a ``scope`` / ``scp`` claim value, by the rules
    above; raises InvalidToken when the value cannot be read exactly.
    ``None`` (absent) is the empty set."""
    if value is None:
        return frozenset()
    if type(value) is str:
        key: Any = value
    elif type(value) is list or type(value) is tuple:
        if not all(type(item) is str for item in value):
            raise _invalid(claim, "is an array with an item that is not a string")
        key = tuple(value)
    else:
        raise _invalid(claim, "is neither a string nor an array of strings")
    found = _SCOPE_MEMO.data.get(key)
    if found is not None:
        return found
    if type(key) is str:
        if _NOT_SCOPE_STRING.search(key) is not None:
            raise _invalid(claim, "contains a character outside RFC 6749 scope-token")
        names = key.split(" ")
    else:
        for item in key:
            if _NOT_SCOPE_TOKEN.search(item) is not None:
                raise _invalid(claim, "has an array item that is not one RFC 6749 scope-token "
                                      "(a space or a character outside scope-token)")
        names = list(key)
    found = _shared_scope_set(frozenset(name for name in names if name))
    if len(key) <= _SCOPE_MEMO_MAX_LEN:
        _SCOPE_MEMO.put(key, found)
    return found


class Claims(Mapping[str, Any]):
    """A read-only mapping of a verified token's claims.

    Only the library constructs it, after the signature and the registered
    claims were checked; treat every value as what the issuer asserted.
    Building one checks the scope syntax (RFC 6749 section 3.3, see
    ``parse_scopes``) and raises ``InvalidToken`` when ``scope`` or
    ``scp`` cannot be read exactly.
    """

    # Four slots: with the GC header a Claims is 64 bytes, one pymalloc size
    # class below the 80 of five or six slots (16 bytes per cached token).
    # So audiences are computed on access (a tuple of a short list), and the
    # request's binding lives in the per-request copy (_BoundClaims).
    __slots__ = ("_payload", "_scopes", "header", "_key_fingerprint")

    def __init__(self, payload: Mapping[str, Any], header: Optional[Mapping[str, Any]] = None,
                 _adopt: bool = False) -> None:
        # _adopt (library use only): ``payload`` is a dict made for this
        # Claims alone (the validator's freshly decoded or shared copy) and
        # nobody else keeps a reference: kept as is instead of copied.
        self._payload = payload if _adopt and type(payload) is dict else dict(payload)
        # Eager: a token whose scopes cannot be read exactly is refused when
        # its Claims is built, before the application ever sees it.
        scopes = parse_scopes(self._payload.get("scope"), "scope")
        scp = self._payload.get("scp")
        if scp is not None:
            scopes = _shared_scope_set(scopes | parse_scopes(scp, "scp"))
        self._scopes: FrozenSet[str] = scopes
        #: the verified JOSE header (alg, kid, typ), for logging and auditing.
        #: A read-only mapping: the validator passes one MappingProxyType per
        #: distinct header, shared by the Claims of every token carrying it
        #: (kept as is, not copied); anything else is copied into a dict.
        self.header: Mapping[str, Any] = header if type(header) is MappingProxyType else dict(header or {})
        # RFC 7638 thumbprint of the key that verified the token, set by
        # TokenValidator when it keeps this Claims in its verified-token cache
        # (the Claims is the cache entry; see validate_access_token).
        self._key_fingerprint: Optional[str] = None

    # --- Mapping -----------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._payload[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._payload)

    def __len__(self) -> int:
        return len(self._payload)

    def __contains__(self, key: object) -> bool:
        return key in self._payload

    def __repr__(self) -> str:
        return f"Claims(sub={self.subject!r}, client_id={self.client_id!r}, scopes={sorted(self.scopes)!r})"

    def to_dict(self) -> Dict[str, Any]:
        """A shallow copy of the payload as a plain dict (e.g. for JSON)."""
        return dict(self._payload)

    def _with_binding(self, binding: str) -> "Claims":
        """A copy for one request that says how the token was bound; shares
        the (never modified) payload and header with this one, which may be
        the validator's cached entry and must not change."""
        copy = _BoundClaims.__new__(_BoundClaims)
        copy._payload = self._payload
        copy._scopes = self._scopes
        copy.header = self.header
        copy._key_fingerprint = self._key_fingerprint
        copy._binding = binding
        return copy

    @property
    def binding(self) -> Optional[str]:
        """How the request proved it holds the token (sender-constrained
        tokens), as :class:`~oidc_guard.BearerMiddleware` verified it:
        ``None`` (a bearer token: whoever holds it may use it), ``"dpop"``
        (RFC 9449: a DPoP proof signed with the key of the token's
        ``cnf.jkt`` was verified; a certificate binding, if the token has one
        too, was verified as well) or ``"mtls"`` (RFC 8705: the client
        certificate matched the token's ``cnf["x5t#S256"]``).  A Claims
        straight from ``validate_access_token`` has ``None``: the validator
        alone never sees the request."""
        return None

    # --- normalised accessors ----------------------------------------------
    @property
    def confirmation(self) -> Optional[Mapping[str, Any]]:
        """The ``cnf`` claim (RFC 7800): the key (``jkt``, RFC 9449) or
        certificate (``x5t#S256``, RFC 8705) the token is bound to, or
        ``None`` for a plain bearer token."""
        cnf = self._payload.get("cnf")
        return cnf if isinstance(cnf, dict) else None

    @property
    def subject(self) -> Optional[str]:
        sub = self._payload.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def client_id(self) -> Optional[str]:
        for name in ("client_id", "azp"):
            value = self._payload.get(name)
            if isinstance(value, str):
                return value
        return None

    @property
    def scopes(self) -> FrozenSet[str]:
        """The scope names of ``scope`` and ``scp`` (RFC 6749 section 3.3:
        SP-separated scope-tokens, or a JSON array of scope-tokens)."""
        return self._scopes

    @property
    def issuer(self) -> Optional[str]:
        iss = self._payload.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def audiences(self) -> Tuple[str, ...]:
        aud = self._payload.get("aud")
        if isinstance(aud, str):
            return (aud,)
        if isinstance(aud, (list, tuple)):
            return tuple(a for a in aud if isinstance(a, str))
        return ()

    @property
    def expires_at(self) -> Optional[datetime]:
        exp = self._payload.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            try:
                return datetime.fromtimestamp(exp, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                return None  # not representable; the validator refuses such tokens
        return None

    @property
    def is_client_token(self) -> bool:
        """True for a token issued to a client acting on its own behalf
        (client credentials): no ``sub`` (IdentityServer v3), or ``sub``
        equal to the client id (RFC 9068 section 2.2 for oidc-provider)."""
        sub = self.subject
        return sub is None or (self.client_id is not None and sub == self.client_id)


# --- sender-constrained tokens: what the token is bound to -----------------------
#
# The one reading of the cnf claim (RFC 7800 section 3.1) that every part
# uses: the middleware (which proof the request must bring), UserInfo (a
# bound token is never sent on) and the command line (the note it prints).


def confirmation_keys(claims: Any) -> Tuple[Any, Any]:
    """``(jkt, x5t#S256)`` of the token's ``cnf`` claim, each ``None`` when
    absent: the key a DPoP proof must be signed with (RFC 9449 section 6.1)
    and the client certificate's thumbprint (RFC 8705 section 3.1).  The
    values are not checked here (the binding check refuses a non-string).
    A ``cnf`` that is present but not a JSON object raises
    :class:`~oidc_guard.InvalidToken` (reason ``binding``): a token whose
    binding cannot be read must not pass as a bearer token."""
    if isinstance(claims, Claims):
        cnf = claims._payload.get("cnf")  # (Mapping.get would raise and catch a KeyError)
    else:
        get = getattr(claims, "get", None)
        cnf = get("cnf") if get is not None else None
    if cnf is None:
        return None, None
    if type(cnf) is not dict and not isinstance(cnf, Mapping):
        raise InvalidToken("token cnf claim is not an object (RFC 7800 section 3.1)", reason="binding")
    return cnf.get("jkt"), cnf.get("x5t#S256")


def required_binding(claims: Any) -> Optional[str]:
    """Whether the token is sender-constrained, and how: ``"dpop"`` (a
    ``cnf.jkt``: only with a DPoP proof of that key, RFC 9449; a
    certificate binding may be there too), ``"mtls"`` (a
    ``cnf["x5t#S256"]``: only with that client certificate, RFC 8705) or
    ``None`` (a bearer token).  Raises as :func:`confirmation_keys`.

    What the token *requires*; :attr:`Claims.binding` says what the
    request *proved*."""
    jkt, x5t = confirmation_keys(claims)
    if jkt is not None:
        return "dpop"
    if x5t is not None:
        return "mtls"
    return None


def with_binding(claims: Any, binding: str) -> Any:
    """``claims`` for one request whose proof of possession (``"dpop"`` or
    ``"mtls"``) was verified: a :class:`Claims` copy whose
    :attr:`~Claims.binding` says so (the payload is shared, never copied);
    any other object (a custom validator's) is returned as it is."""
    if isinstance(claims, Claims):
        return claims._with_binding(binding)
    return claims


class _BoundClaims(Claims):
    """The per-request copy made by :meth:`Claims._with_binding`: the same
    payload, plus how the request proved it holds the token."""

    __slots__ = ("_binding",)
    _binding: Optional[str]

    @property
    def binding(self) -> Optional[str]:
        return self._binding
