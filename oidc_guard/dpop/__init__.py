"""DPoP proof verification (RFC 9449) and stateless server nonces.

Framework-free: :meth:`DPoPVerifier.verify` takes the request method, the
request URL and the request's headers (a mapping or ``(name, value)`` pairs),
never a WSGI environ; the adapters supply them (through
:class:`oidc_guard.auth.Authenticator`, which calls
:meth:`DPoPVerifier.verify_field` with the ``DPoP`` field value).

The order of the checks (RFC 9449 section 4.3) never believes anything the
proof's payload says before the proof's signature is verified:

1. size bound, before any parsing (``max_proof_bytes``);
2. exactly one ``DPoP`` header (4.3 step 1), one JWS in it;
3. JWS compact serialization with strict, canonical base64url (step 2; the
   parser every token goes through, ``oidc_guard._jws``, so one JWS has one spelling);
4. header: ``typ`` is ``dpop+jwt`` (step 4); ``alg`` in the same asymmetric
   allow-list as access tokens, never ``none`` or HS* (step 5); ``jwk`` a
   public key (step 7: no private members), parsed by the very function that
   parses the issuer's JWKS (:func:`oidc_guard.jwks.parse_jwk`: RSA >= 2048
   bits, EC points on their curve, Ed25519), and fitting ``alg``;
5. the signature verifies with that ``jwk`` (step 6);
6. only now the payload: ``htm`` equals the method (step 8); ``htu`` equals
   the request URL after normalisation, query and fragment ignored (step 9,
   RFC 3986 sections 6.2.2 and 6.2.3); ``nonce`` when nonces are on (step
   10); ``iat`` within the window (step 11); ``ath`` equals
   base64url(SHA-256(access token)) (step 12 / 4.2); the RFC 7638 thumbprint
   of ``jwk`` equals the token's ``cnf.jkt`` (step 12 / 6.1);
7. last, ``jti`` is recorded in the replay store (section 11.1): a ``jti``
   seen before within the window is a replay.  Recording last means a proof
   that fails any other check never uses up its ``jti``.

Window: a proof is accepted from ``iat - leeway`` (its ``iat`` may be up to
``leeway`` seconds, default 30, ahead of this server's clock) until
``iat + max_age`` (default 300 s; section 11.1 leaves the choice to the
server).  Its replay record lives exactly as long as the proof could still
be accepted, plus ``leeway`` for clock differences between hosts.

Replay store: anything with ``add(key, value, ttl_seconds) -> bool`` (atomic
add-if-absent: ``True`` when this call stored the key), the interface of
:mod:`oidc_guard.cache`.  The default is :class:`MemoryReplayStore` (one
process).  A :class:`~oidc_guard.cache.RedisCache` makes a proof replayed to
another worker or host fail too.  A store that cannot answer raises a
:class:`~oidc_guard.errors.ProviderError` (503): replay protection can no
longer be promised, so DPoP requests fail closed.  So does a store that
may forget a record before its expiry: a Redis whose ``maxmemory-policy``
evicts keys (anything but ``noeviction``; the store's ``replay_problem()``
reads it at first use and every minute) gets 503 for every DPoP request,
logged once at ERROR, unless the operator accepted the risk by name
(``dpop_accept_evicting_redis=True``).  Keys are a SHA-256 of a
namespace, the key thumbprint and the ``jti``; never a token.

The package: ``verifier`` (the checks above), ``htu`` (the URL
comparison), ``replay`` (the store protocol and the in-process store) and
``nonces``; every name is importable from ``oidc_guard.dpop`` itself.
"""

from __future__ import annotations

from .._b64 import b64url_encode
from .._jws import SEGMENT_TO_STD_OR_BAD as _SEGMENT_TO_STD_OR_BAD
from .htu import normalize_htu
from .nonces import DPoPNonces
from .replay import MemoryReplayStore, ReplayStore, ReplayStoreFull
from .verifier import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_PROOF_BYTES,
    MAX_JTI_LENGTH,
    DPoPProof,
    DPoPVerifier,
    InvalidDPoPProof,
    UseDPoPNonce,
    access_token_hash,
    jwk_thumbprint,
    log,
)

__all__ = [
    "DPoPVerifier",
    "DPoPProof",
    "DPoPNonces",
    "InvalidDPoPProof",
    "UseDPoPNonce",
    "MemoryReplayStore",
    "ReplayStore",
    "ReplayStoreFull",
    "jwk_thumbprint",
    "access_token_hash",
    "normalize_htu",
]
