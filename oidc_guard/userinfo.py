"""The UserInfo client (OpenID Connect Core 1.0 section 5.3).

``TokenValidator.userinfo(access_token)`` GETs the discovery document's
``userinfo_endpoint`` with the token (RFC 6750 section 2.1 ``Authorization:
Bearer``) and returns the profile as a read-only mapping.

Rules:

* The access token is validated first (locally or by introspection, with the
  caches of the validator): a token this API would refuse is never sent on.
* 5.3.2: the response is JSON (``application/json``), or a signed JWT
  (``application/jwt``) verified with the issuer's keys (JWKS, the same
  algorithm allow-list; ``iss``, when present, must be the issuer; a JWT
  that fails either is ``InvalidToken``).  An
  encrypted (JWE) response is not supported (``ProviderError``).
* 5.3.2: ``sub`` MUST be present, and equal the access token's ``sub`` when
  the token names one; otherwise ``InvalidToken`` (a substituted profile is
  a token problem, not an outage).
* A sender-constrained token is never sent on: a DPoP-bound token
  (``cnf.jkt``) is accepted by the UserInfo endpoint only with a DPoP proof
  made with the client's private key (RFC 9449 section 7.1), and a
  certificate-bound token (``cnf["x5t#S256"]``) only over TLS with the
  client's certificate (RFC 8705 section 3); this API holds neither, so the
  endpoint would answer 401 (npm oidc-provider: "failed jkt verification").
  ``InvalidToken`` is raised at once, with no network request, saying so.
* 5.3.3: the endpoint answering 401 -> ``InvalidToken`` (the provider no
  longer accepts the token); 403 -> ``InsufficientScope`` (the token lacks
  the ``openid`` scope); unreachable, timing out, 5xx or anything else ->
  ``ProviderError`` (503).
* Transport: oidc_guard.http (timeout, size limit, https except loopback,
  same-origin redirects only).
* Cached per token (SHA-256 key, in process only: a profile is personal data
  and stays out of Redis) until ``min(token exp, now + ttl)``; bounded.
* At most ``max_in_flight`` calls at once (default 4, as introspection); a
  caller over the bound waits up to ``queue_timeout`` seconds for a slot,
  then gets ``ProviderError`` (503, Retry-After 1): a burst of requests for
  uncached tokens cannot turn the API into an amplifier against the provider.
"""

from __future__ import annotations

import hashlib
import threading
from types import MappingProxyType
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Protocol, Tuple

from ._bounded import Fifo
from .claims import Claims, required_binding
from .discovery import ProviderMetadata
from .errors import InsufficientScope, InvalidToken, ProviderError
from .http import check_url, decode_json_object, fetch
from .jwks import VerifyKey

__all__ = ["UserInfoClient", "MAX_USERINFO_BYTES", "sender_constrained"]

MAX_USERINFO_BYTES = 256 * 1024
_USERINFO_TYP = frozenset({"jwt", "userinfo+jwt"})


class _Validator(Protocol):
    """What a :class:`UserInfoClient` uses of the
    :class:`~oidc_guard.TokenValidator` it serves (typed here, so that this
    module does not import the validator that imports it)."""

    issuer: str
    allow_http: bool
    http_timeout: float
    metadata: ProviderMetadata
    _clock: Callable[[], float]

    def validate_access_token(self, token: Any) -> Claims: ...

    def _verify_signature(self, token: Any, allowed_typ: FrozenSet[str], what: str, share: bool = False
                          ) -> Tuple[Mapping[str, Any], Dict[str, Any], VerifyKey, str]: ...


def sender_constrained(claims: Mapping[str, Any]) -> Optional[str]:
    """Why UserInfo cannot be fetched with the token of ``claims``, or
    ``None``: a sender-constrained token can only be presented by the holder
    of the client's key (see the module doc).  Whether the token is bound
    is ``oidc_guard.claims.required_binding()``, as for the middleware
    (a ``cnf`` that is not an object raises its ``InvalidToken``)."""
    binding = required_binding(claims)
    if binding == "dpop":
        # RFC 9449 section 7.1: a DPoP-bound token goes with a proof signed
        # by the client's private key, which this API does not have.
        return ("UserInfo is not available for a DPoP-bound token: the UserInfo endpoint accepts it only "
                "with a DPoP proof made with the client's own key (RFC 9449 section 7), which this API "
                "does not hold; use a token that is not sender-constrained, or put the profile claims "
                "in the access token")
    if binding == "mtls":
        # RFC 8705 section 3: only over TLS with the client's certificate.
        return ("UserInfo is not available for a certificate-bound token: the UserInfo endpoint accepts "
                "it only over TLS with the client's certificate (RFC 8705 section 3), which this API "
                "does not hold; use a token that is not sender-constrained, or put the profile claims "
                "in the access token")
    return None


