"""The development provider's reference tokens, /introspect, /revoke and
UserInfo for both token kinds, driven through TokenValidator (the real
client) and raw HTTP where the provider's own rules are the subject."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from oidc_guard import InvalidToken, ProviderError, TokenValidator
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET


def post(url, form, auth=None):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def client_credentials(iss, client="wte-worker-ref", secret="wte-secret"):
    status, body = post(iss.token_endpoint, {"grant_type": "client_credentials"}, auth=(client, secret))
    assert status == 200, body
    return json.loads(body)["access_token"]


@pytest.fixture
def v(issuer):
    return TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2,
                          introspection_client_id=INTROSPECTION_CLIENT_ID,
                          introspection_client_secret=INTROSPECTION_CLIENT_SECRET)


def test_discovery_names_the_endpoints(issuer):
    doc = issuer.discovery_document()
    assert doc["introspection_endpoint"] == issuer.url("/introspect")
    assert doc["revocation_endpoint"] == issuer.url("/revoke")


def test_reference_client_gets_an_opaque_token_accepted_by_introspection(issuer, v):
    token = client_credentials(issuer)
    assert "." not in token and len(token) >= 32
    claims = v.validate_access_token(token)
    assert claims.client_id == "wte-worker-ref" and claims.scopes == {"wte"}
    assert issuer.fetch_counts["introspection"] == 1
    v.validate_access_token(token)
    assert issuer.fetch_counts["introspection"] == 1  # cached


def test_jwt_client_still_gets_jwts(issuer, v):
    token = client_credentials(issuer, client="wte-worker")
    assert token.count(".") == 2
    v.validate_access_token(token)
    assert issuer.fetch_counts.get("introspection", 0) == 0


def test_revoked_reference_token_is_refused_once_the_entry_ends(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET, introspection_cache_ttl=0)
    token = client_credentials(issuer)
    v.validate_access_token(token)
    status, _ = post(issuer.revocation_endpoint, {"token": token}, auth=("wte-worker-ref", "wte-secret"))
    assert status == 200
    with pytest.raises(InvalidToken, match="not active"):
        v.validate_access_token(token)


def test_introspect_needs_client_authentication(issuer):
    token = issuer.mint(reference=True)
    assert post(issuer.introspection_endpoint, {"token": token})[0] == 401
    assert post(issuer.introspection_endpoint, {"token": token}, auth=(INTROSPECTION_CLIENT_ID, "nope"))[0] == 401
    status, body = post(issuer.introspection_endpoint,
                        {"token": token, "client_id": INTROSPECTION_CLIENT_ID,
                         "client_secret": INTROSPECTION_CLIENT_SECRET})
    assert status == 200 and json.loads(body)["active"] is True
    status, body = post(issuer.introspection_endpoint, {"token": "unknown"},
                        auth=(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET))
    assert json.loads(body) == {"active": False}


@pytest.mark.parametrize("endpoint", ["token_endpoint", "introspection_endpoint", "revocation_endpoint"])
def test_bad_client_credentials_get_the_same_401_at_every_endpoint(issuer, endpoint):
    # RFC 6749 section 5.2: invalid_client as 401 with a WWW-Authenticate
    # challenge for the scheme the client tried (here Basic); RFC 7009
    # section 2.2.1 answers revocation errors the same way.
    url = getattr(issuer, endpoint)
    form = {"grant_type": "client_credentials", "token": issuer.mint(reference=True)}
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "Basic " + base64.b64encode(b"wte-worker-ref:wrong").decode()})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=5)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"] == 'Basic realm="oidc_guard-dev"'
    assert json.loads(caught.value.read())["error"] == "invalid_client"


def test_introspection_of_a_revoked_jwt(issuer):
    jwt_token = issuer.mint()
    auth = (INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET)
    assert json.loads(post(issuer.introspection_endpoint, {"token": jwt_token}, auth=auth)[1])["active"] is True
    issuer.revoke(jwt_token)
    assert json.loads(post(issuer.introspection_endpoint, {"token": jwt_token}, auth=auth)[1]) == {"active": False}
    forged = jwt_token[:-4] + ("AAAA" if not jwt_token.endswith("AAAA") else "BBBB")
    assert json.loads(post(issuer.introspection_endpoint, {"token": forged}, auth=auth)[1]) == {"active": False}


def test_wrong_api_credentials_are_503(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret="wrong")
    with pytest.raises(ProviderError, match="refused this API's credentials"):
        v.validate_access_token(issuer.mint(reference=True))


def test_introspection_faults(issuer, v):
    token = issuer.mint(reference=True)
    issuer.set_fault("introspection", status=500)
    with pytest.raises(ProviderError):
        v.validate_access_token(token)
    issuer.set_fault("introspection", body="<html>", content_type="text/html")
    with pytest.raises(ProviderError):
        v.validate_access_token(token)
    issuer.clear_faults()
    assert v.validate_access_token(token).subject == "alice"


def test_userinfo_for_both_token_kinds(issuer, v):
    ref = issuer.mint(reference=True, scope="openid profile")
    jwt_token = issuer.mint(scope="openid profile")
    assert v.userinfo(ref)["name"] == issuer.users["alice"]["name"]
    assert v.userinfo(jwt_token)["sub"] == "alice"
    issuer.revoke(ref)
    fresh = TokenValidator(issuer.issuer, audience=issuer.audience, introspection_client_id=INTROSPECTION_CLIENT_ID,
                           introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    with pytest.raises(InvalidToken):
        fresh.userinfo(ref)


def test_in_flight_counter(issuer, v):
    issuer.mint(reference=True)
    v.validate_access_token(issuer.mint(reference=True))
    import time

    deadline = time.monotonic() + 5  # the handler thread finishes just after its answer went out
    while issuer.introspection_in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert issuer.introspection_max_in_flight == 1 and issuer.introspection_in_flight == 0


def test_register_client_reference_format(issuer):
    issuer.register_client("svc", secret="s", scopes="contacts", grant_types=("client_credentials",),
                           access_token_format="reference")
    assert "." not in client_credentials(issuer, "svc", "s")
    with pytest.raises(ValueError):
        issuer.register_client("bad", access_token_format="opaque")
