"""The claim checks every validated token goes through, written once
(internal, shared): ``iss`` (exact string), ``aud`` (a string or an array
of strings, one accepted), and the ``exp`` / ``nbf`` / ``iat`` window with
leeway.  The JWT path (oidc_guard.validator) calls them on a verified
payload; an RFC 7662 introspection answer is checked by the same functions
with its own words (:data:`INTROSPECTION`: RFC 7662 section 2.2 makes
``iss``, ``aud`` and ``exp`` optional there).

Each refusal is an :class:`~oidc_guard.errors.InvalidToken` with a stable
reason: ``issuer``, ``audience``, ``expired``, ``not_yet_valid`` or
``claims`` (a claim of the wrong type).  Messages repeat claim values only
through :func:`oidc_guard._jws.show` (bounded, repr-quoted).
"""

from __future__ import annotations

from typing import Any, FrozenSet, Mapping, NamedTuple, Optional, Sequence, Tuple

from ._jws import is_numeric_date, iso, show
from .errors import InvalidToken

__all__ = ["Wording", "JWT", "INTROSPECTION", "check_issuer", "audience_list", "check_audience", "check_times"]


class Wording(NamedTuple):
    """How the refusals of one kind of token are worded (the reasons are
    the same for every kind)."""

    #: "<subject> aud is neither ...", "<subject> exp is not a number ..."
    subject: str
    #: "{subject} aud" in the audience type error
    aud_subject: str
    #: expired; ``{at}`` is the exp as ISO 8601
    expired: str
    #: nbf in the future; ``{at}``
    not_before: str


#: A JWT (access token or ID Token).
JWT = Wording("token", "token", "token expired at {at}", "token not valid before {at}")
#: An RFC 7662 introspection answer.
INTROSPECTION = Wording("introspection", "introspection response",
                        "token expired (introspection exp)", "token not valid yet (introspection nbf)")


def check_issuer(iss: Any, expected: str, *, required: bool = True) -> None:
    """``iss`` equals ``expected`` exactly (RFC 7519 section 4.1.1, OpenID
    Connect Core 3.1.3.7 step 2: no normalisation, no trailing-slash
    tolerance).  Missing: refused when ``required`` (a JWT), else accepted
    (an introspection answer, RFC 7662 section 2.2).  Reason ``issuer``."""
    if iss is None:
        if required:
            raise InvalidToken("token has no iss claim", reason="issuer")
        return
    if iss != expected:
        raise InvalidToken(f"issuer {show(iss, 120)} is not the expected {expected!r}", reason="issuer")


def audience_list(aud: Any, words: Wording = JWT) -> Tuple[str, ...]:
    """``aud`` as a tuple of str (RFC 7519 section 4.1.3: a string or an
    array of strings; absent is the empty tuple).  Anything else: reason
    ``claims``."""
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    if aud is None:
        return ()
    raise InvalidToken(f"{words.aud_subject} aud is neither a string nor an array of strings", reason="claims")


def check_audience(auds: Sequence[str], accepted: FrozenSet[str], expected: Sequence[str], *,
                   empty_is_missing: bool = True) -> None:
    """One of ``auds`` (from :func:`audience_list`) is in ``accepted`` (the
    API's identifiers; ``expected`` the same in configured order, for the
    message).  Reason ``audience``.  ``empty_is_missing``: an empty list is
    worded as "no aud claim" (a JWT); an introspection answer names the
    empty list it sent."""
    if accepted.intersection(auds):
        return
    if not auds and empty_is_missing:
        raise InvalidToken(f"token has no aud claim; expected one of {list(expected)!r}", reason="audience")
    shown = auds[0] if len(auds) == 1 else list(auds)
    raise InvalidToken(f"audience {show(shown, 120)} not accepted; expected one of {list(expected)!r}",
                       reason="audience")


def check_times(payload: Mapping[str, Any], now: float, leeway: float, *, exp_required: bool = True,
                iat_required: bool = False, iat_in_future: bool = True, words: Wording = JWT
                ) -> Tuple[Optional[float], Optional[float]]:
    """The validity window: ``exp`` (RFC 7519 4.1.4: refused once
    ``now > exp + leeway``), ``nbf`` (4.1.5: refused while ``now + leeway <
    nbf``) and ``iat`` (4.1.6: a NumericDate; with ``iat_in_future``,
    refused when more than ``leeway`` ahead of ``now``).  Returns (exp,
    nbf), both checked NumericDates or None when absent.

    ``exp_required``: always for a JWT (RFC 9068 section 2.2 for access
    tokens, OpenID Connect Core section 2 for ID Tokens); an introspection
    answer may omit it.  ``iat_required``: ID Tokens.  Reasons: ``expired``,
    ``not_yet_valid``, ``claims`` (missing, or not a NumericDate).

    The verified-token cache re-checks a hit with the same two expressions
    for exp and nbf, inline (oidc_guard.validator: a call per hit would cost
    more than the rest of the hit)."""
    exp = payload.get("exp")
    if exp is None:
        if exp_required:
            raise InvalidToken(f"{words.subject} has no exp claim", reason="claims")
    elif not is_numeric_date(exp):
        raise InvalidToken(f"{words.subject} exp is not a number in the NumericDate range (RFC 7519 section 2)",
                           reason="claims")
    elif now > exp + leeway:
        raise InvalidToken(words.expired.format(at=iso(exp)), reason="expired")
    nbf = payload.get("nbf")
    if nbf is not None:
        if not is_numeric_date(nbf):
            raise InvalidToken(f"{words.subject} nbf is not a number in the NumericDate range (RFC 7519 section 2)",
                               reason="claims")
        if now + leeway < nbf:
            raise InvalidToken(words.not_before.format(at=iso(nbf)), reason="not_yet_valid")
    iat = payload.get("iat")
    if iat is None:
        if iat_required:
            raise InvalidToken(f"{words.subject} has no iat claim", reason="claims")
    elif not is_numeric_date(iat):
        raise InvalidToken(f"{words.subject} iat is not a number in the NumericDate range (RFC 7519 section 2)",
                           reason="claims")
    elif iat_in_future and iat > now + leeway:
        raise InvalidToken(f"token issued in the future ({iso(iat)})", reason="not_yet_valid")
    return exp, nbf
