"""The error hierarchy and its mapping onto RFC 6750 responses.

Every error the library raises is an :class:`OIDCGuardError`.  Each class
carries a stable ``error`` code (RFC 6750 section 3.1) and the HTTP status it
maps to, so the WSGI layer never has to guess:

=====================  =======================  ======
class                  ``error``                status
=====================  =======================  ======
InvalidRequest         invalid_request          400
InvalidToken           invalid_token            401
InsufficientScope      insufficient_scope       403
ProviderError          temporarily_unavailable  503
=====================  =======================  ======

``description`` is written for a developer reading a log or a response body.
It never contains the token itself (RFC 6750 section 5.1: tokens are
credentials and must not leak into logs or error pages).
"""

from __future__ import annotations

import json
from typing import Iterable, List, Optional, Sequence, Tuple

__all__ = [
    "OIDCGuardError",
    "InvalidToken",
    "InsufficientScope",
    "InvalidRequest",
    "ProviderError",
    "ConfigurationError",
    "www_authenticate",
    "join_challenges",
    "error_response",
    "PROVIDER_UNAVAILABLE",
]

#: The ``error_description`` of every 503 a client receives.  The precise
#: reason of a :class:`ProviderError` names internal URLs, hosts and ports
#: (the discovery URL, "Connection refused"); it goes to the log (WARNING,
#: once per outage, from ``oidc_guard.jwks`` / ``oidc_guard.discovery``),
#: never into a response sent to a client.
PROVIDER_UNAVAILABLE = "identity provider temporarily unavailable"


class OIDCGuardError(Exception):
    """Base of every error oidc_guard raises.

    ``reason`` is a stable lowercase code for programs, logs and metrics
    (``error`` stays the RFC 6750 code, ``description`` the prose): a class
    default where the class implies it, or the ``reason=`` given to the
    constructor.  The codes are listed in the error reference (docs/errors.md).
    """

    error: str = "server_error"
    status: int = 500
    reason: str = "internal"

    def __init__(self, description: str, *, reason: Optional[str] = None) -> None:
        super().__init__(description)
        self.description = description
        if reason is not None:
            self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidToken(OIDCGuardError):
    """The token is malformed, expired, revoked, for another audience or
    badly signed (RFC 6750 section 3.1 ``invalid_token``, HTTP 401)."""

    error = "invalid_token"
    status = 401
    # oidc_guard names a precise reason at every place it raises this; the
    # default is only for an InvalidToken raised by code outside it (a
    # custom validator).
    reason = "invalid_token"


class InsufficientScope(OIDCGuardError):
    """The token is valid but lacks a scope the resource needs
    (RFC 6750 section 3.1 ``insufficient_scope``, HTTP 403).

    ``scopes`` are the scopes the resource asked for; they go into the
    ``scope`` attribute of the challenge.
    """

    error = "insufficient_scope"
    status = 403
    reason = "insufficient_scope"

    def __init__(self, description: str, scopes: Iterable[str] = (), *, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)
        self.scopes: Tuple[str, ...] = tuple(scopes)


class InvalidRequest(OIDCGuardError):
    """The request is malformed: a broken ``Authorization`` header, or the
    token sent by more than one method (RFC 6750 section 3.1
    ``invalid_request``, HTTP 400)."""

    error = "invalid_request"
    status = 400
    reason = "invalid_request"


class ProviderError(OIDCGuardError):
    """The identity provider's discovery document or JWKS cannot be used:
    unreachable, slow, malformed, or naming another issuer.

    Maps to HTTP 503 with ``Retry-After``: an outage of the identity provider
    is the server's problem, not the client's, and must never look like a bad
    token (a 401 would make well-behaved clients throw their token away).
    """

    error = "temporarily_unavailable"
    status = 503
    reason = "provider_unavailable"

    def __init__(self, description: str, retry_after: float = 30.0, *, reason: Optional[str] = None) -> None:
        super().__init__(description, reason=reason)
        self.retry_after = max(1, int(retry_after + 0.999))


class ConfigurationError(OIDCGuardError, ValueError):
    """The library was configured wrongly (bad issuer URL, missing audience,
    a forbidden algorithm...).  Raised at construction or ``init_app``, never
    because of a request."""

    error = "server_error"
    status = 500
    reason = "configuration"


