"""Every JSON document from the provider is decoded strictly: an object with
a duplicate member name, at any depth, makes the document unusable
(RFC 8259 section 4 leaves it to the parser: Python keeps the last member,
others keep the first or fail, so two readers could disagree about
``"active"``).  Discovery, JWKS, introspection and UserInfo (JSON) are
served by the loopback LocalIssuer and go through the library's real fetch
path (oidc_guard.http); each refusal is a ProviderError (503), never an
acceptance and never a 401 blamed on the token."""

from __future__ import annotations

import json

import pytest

from oidc_guard import InvalidToken, ProviderError, TokenValidator
from oidc_guard.http import fetch_json
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET


def _introspecting(op, **kwargs):
    kwargs.setdefault("audience", op.audience)
    kwargs.setdefault("http_timeout", 2)
    return TokenValidator(op.issuer, introspection_client_id=INTROSPECTION_CLIENT_ID,
                          introspection_client_secret=INTROSPECTION_CLIENT_SECRET, **kwargs)


def _refused_as_duplicate(call, member):
    with pytest.raises(ProviderError) as info:
        call()
    assert info.value.status == 503
    assert f"duplicate member {member!r}" in info.value.description
    return info.value


# --- the loader itself -----------------------------------------------------------


@pytest.mark.parametrize("body, member", [
    ('{"a": 1, "a": 2}', "a"),
    ('{"a": {"b": 1, "b": 1}}', "b"),          # nested, same value: still refused
    ('{"keys": [{"kty": "RSA", "kty": "EC"}]}', "kty"),  # inside an array
])
def test_fetch_json_refuses_duplicate_members_at_any_depth(loopback, body, member):
    loopback.json("/doc", body)
    err = _refused_as_duplicate(lambda: fetch_json(loopback.url("/doc"), timeout=2, max_bytes=4096), member)
    assert "RFC 8259 section 4" in err.description


def test_fetch_json_still_accepts_the_same_name_in_different_objects(loopback):
    loopback.json("/doc", '{"kty": "RSA", "inner": {"kty": "EC"}, "list": [{"a": 1}, {"a": 2}]}')
    doc = fetch_json(loopback.url("/doc"), timeout=2, max_bytes=4096).json
    assert doc["inner"] == {"kty": "EC"} and doc["list"] == [{"a": 1}, {"a": 2}]


# --- introspection (RFC 7662 section 2.2) ------------------------------------------


@pytest.mark.parametrize("body, member", [
    # "last wins" would make this active; "first wins" inactive.  Neither: 503.
    ('{"active": false, "active": true, "aud": "%(aud)s"}', "active"),
    ('{"active": true, "active": false, "aud": "%(aud)s"}', "active"),
    # another consumer reading the first aud would see another API's token
    ('{"active": true, "aud": "api://other", "aud": "%(aud)s"}', "aud"),
    ('{"active": true, "aud": "%(aud)s", "cnf": {"jkt": "a", "jkt": "b"}}', "jkt"),
])
def test_introspection_answer_with_a_duplicate_is_a_provider_error_never_active(make_issuer, body, member):
    op = make_issuer(algs=("RS256",))
    token = op.mint(reference=True)
    op.set_fault("introspection", body=body % {"aud": op.audience})
    v = _introspecting(op, introspection_cache_ttl=0)
    _refused_as_duplicate(lambda: v.validate_access_token(token), member)
    # nothing was cached: the provider repaired, the same token is accepted
    op.clear_faults()
    assert v.validate_access_token(token).subject == "alice"


# --- discovery and JWKS -------------------------------------------------------------


def test_discovery_document_with_a_duplicate_is_a_provider_error(issuer, make_validator):
    doc = json.dumps(issuer.discovery_document())
    # the document names jwks_uri twice: which keys would be trusted depends on the parser
    issuer.set_fault("discovery", body=doc[:-1] + ', "jwks_uri": "http://127.0.0.1:1/other-keys"}')
    err = _refused_as_duplicate(lambda: make_validator(issuer).validate_access_token(issuer.mint()), "jwks_uri")
    assert "discovery document" in err.description


def test_jwks_with_a_duplicate_inside_a_key_is_a_provider_error(issuer, make_validator):
    jwks = issuer.jwks()
    kid = jwks["keys"][0]["kid"]
    text = json.dumps(jwks).replace(f'"kid": "{kid}"', f'"kid": "{kid}", "kid": "other"', 1)
    issuer.set_fault("jwks", body=text)
    token = issuer.mint()
    err = _refused_as_duplicate(lambda: make_validator(issuer).validate_access_token(token), "kid")
    assert "JWKS" in err.description or "jwks" in err.description
    issuer.clear_faults()
    assert make_validator(issuer).validate_access_token(token).subject == "alice"


# --- UserInfo (OpenID Connect Core 5.3.2, JSON response) -------------------------------


def test_userinfo_json_with_a_duplicate_is_a_provider_error(issuer, make_validator):
    token = issuer.mint(subject="alice")
    # a profile whose sub is alice for one reader and mallory for another
    issuer.set_fault("userinfo", body='{"sub": "alice", "sub": "mallory"}')
    v = make_validator(issuer)
    _refused_as_duplicate(lambda: v.userinfo(token), "sub")
    issuer.set_fault("userinfo", body='{"sub": "alice", "name": "Alice", "name": "Mallory"}')
    _refused_as_duplicate(lambda: v.userinfo(token), "name")


def test_signed_userinfo_with_a_duplicate_stays_a_token_error(issuer, make_validator):
    # A signed UserInfo JWT goes through the JWT path, which refused
    # duplicates already (RFC 7515 section 4): InvalidToken, as before.
    from oidc_guard.testing.keys import sign_raw

    token = issuer.mint(subject="alice")
    kid = issuer.signing_kid
    header = json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}).encode()
    signed = sign_raw(issuer.private_key(kid), "RS256", header, b'{"sub":"alice","sub":"mallory"}')
    issuer.set_fault("userinfo", body=signed, content_type="application/jwt")
    with pytest.raises(InvalidToken, match="duplicate member"):
        make_validator(issuer).userinfo(token)
