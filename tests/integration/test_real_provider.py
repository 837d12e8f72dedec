"""oidc_guard against a real, third-party OpenID Provider.

The provider is panva's ``oidc-provider`` (OpenID Certified) in two pinned
releases, 7.14.3 and 9.13.3 (scripts/oidc-provider*/package.json), both
configured by scripts/oidc-provider/interop.mjs and started on 127.0.0.1 by
scripts/provider.py; every test taking ``real_op`` runs against both. Every
token here was minted by that provider: nothing is faked on the provider
side. Flows proven:

* client credentials (RFC 6749 4.4) with RFC 8707 resource indicators and
  RFC 9068 JWT access tokens, RS256 and ES256;
* authorization code with PKCE (RFC 7636, S256) and client_secret_basic,
  driven through the provider's development login screen with plain HTTP;
  ID Tokens signed RS256 and ES256;
* implicit ``id_token token`` (OIDC Core 3.2), ID Token with nonce and
  at_hash (7.x; 9.x has no such response type: its public ``spa`` client
  uses code + PKCE instead);
* rejection of wrong-audience, tampered, unsigned, HS256-confused and
  expired tokens, the issuer equality check, key rotation (OIDC Core 10.1.1)
  across a provider restart with new keys, and an outage (503, not 401).
"""

import json
import time

import pytest

from oidc_guard import ConfigurationError, InvalidToken, ProviderError, TokenValidator

from . import flows
from .flows import (API, SERVER_APP, SERVER_APP_ES, SERVER_APP_REDIRECT, SPA, SPA_REDIRECT, SYNC, WORKER,
                    cc_token, code_flow, implicit_flow)

pytestmark = pytest.mark.integration


def tamper_payload(token, **changes):
    """Same header and signature, payload edited: the signature no longer fits."""
    h, p, s = token.split(".")
    payload = json.loads(flows.b64url_decode(p))
    payload.update(changes)
    p2 = flows.b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    return ".".join((h, p2, s))


# --------------------------------------------------------------------------- discovery
def test_discovery_and_jwks_from_the_real_provider(real_op):
    doc = real_op.discovery
    assert doc["issuer"] == real_op.issuer
    assert doc["jwks_uri"].startswith(real_op.issuer + "/")
    jwks = flows.get_json(doc["jwks_uri"])
    kinds = sorted((k["kty"], k.get("alg")) for k in jwks["keys"])
    assert kinds == [("EC", "ES256"), ("RSA", "RS256")]
    assert all("d" not in k for k in jwks["keys"]), "private key material published"

    # The validator fetches the same documents itself on first use, and the
    # issuer equality check (OIDC Discovery 4.3) passes for the exact issuer.
    v = TokenValidator(real_op.issuer, audience=API)
    token = cc_token(real_op, WORKER, "wte")
    kid = flows.jose_parts(token)[0]["kid"]
    assert kid in {k["kid"] for k in jwks["keys"]}
    claims = v.validate_access_token(token)
    assert claims.issuer == real_op.issuer


def test_issuer_must_match_discovery_exactly(real_op):
    # "localhost" reaches the same server, but the provider calls itself
    # 127.0.0.1: the start-up check must refuse the configuration, and no
    # token of that provider may be accepted for another issuer string.
    # The start-up check says so; a token the real provider signed names its
    # own issuer, so the mistyped validator refuses it as a foreign token
    # (InvalidToken naming the issuer) and never accepts it.
    token = cc_token(real_op, WORKER, "wte")
    for mistyped in (real_op.issuer.replace("127.0.0.1", "localhost"), real_op.issuer + "/"):
        validator = TokenValidator(mistyped, audience=API)
        with pytest.raises(ConfigurationError, match="must be identical"):
            validator.check()
        with pytest.raises(InvalidToken, match="not by the trusted issuer"):
            validator.validate_access_token(token)


# --------------------------------------------------------------------------- client credentials
def test_client_credentials_token_validates(real_op, record_shape):
    token = cc_token(real_op, WORKER, "wte")
    shape = record_shape(real_op, "client_credentials wte-worker RS256", token)
    claims = TokenValidator(real_op.issuer, audience=API).validate_access_token(token)

    assert claims.header["typ"] == "at+jwt"  # RFC 9068 2.1
    assert claims.header["alg"] == "RS256"
    assert claims["scope"] == "wte" and shape["scope_format"] == "space-delimited string"
    assert claims.scopes == frozenset({"wte"})
    assert claims.audiences == (API,)
    assert claims["aud"] == API  # a string, not a list
    # RFC 9068 2.2: with no resource owner, sub is the client id.
    assert claims.subject == "wte-worker"
    assert claims.client_id == "wte-worker"
    assert claims.is_client_token
    assert claims.issuer == real_op.issuer
    assert 0 < claims.expires_at.timestamp() - time.time() <= 600 + 5


