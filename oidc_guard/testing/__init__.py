"""A local OpenID Provider stand-in for tests and for the development demo.

**This module is a test and development tool. Never use it in production.**

:class:`LocalIssuer` runs a real HTTP server (stdlib ``ThreadingHTTPServer``
in a daemon thread) on a loopback address, so code under test goes through
its real discovery and JWKS fetch path:

* ``GET /.well-known/openid-configuration`` - the discovery document
  (OpenID Connect Discovery 1.0 section 3), merged with
  :attr:`LocalIssuer.discovery_overrides`;
* ``GET /jwks`` - the public keys (RFC 7517), with
  ``Cache-Control: max-age=<jwks_max_age>``;
* fault injection for both (:meth:`LocalIssuer.set_fault`), request counters
  (:attr:`LocalIssuer.fetch_counts`), and outages (:meth:`LocalIssuer.stop`
  then :meth:`LocalIssuer.start` again on the same port);
* token minting: :meth:`LocalIssuer.mint` (access tokens, RFC 9068 shape by
  default) and :meth:`LocalIssuer.mint_id_token` (OIDC Core 2 / 3.1.3.6 /
  3.2.2.9), with any header or claim changed so tests can craft attacks;
* a *development-only* provider for the demo: ``/authorize`` (implicit
  ``id_token token`` / ``id_token`` and authorization code with PKCE, behind
  a simple login page with hard-coded users), ``/token``
  (``client_credentials`` and ``authorization_code``) and ``/userinfo``.

Keys: RSA (RS256/384/512, PS256/384/512; 2048 bits), EC P-256 (ES256),
P-384 (ES384), P-521 (ES512) and Ed25519 (EdDSA) are generated with
``cryptography``. Because RSA generation is slow, generated private keys are
kept in a small module-level pool and **may be shared between issuers in one
process** (each issuer still publishes its own random ``kid`` values, and the
keys *within* one issuer are always distinct). Pass ``fresh_keys=True`` when a
test needs key material that no other issuer in the process holds.

Importing this package is cheap: no key is generated, and neither flask nor
pytest is imported. The package is also a pytest plugin (entry point
``pytest11: oidc_guard = oidc_guard.testing``) that provides the fixtures
``oidc_issuer`` and ``oidc_issuer_factory``.

Modules (what tests use is re-exported here):

* ``oidc_guard.testing.jose`` - base64url, compact JSON, ``OMIT``;
* ``oidc_guard.testing.keys`` - supported algs, key generation and pool,
  JWKs, signing (``sign_raw``, with PyJWT where it can);
* ``oidc_guard.testing.keyring`` - ``KeyRing``: an issuer's signing keys,
  the JWKS, rotation;
* ``oidc_guard.testing.tokens`` - ``Minter`` (a key ring that mints access
  tokens, ID Tokens and reference tokens, answers introspection and
  revocation) and ``token_hash``, ``forge_token``, ``hmac_token`` for
  attack tests;
* ``oidc_guard.testing.accounts`` - the development provider's users and
  clients (demo defaults, ``INTROSPECTION_CLIENT_ID``);
* ``oidc_guard.testing.faults`` - fault injection (``set_fault``);
* ``oidc_guard.testing.server`` - the loopback HTTP server;
* ``oidc_guard.testing.endpoint`` - what the endpoints build on: the
  ``DevProvider`` protocol, the request handler, client authentication;
* ``oidc_guard.testing.provider`` - the HTTP endpoints (routing table
  ``ENDPOINTS``), in ``provider_documents`` (discovery, JWKS),
  ``provider_auth`` (login page, ``/authorize``, ``/token``) and
  ``provider_tokens`` (``/userinfo``, ``/introspect``, ``/revoke``);
* ``oidc_guard.testing.issuer`` - ``LocalIssuer``, which puts them together;
* ``oidc_guard.testing.dpop`` - ``DPoPKey``, a client's DPoP key that makes
  proofs (RFC 9449) for tests;
* ``oidc_guard.testing.plugin`` - the pytest plugin;
* ``oidc_guard.testing.devtoken`` - ``python -m oidc_guard.testing token``.

Example::

    from oidc_guard import TokenValidator
    from oidc_guard.testing import LocalIssuer

    with LocalIssuer(algs=("RS256", "ES256")) as iss:
        v = TokenValidator(issuer=iss.issuer, audience="api://contacts")
        v.validate_access_token(iss.mint(scope="contacts"))
        iss.rotate()                       # new signing key, old one still published
        iss.set_fault("jwks", status=503)  # the JWKS endpoint now fails
        iss.stop()                         # outage: connections refused
        iss.start()                        # back, same URL
        iss.clear_faults()

    def test_api(oidc_issuer):             # pytest fixture from the plugin
        token = oidc_issuer.mint(scope=["contacts"], subject=None)
        ...
"""


from .accounts import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET
from .dpop import DPoPKey
from .issuer import LocalIssuer
from .jose import OMIT, b64url_decode, b64url_encode
from .keys import KEY_POOL as _KEY_POOL
from .keys import SUPPORTED_ALGS, sign_raw
from .keys import jws_signature as _sign
from .plugin import pytest_configure
from .tokens import forge_token, hmac_token, token_hash

__all__ = [
    "LocalIssuer",
    "INTROSPECTION_CLIENT_ID",
    "INTROSPECTION_CLIENT_SECRET",
    "DPoPKey",
    "OMIT",
    "SUPPORTED_ALGS",
    "token_hash",
    "forge_token",
    "hmac_token",
    "sign_raw",
    "b64url_encode",
    "b64url_decode",
]

# Also importable as before the split (used by tests): ``_sign`` (the
# issuer's signer), ``_KEY_POOL`` (the shared key pool) and
# ``pytest_configure`` (the hook the pytest11 entry point finds here).
_PRIVATE_REEXPORTS = (_sign, _KEY_POOL, pytest_configure)
