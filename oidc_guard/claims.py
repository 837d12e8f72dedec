"""``Claims``: the verified payload of a token, read-only.

Providers disagree on the shape of the same facts, so the accessors here
normalise them once:

* scopes: RFC 9068 section 2.2.3 / RFC 8693 section 4.2 send ``scope`` as a
  space-delimited string; IdentityServer v3 sends a JSON array; Azure AD and
  others send ``scp`` (string or array).  ``Claims.scopes`` is a frozenset of
  all of them.
* client: RFC 9068 / RFC 8693 ``client_id``, else OIDC Core ``azp``.
* audiences: RFC 7519 section 4.1.3 allows a string or an array.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, Iterator, Mapping, Optional, Tuple

__all__ = ["Claims"]


# The tokens of one API carry a handful of distinct scope sets, and the
# validator's verified-token cache keeps a Claims per token: one shared
# frozenset per distinct set instead of one per Claims (a 5-scope frozenset
# is about 470 bytes).  frozensets are immutable, so sharing is invisible.
# Bounded: past _SHARED_SCOPE_SETS_MAX distinct sets, new ones are not shared.
_SHARED_SCOPE_SETS: Dict[FrozenSet[str], FrozenSet[str]] = {}
_SHARED_SCOPE_SETS_MAX = 1024


def _shared_scope_set(found: FrozenSet[str]) -> FrozenSet[str]:
    shared = _SHARED_SCOPE_SETS.get(found)
    if shared is not None:
        return shared
    if len(_SHARED_SCOPE_SETS) < _SHARED_SCOPE_SETS_MAX:
        return _SHARED_SCOPE_SETS.setdefault(found, found)
    return found


def _scopes_from(value: Any) -> FrozenSet[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, (list, tuple)):
        out = set()
        for item in value:
            if isinstance(item, str):
                out.update(item.split())
        return frozenset(out)
    return frozenset()


class Claims(Mapping[str, Any]):
    """A read-only mapping of a verified token's claims.

    Only the library constructs it, after the signature and the registered
    claims were checked; treat every value as what the issuer asserted.
    """

    __slots__ = ("_payload", "_scopes", "_audiences", "header", "_key_fingerprint")

    def __init__(self, payload: Mapping[str, Any], header: Optional[Mapping[str, Any]] = None) -> None:
        self._payload = dict(payload)
        self._scopes: Optional[FrozenSet[str]] = None
        self._audiences: Optional[Tuple[str, ...]] = None
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

    # --- normalised accessors ----------------------------------------------
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
        scopes = self._scopes
        if scopes is None:
            found = _scopes_from(self._payload.get("scope"))
            scp = self._payload.get("scp")
            if scp is not None:
                found = found | _scopes_from(scp)
            scopes = self._scopes = _shared_scope_set(found)
        return scopes

    @property
    def issuer(self) -> Optional[str]:
        iss = self._payload.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def audiences(self) -> Tuple[str, ...]:
        auds = self._audiences
        if auds is None:
            aud = self._payload.get("aud")
            if isinstance(aud, str):
                auds = (aud,)
            elif isinstance(aud, (list, tuple)):
                auds = tuple(a for a in aud if isinstance(a, str))
            else:
                auds = ()
            self._audiences = auds
        return auds

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