def test_client_credentials_several_scopes_and_es256(real_op, record_shape):
    token = cc_token(real_op, SYNC, "contacts coordinate", resource="api://contacts-es")
    record_shape(real_op, "client_credentials contacts-sync ES256", token)
    claims = TokenValidator(real_op.issuer, audience="api://contacts-es").validate_access_token(token)
    assert claims.header["alg"] == "ES256"
    assert claims.scopes == frozenset({"contacts", "coordinate"})
    assert claims["scope"] in ("contacts coordinate", "coordinate contacts")
    assert claims.subject == claims.client_id == "contacts-sync"


def test_client_credentials_without_resource_gets_the_default_api(real_op):
    # The example worker sends no `resource`; interop.mjs's defaultResource
    # picks api://contacts, so its token is accepted by the contacts API.
    token = cc_token(real_op, WORKER, "wte", resource=None)
    claims = TokenValidator(real_op.issuer, audience=API).validate_access_token(token)
    assert claims.audiences == (API,)


# --------------------------------------------------------------------------- authorization code + PKCE
def test_authorization_code_with_pkce(real_op, record_shape):
    body, nonce, code = code_flow(real_op)
    assert body["token_type"].lower() == "bearer"
    v = TokenValidator(real_op.issuer, audience=API)

    id_claims_unbound = v.validate_id_token(body["id_token"], client_id="server-app", nonce=nonce)
    assert id_claims_unbound.subject == "alice"
    assert "c_hash" not in id_claims_unbound  # c_hash only in hybrid / front-channel id_tokens
    if "at_hash" in id_claims_unbound:
        # OIDC Core 3.1.3.6: at_hash is optional in the code flow; when present it must fit.
        v.validate_id_token(body["id_token"], client_id="server-app", nonce=nonce,
                            access_token=body["access_token"])
        with pytest.raises(InvalidToken):
            v.validate_id_token(body["id_token"], client_id="server-app", nonce=nonce,
                                access_token=cc_token(real_op, WORKER, "wte"))
    # Asking for a c_hash binding the token does not have must fail.
    with pytest.raises(InvalidToken):
        v.validate_id_token(body["id_token"], client_id="server-app", nonce=nonce, code=code)

    access = v.validate_access_token(body["access_token"])
    record_shape(real_op, "authorization_code server-app user alice", body["access_token"])
    assert access.header["typ"] == "at+jwt"
    assert access.subject == "alice"
    assert access.client_id == "server-app"
    assert not access.is_client_token
    assert access.audiences == (API,)
    # Only the resource's scopes end up in a resource's access token.
    assert access.scopes == frozenset({"contacts"})


def test_authorization_code_all_es256(real_op):
    # ID Token signed ES256 (client metadata), access token for an ES256 resource.
    body, nonce, _code = code_flow(real_op, resource="api://contacts-es", client=SERVER_APP_ES)
    v = TokenValidator(real_op.issuer, audience="api://contacts-es", algorithms=["ES256"])
    id_claims = v.validate_id_token(body["id_token"], client_id="server-app-es", nonce=nonce)
    assert id_claims.header["alg"] == "ES256"
    if "at_hash" in id_claims:
        # at_hash for ES256 is the left half of SHA-256 (OIDC Core 3.1.3.6).
        v.validate_id_token(body["id_token"], client_id="server-app-es", nonce=nonce,
                            access_token=body["access_token"])
    access = v.validate_access_token(body["access_token"])
    assert access.header["alg"] == "ES256"
    assert access.subject == "alice" and access.client_id == "server-app-es"
    # An RS256-only validator refuses the same tokens before looking for a key.
    rs_only = TokenValidator(real_op.issuer, audience="api://contacts-es", algorithms=["RS256"])
    with pytest.raises(InvalidToken, match="ES256"):
        rs_only.validate_access_token(body["access_token"])