# --- RFC 6750 section 3: the WWW-Authenticate challenge ---------------------


def _quote(value: str) -> str:
    """Render ``value`` as an RFC 7230 quoted-string.

    Backslash and double quote are escaped (quoted-pair).  Characters outside
    what RFC 6750 section 3 allows in ``error_description``/``scope``
    (%x20-21 / %x23-5B / %x5D-7E) are replaced so a description can never
    break the header or inject another one (CR/LF).
    """
    out = []
    for ch in value:
        code = ord(ch)
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif 0x20 <= code <= 0x7E:
            out.append(ch)
        else:
            out.append("?")
    return '"' + "".join(out) + '"'


def www_authenticate(
    realm: Optional[str] = None,
    error: Optional[str] = None,
    description: Optional[str] = None,
    scope: Optional[Iterable[str]] = None,
    *,
    scheme: str = "Bearer",
    algs: Optional[str] = None,
) -> str:
    """Build the value of a ``WWW-Authenticate: Bearer`` challenge (or, with
    ``scheme="DPoP"``, of a DPoP challenge, RFC 9449 section 7.1, whose
    ``algs`` lists the proof algorithms accepted).

    RFC 6750 section 3: when the request carried no token at all the
    challenge SHOULD NOT include an error code, so pass ``error=None`` then.
    """
    params: List[str] = []
    if realm is not None:
        params.append("realm=" + _quote(realm))
    if error is not None:
        params.append("error=" + _quote(error))
        if description:
            params.append("error_description=" + _quote(description))
    if scope:
        params.append("scope=" + _quote(" ".join(scope)))
    if algs:
        params.append("algs=" + _quote(algs))
    if not params:
        return scheme
    return scheme + " " + ", ".join(params)


def join_challenges(challenges: Sequence[str]) -> str:
    """One ``WWW-Authenticate`` field value holding several challenges,
    comma-separated, in the order given (the one that matters first).

    RFC 9110 section 11.6.1: ``WWW-Authenticate = #challenge``, so one
    field may carry several challenges, and it is equivalent to repeating
    the field (section 5.3: a recipient may combine repeated fields into
    one list).  One field is the layout every reader gets right: readers
    that keep the first of repeated fields (werkzeug's ``headers[...]``,
    so Flask's test client), the last (webtest's ``headers.get``, a plain
    ``dict`` of headers) or join them (requests / urllib3) all see the same
    value, starting with the first challenge.
    """
    return ", ".join(challenges)


def error_response(
    exc: Optional[OIDCGuardError],
    realm: Optional[str] = None,
    *,
    status: Optional[int] = None,
) -> Tuple[str, List[Tuple[str, str]], bytes]:
    """Turn an error (or ``None`` for "no token sent") into a WSGI response.

    Returns ``(status_line, headers, body)``.  A :class:`ProviderError`
    answers 503 with ``Retry-After`` and the fixed description
    :data:`PROVIDER_UNAVAILABLE`, whatever its own description says.
    ``None`` means the request had
    no credentials: 401 with a bare challenge and no ``error`` attribute
    (RFC 6750 section 3.1, last paragraph).
    """
    if exc is None:
        code = status or 401
        challenge = www_authenticate(realm)
        body = {
            "error": "unauthorized",
            "error_description": "a bearer token is required",
        }
    else:
        code = status or exc.status
        scope = exc.scopes if isinstance(exc, InsufficientScope) else None
        if isinstance(exc, ProviderError):
            # Not a token problem: no "invalid_token" that would make the
            # client discard a good token.
            challenge = None
        else:
            challenge = www_authenticate(realm, exc.error, exc.description, scope)
        # A ProviderError's description is for the operator (it names the
        # provider's internal URLs); clients get a fixed sentence.
        description = PROVIDER_UNAVAILABLE if isinstance(exc, ProviderError) else exc.description
        body = {"error": exc.error, "error_description": description}
    headers: List[Tuple[str, str]] = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
    ]
    if challenge is not None:
        headers.append(("WWW-Authenticate", challenge))
    if isinstance(exc, ProviderError):
        headers.append(("Retry-After", str(exc.retry_after)))
    payload = json.dumps(body).encode("utf-8")
    headers.append(("Content-Length", str(len(payload))))
    return _STATUS_LINES.get(code, f"{code} Error"), headers, payload


_STATUS_LINES = {
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