class UserInfoClient:
    """UserInfo for one :class:`~oidc_guard.TokenValidator` (see module doc)."""

    def __init__(self, validator: _Validator, *, ttl: float = 60.0, max_entries: int = 10000,
                 max_in_flight: int = 4, queue_timeout: float = 1.0) -> None:
        self._v = validator
        self.ttl = float(ttl)
        self.max_in_flight = max(1, int(max_in_flight))
        self.queue_timeout = float(queue_timeout)
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._max = max(1, int(max_entries))
        # SHA-256(token) -> (profile, until): a Fifo (oldest eighth dropped
        # when full); each entry carries its own expiry, checked on a hit
        self._cache: Fifo[bytes, Tuple[Mapping[str, Any], float]] = Fifo(self._max)
        self.calls = 0

    def endpoint(self) -> str:
        doc = self._v.metadata.document()
        url = doc.get("userinfo_endpoint")
        if not isinstance(url, str) or not url:
            raise ProviderError(f"discovery document at {self._v.metadata.url} names no userinfo_endpoint")
        check_url(url, self._v.allow_http, "userinfo_endpoint")
        return url

    def get(self, access_token: Any, claims: Optional[Claims] = None) -> Mapping[str, Any]:
        if claims is None:
            claims = self._v.validate_access_token(access_token)
        refusal = sender_constrained(claims)
        if refusal is not None:
            raise InvalidToken(refusal, reason="binding")
        assert isinstance(access_token, str)  # validate_access_token refused anything else
        digest = hashlib.sha256(access_token.encode("utf-8", "surrogatepass")).digest()
        now = self._v._clock()
        hit = self._cache.data.get(digest)
        if hit is not None and now < hit[1]:
            return hit[0]
        profile = self._fetch(access_token, claims)
        until = now + self.ttl
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            until = min(until, float(exp))
        if self.ttl > 0 and until > now:
            self._cache.put(digest, (profile, until))
        return profile

    def _fetch(self, access_token: str, claims: Claims) -> Mapping[str, Any]:
        url = self.endpoint()
        if not self._slots.acquire(timeout=self.queue_timeout):
            raise ProviderError(
                f"too many UserInfo calls in flight (limit {self.max_in_flight}); try again", retry_after=1)
        try:
            self.calls += 1
            raw = fetch(url, timeout=self._v.http_timeout, max_bytes=MAX_USERINFO_BYTES,
                        allow_http=self._v.allow_http, what="userinfo endpoint",
                        headers={"Authorization": "Bearer " + access_token},
                        accept="application/json, application/jwt", kind="userinfo")
        finally:
            self._slots.release()
        if raw.status == 401:
            raise InvalidToken("the UserInfo endpoint refused the access token (HTTP 401)", reason="inactive")
        if raw.status == 403:
            raise InsufficientScope("the UserInfo endpoint needs a token with the openid scope (HTTP 403)",
                                    scopes=("openid",))
        if raw.status != 200:
            raise ProviderError(f"userinfo endpoint {raw.url}: HTTP {raw.status}", retry_after=5)
        if raw.content_type == "application/jwt":
            profile = self._from_jwt(raw.body)
        else:
            profile = decode_json_object(raw, "userinfo endpoint")
        # OIDC Core 5.3.2: sub MUST be present and, when the token says whose
        # it is, be that user (token substitution).
        sub = profile.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("UserInfo response has no sub (OpenID Connect Core 5.3.2)", reason="userinfo")
        expected = claims.subject
        if expected is not None and sub != expected:
            raise InvalidToken("UserInfo sub is not the access token's sub (OpenID Connect Core 5.3.2)", reason="userinfo")
        return MappingProxyType(dict(profile))

    def _from_jwt(self, body: bytes) -> Dict[str, Any]:
        try:
            text = body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ProviderError("userinfo endpoint: application/jwt body is not ASCII") from None
        if text.count(".") == 4:
            raise ProviderError("userinfo endpoint: encrypted (JWE) UserInfo responses are not supported")
        # A signature that does not verify with the issuer's keys is refused
        # like a bad token (InvalidToken): nothing in it is believed.
        _header, payload, _key, _alg = self._v._verify_signature(text, _USERINFO_TYP, "UserInfo JWT")
        iss = payload.get("iss")
        if iss is not None and iss != self._v.issuer:
            raise InvalidToken(f"signed UserInfo names issuer {str(iss)[:120]!r}, not {self._v.issuer!r}", reason="issuer")
        return payload