def test_id_token_checks_against_real_tokens(real_op):
    # max_age in the request makes the provider include auth_time (OIDC Core 3.1.2.1).
    body, nonce, _code = code_flow(real_op, extra={"max_age": "3600"})
    v = TokenValidator(real_op.issuer, audience=API)
    with pytest.raises(InvalidToken, match="nonce"):
        v.validate_id_token(body["id_token"], client_id="server-app", nonce="not-the-nonce")
    with pytest.raises(InvalidToken, match="audience"):
        v.validate_id_token(body["id_token"], client_id="spa", nonce=nonce)
    with pytest.raises(InvalidToken):
        # An ID Token is not an access token for this API (aud is the client).
        v.validate_access_token(body["id_token"])
    # max_age (OIDC Core 3.1.2.1): the login just happened, so an hour passes.
    claims = v.validate_id_token(body["id_token"], client_id="server-app", nonce=nonce, max_age=3600)
    assert isinstance(claims["auth_time"], int)


def test_pkce_is_enforced_by_the_provider(real_op):
    # Sanity check of the provider configuration the other tests rely on.
    verifier, challenge = flows.pkce_pair()
    params = dict(client_id=SERVER_APP[0], response_type="code", redirect_uri=SERVER_APP_REDIRECT,
                  scope="openid contacts", state="s", nonce="n", resource=API,
                  code_challenge=challenge, code_challenge_method="S256")
    redirected = flows.DevLoginBrowser().authorize(
        flows.authorization_url(real_op.authorization_endpoint, **params), SERVER_APP_REDIRECT)
    code = flows.response_params(redirected, "query")["code"]
    status, body = flows.token_request(real_op.token_endpoint, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": SERVER_APP_REDIRECT,
        "code_verifier": flows.pkce_pair()[0], "resource": API}, *SERVER_APP)
    assert status == 400 and body.get("error") == "invalid_grant", body


# --------------------------------------------------------------------------- browser client (spa)
def test_implicit_id_token_token(real_op, record_shape):
    if not real_op.implicit_id_token_token:
        pytest.skip("%s has no response_type 'id_token token' (removed in oidc-provider 8.0.0); "
                    "its spa client uses code + PKCE, see test_spa_code_flow_with_pkce" % real_op.version)
    answer, nonce = implicit_flow(real_op)
    assert answer["token_type"].lower() == "bearer"
    v = TokenValidator(real_op.issuer, audience=API)
    # OIDC Core 3.2.2.11: nonce required, at_hash required with "id_token token".
    id_claims = v.validate_id_token(answer["id_token"], client_id="spa", nonce=nonce,
                                    access_token=answer["access_token"])
    assert "at_hash" in id_claims
    assert id_claims.subject == "alice"
    with pytest.raises(InvalidToken, match="at_hash"):
        v.validate_id_token(answer["id_token"], client_id="spa", nonce=nonce,
                            access_token=cc_token(real_op, WORKER, "wte"))

    access = v.validate_access_token(answer["access_token"])
    record_shape(real_op, "implicit spa user alice", answer["access_token"])
    assert access.header["typ"] == "at+jwt"
    assert access.subject == "alice" and access.client_id == "spa"
    assert access.audiences == (API,)  # the SPA sent no resource: the default API
    assert access.scopes == frozenset({"contacts", "wte", "coordinate"})
    assert set(answer.get("scope", "").split()) >= {"contacts", "wte", "coordinate"}


def test_spa_code_flow_with_pkce(real_op):
    if real_op.implicit_id_token_token:
        pytest.skip("%s registers spa for the implicit flow (test_implicit_id_token_token)" % real_op.version)
    # A public browser client: no secret, PKCE instead (RFC 7636, RFC 9700 2.1.1).
    body, nonce, _code = code_flow(real_op, scope="openid profile contacts wte coordinate", resource=API,
                                   client=SPA, redirect_uri=SPA_REDIRECT)
    v = TokenValidator(real_op.issuer, audience=API)
    id_claims = v.validate_id_token(body["id_token"], client_id="spa", nonce=nonce)
    assert id_claims.subject == "alice"
    access = v.validate_access_token(body["access_token"])
    assert access.subject == "alice" and access.client_id == "spa"
    assert access.scopes == frozenset({"contacts", "wte", "coordinate"})


