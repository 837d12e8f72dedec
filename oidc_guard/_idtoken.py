"""The ID Token rules of OpenID Connect Core 1.0 that an access token does
not have (internal): section 3.1.3.7 (code flow), 3.2.2.11 (implicit) and
3.3.2.12 (hybrid): ``aud`` contains the client, ``azp``, ``sub``,
``nonce``, ``at_hash`` / ``c_hash`` (3.1.3.6, 3.3.2.11) and ``auth_time``
with ``max_age``.  Run by :meth:`oidc_guard.TokenValidator.validate_id_token`
on a payload whose signature, ``iss`` and times were already checked.
"""

from __future__ import annotations

import hmac
from typing import Any, Dict, Optional

from ._b64 import b64url_encode
from ._checks import audience_list
from ._jws import is_numeric_date, iso, show
from .errors import InvalidToken
from .jwks import HASH_FOR_ALG

__all__ = ["check_id_token", "check_half_hash", "ID_TOKEN_ONLY_CLAIMS"]

#: Claims only an ID Token carries (OpenID Connect Core 2: nonce; 3.1.3.6 /
#: 3.3.2.11: at_hash, c_hash): with verify_audience=False they are how an ID
#: Token presented as an access token is recognised (RFC 9068 section 4).
ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash")


def check_id_token(payload: Dict[str, Any], alg: str, client_id: str, *, now: float, leeway: float,
                   nonce: Optional[str] = None, access_token: Optional[str] = None,
                   code: Optional[str] = None, max_age: Optional[float] = None) -> None:
    """The client-side rules of an ID Token for ``client_id``; InvalidToken
    (reasons ``audience``, ``authorized_party``, ``claims``, ``nonce``,
    ``token_hash``, ``auth_time``) when one fails."""
    auds = audience_list(payload.get("aud"))
    if client_id not in auds:
        raise InvalidToken(f"ID Token audience {show(list(auds), 120)} does not contain client_id {client_id!r}",
                           reason="audience")
    # 3.1.3.7 steps 4-5: several audiences need azp; azp, when present, is us.
    azp = payload.get("azp")
    if len(auds) > 1 and azp is None:
        raise InvalidToken("ID Token has several audiences but no azp claim", reason="authorized_party")
    if azp is not None and azp != client_id:
        raise InvalidToken(f"ID Token azp {show(azp)} is not client_id {client_id!r}", reason="authorized_party")

    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("ID Token has no sub claim", reason="claims")

    # 3.1.3.7 step 11: the nonce sent in the authentication request.
    if nonce is not None:
        got = payload.get("nonce")
        if not isinstance(got, str):
            raise InvalidToken("ID Token has no nonce, but one was sent in the request", reason="nonce")
        if not hmac.compare_digest(got.encode(), nonce.encode()):
            raise InvalidToken("ID Token nonce does not match the nonce sent in the request", reason="nonce")

    if access_token is not None:
        check_half_hash(payload, "at_hash", access_token, alg)
    if code is not None:
        check_half_hash(payload, "c_hash", code, alg)

    # 3.1.3.7 step 13: auth_time when max_age was requested.
    if max_age is not None:
        auth_time = payload.get("auth_time")
        if not is_numeric_date(auth_time):
            raise InvalidToken("ID Token has no auth_time, but max_age was requested", reason="auth_time")
        assert auth_time is not None  # is_numeric_date says it is a finite number
        if now > auth_time + max_age + leeway:
            raise InvalidToken(f"authentication at {iso(auth_time)} is older than max_age {max_age:g} s",
                               reason="auth_time")


def check_half_hash(payload: Dict[str, Any], claim: str, value: str, alg: str) -> None:
    """OIDC Core 3.1.3.6 (at_hash) / 3.3.2.11 (c_hash): base64url of the
    left-most half of the hash of the ASCII octets, hash per alg."""
    what = "access token" if claim == "at_hash" else "code"
    got = payload.get(claim)
    if not isinstance(got, str):
        raise InvalidToken(f"ID Token has no {claim}, but the {what} must be bound to it", reason="token_hash")
    digest = HASH_FOR_ALG[alg](value.encode("ascii", "replace")).digest()
    expected = b64url_encode(digest[: len(digest) // 2])
    if not hmac.compare_digest(got.encode("ascii", "replace"), expected.encode("ascii")):
        raise InvalidToken(f"ID Token {claim} does not match the {what}", reason="token_hash")