# --------------------------------------------------------------------------- negatives
def test_token_for_another_audience_is_rejected(real_op):
    token = cc_token(real_op, WORKER, "wte", resource="api://other")
    assert flows.jose_parts(token)[1]["aud"] == "api://other"
    v = TokenValidator(real_op.issuer, audience=API)
    with pytest.raises(InvalidToken, match="audience"):
        v.validate_access_token(token)
    # The same provider, keys and signature are fine for the API it is for.
    assert TokenValidator(real_op.issuer, audience="api://other").validate_access_token(token).audiences == (
        "api://other",)


def test_tampered_tokens_are_rejected(real_op):
    token = cc_token(real_op, WORKER, "wte")
    v = TokenValidator(real_op.issuer, audience=API)
    v.validate_access_token(token)  # the original is good (and is now cached)

    with pytest.raises(InvalidToken, match="signature"):
        v.validate_access_token(tamper_payload(token, scope="wte contacts"))
    with pytest.raises(InvalidToken, match="signature"):
        v.validate_access_token(tamper_payload(token, sub="alice"))
    h, p, s = token.split(".")
    sig = bytearray(flows.b64url_decode(s))
    sig[len(sig) // 2] ^= 0x01
    with pytest.raises(InvalidToken, match="signature"):
        v.validate_access_token(".".join((h, p, flows.b64url_encode(bytes(sig)))))

    # alg "none" with the provider's real claims (RFC 8725 2.1).
    none_header = flows.b64url_encode(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    with pytest.raises(InvalidToken):
        v.validate_access_token(none_header + "." + p + ".")
    with pytest.raises(InvalidToken):
        v.validate_access_token(none_header + "." + p + "." + s)


def test_hs256_signed_with_the_public_key_is_rejected(real_op):
    # The classic key-confusion attack (RFC 8725 2.1): sign with HMAC using
    # the provider's *public* RSA key bytes as the secret.
    import hashlib
    import hmac

    token = cc_token(real_op, WORKER, "wte")
    header, _payload = flows.jose_parts(token)
    jwks = flows.get_json(real_op.discovery["jwks_uri"])
    public = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    secret = json.dumps(public, sort_keys=True).encode()
    h = flows.b64url_encode(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}).encode())
    p = token.split(".")[1]
    sig = flows.b64url_encode(hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="symmetric"):
        TokenValidator(real_op.issuer, audience=API).validate_access_token(h + "." + p + "." + sig)


def test_expired_real_token_is_rejected(real_op):
    token = cc_token(real_op, WORKER, "wte")
    exp = flows.jose_parts(token)[1]["exp"]
    late = TokenValidator(real_op.issuer, audience=API, clock=lambda: exp + 61.0)
    with pytest.raises(InvalidToken, match="expired"):
        late.validate_access_token(token)
    # Within the default 60 s leeway it is still good.
    TokenValidator(real_op.issuer, audience=API, clock=lambda: exp + 30.0).validate_access_token(token)


# --------------------------------------------------------------------------- key rotation
def test_key_rotation_across_provider_restart(private_real_op):
    op = private_real_op
    v = TokenValidator(op.issuer, audience=API)
    old_token = cc_token(op, WORKER, "wte")
    old_kid = flows.jose_parts(old_token)[0]["kid"]
    assert v.validate_access_token(old_token).subject == "wte-worker"

    op.restart()  # same issuer and port, freshly generated keys
    new_token = cc_token(op, WORKER, "wte")
    new_kid = flows.jose_parts(new_token)[0]["kid"]
    assert new_kid != old_kid

    # Unknown kid -> the validator refetches the JWKS at once (no cooldown
    # yet: the first fetch does not start one) and accepts the new key.
    assert v.validate_access_token(new_token).subject == "wte-worker"

    # The old key left the JWKS: a token signed with it must no longer pass,
    # even though it was cached and has not expired.
    with pytest.raises(InvalidToken):
        v.validate_access_token(old_token)


def test_outage_keeps_known_keys_and_reports_provider_error(private_real_op):
    op = private_real_op
    v = TokenValidator(op.issuer, audience=API, http_timeout=2)
    first = cc_token(op, WORKER, "wte")
    second = cc_token(op, SYNC, "contacts")
    v.validate_access_token(first)

    op.stop()
    # Known key, provider down: still validates (last-known-good keys, no fetch).
    assert v.validate_access_token(second).client_id == "contacts-sync"
    # A validator that never saw the provider cannot get keys: ProviderError
    # (HTTP 503), never InvalidToken (401) -- an outage is not a bad token.
    with pytest.raises(ProviderError):
        TokenValidator(op.issuer, audience=API, http_timeout=2).validate_access_token(first)
