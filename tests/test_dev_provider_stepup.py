"""The development provider (oidc_guard.testing.LocalIssuer) honours RFC 8707
resource indicators at /authorize and /token (the access token's ``aud`` is
the resource, the code is bound to the resources of its authorization
request, a bad one is ``invalid_target``) and the step-up parameters of
RFC 9470 at /authorize: ``acr_values`` and ``max_age`` (OIDC Core 3.1.2.1),
reflected as ``acr`` and ``auth_time`` in the access token and the ID Token.

Everything goes over real HTTP to the issuer's loopback server; signatures
and audiences are checked by PyJWT against the served JWKS, and by the
library's own TokenValidator."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest

from oidc_guard import InvalidToken, TokenValidator
from oidc_guard.testing import LocalIssuer

SPA_REDIRECT = "http://127.0.0.1:8080/"
CONTACTS = "https://api.example.test/contacts"
OTHER = "https://api.example.test/other"
LOA1 = "urn:oidc-guard:loa:1"
LOA2 = "urn:oidc-guard:loa:2"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the test reads the 302 itself


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(method, url, *, form=None, headers=None):
    """(status, headers, body) of one real request; ``form`` is a list of
    pairs (a parameter may repeat) or a dict."""
    data = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode("ascii")
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def verify(issuer, token, audience):
    """Signature (served JWKS), iss and aud checked by PyJWT."""
    jwks = json.loads(http("GET", issuer.jwks_uri)[2])
    header = jwt.get_unverified_header(token)
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == header["kid"])
    return jwt.decode(token, key.key, algorithms=[header["alg"]], issuer=issuer.issuer, audience=audience)


def client_credentials(issuer, resources=(), client=("wte-worker", "wte-secret")):
    form = [("grant_type", "client_credentials")] + [("resource", r) for r in resources]
    status, _, body = http("POST", issuer.token_endpoint, form=form, headers=basic(*client))
    return status, json.loads(body)


def authorize_pairs(*, resources=(), **changes):
    params = {"response_type": "code", "client_id": "spa", "redirect_uri": SPA_REDIRECT,
              "scope": "openid profile contacts", "state": "st-1", "nonce": "n-1",
              "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    params.update(changes)
    return [(k, v) for k, v in params.items() if v is not None] + [("resource", r) for r in resources]


def sign_in(issuer, pairs, username="alice", password="alice"):
    """POST the login form; (status, the redirect's parameters)."""
    status, headers, body = http("POST", issuer.authorization_endpoint,
                                 form=pairs + [("username", username), ("password", password)])
    assert status == 302, body
    parts = urllib.parse.urlsplit(headers["Location"])
    return dict(urllib.parse.parse_qsl(parts.fragment or parts.query))


def redeem(issuer, code, resources=()):
    form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", SPA_REDIRECT),
            ("client_id", "spa"), ("code_verifier", VERIFIER)] + [("resource", r) for r in resources]
    status, _, body = http("POST", issuer.token_endpoint, form=form)
    return status, json.loads(body)


def introspect(issuer, token):
    status, _, body = http("POST", issuer.introspection_endpoint, form={"token": token},
                           headers=basic("contacts-api", "contacts-api-secret"))
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer() as iss:
        yield iss


# ---------------------------------------------------- RFC 8707: /token


def test_client_credentials_token_is_for_the_resource(issuer):
    status, body = client_credentials(issuer, [CONTACTS])
    assert status == 200, body
    claims = verify(issuer, body["access_token"], audience=CONTACTS)
    assert claims["aud"] == CONTACTS  # one resource: a string (RFC 9068 section 3)
    assert introspect(issuer, body["access_token"])["aud"] == CONTACTS
    # The library's validator: accepted for that resource, refused for another.
    assert TokenValidator(issuer.issuer, audience=CONTACTS).validate_access_token(body["access_token"])
    with pytest.raises(InvalidToken) as refused:
        TokenValidator(issuer.issuer, audience=OTHER).validate_access_token(body["access_token"])
    assert refused.value.reason == "audience"
    # Without a resource: the issuer's default audience, as before.
    status, body = client_credentials(issuer)
    assert verify(issuer, body["access_token"], audience="api://contacts")["aud"] == "api://contacts"


def test_reference_token_introspection_carries_the_resource(issuer):
    status, body = client_credentials(issuer, [OTHER], client=("wte-worker-ref", "wte-secret"))
    assert status == 200, body
    assert "." not in body["access_token"]
    answer = introspect(issuer, body["access_token"])
    assert answer["active"] is True and answer["aud"] == OTHER


@pytest.mark.parametrize("resources", [
    ["contacts"],  # relative: not an absolute URI
    ["/contacts"],
    [""],
    [CONTACTS + "#frag"],  # RFC 8707 section 2: MUST NOT include a fragment
    ["https://"],  # no host
    ["https://api.example.test/a b"],
    [CONTACTS, OTHER],  # one resource per access token here
])
def test_token_endpoint_refuses_a_bad_resource_with_invalid_target(issuer, resources):
    status, body = client_credentials(issuer, resources)
    assert (status, body["error"]) == (400, "invalid_target"), body
    assert body["error_description"] and "access_token" not in body


def test_repeating_the_same_resource_is_one_resource(issuer):
    status, body = client_credentials(issuer, [CONTACTS, CONTACTS])
    assert status == 200, body
    assert verify(issuer, body["access_token"], audience=CONTACTS)["aud"] == CONTACTS


def test_other_parameters_still_may_not_repeat(issuer):
    form = [("grant_type", "client_credentials"), ("scope", "wte"), ("scope", "wte")]
    status, _, body = http("POST", issuer.token_endpoint, form=form, headers=basic("wte-worker", "wte-secret"))
    assert (status, json.loads(body)["error"]) == (400, "invalid_request")


def test_a_client_may_be_restricted_to_its_resources():
    with LocalIssuer() as iss:
        iss.register_client("narrow", secret="s", scopes="wte", grant_types=("client_credentials",),
                            resources=[CONTACTS])
        status, body = client_credentials(iss, [CONTACTS], client=("narrow", "s"))
        assert status == 200 and verify(iss, body["access_token"], audience=CONTACTS)
        status, body = client_credentials(iss, [OTHER], client=("narrow", "s"))
        assert (status, body["error"]) == (400, "invalid_target")
        assert OTHER in body["error_description"]
        with pytest.raises(ValueError, match="fragment"):
            iss.register_client("bad", resources=[CONTACTS + "#x"])


# ------------------------------------------------ RFC 8707: /authorize


def test_code_is_bound_to_the_resources_of_its_authorization_request(issuer):
    pairs = authorize_pairs(resources=[CONTACTS, OTHER])
    # The login page carries both resources on to the POST, and names them.
    status, _, page = http("GET", issuer.authorization_endpoint + "?" + urllib.parse.urlencode(pairs))
    assert status == 200
    assert page.count(b'name="resource"') == 2
    assert CONTACTS.encode() in page and OTHER.encode() in page

    # Section 2.2: the token request picks one of the authorized resources.
    code = sign_in(issuer, pairs)["code"]
    status, body = redeem(issuer, code, [OTHER])
    assert status == 200, body
    assert verify(issuer, body["access_token"], audience=OTHER)["aud"] == OTHER
    assert verify(issuer, body["id_token"], audience="spa")["aud"] == "spa"  # the ID Token is the client's

    # A resource that the authorization request did not name: refused.
    code = sign_in(issuer, pairs)["code"]
    status, body = redeem(issuer, code, ["https://api.example.test/third"])
    assert (status, body["error"]) == (400, "invalid_target"), body
    # Several authorized and none named: the client must say which.
    code = sign_in(issuer, pairs)["code"]
    status, body = redeem(issuer, code)
    assert (status, body["error"]) == (400, "invalid_target"), body


def test_one_authorized_resource_is_the_default_at_the_token_endpoint(issuer):
    code = sign_in(issuer, authorize_pairs(resources=[CONTACTS]))["code"]
    status, body = redeem(issuer, code)
    assert status == 200, body
    assert verify(issuer, body["access_token"], audience=CONTACTS)["aud"] == CONTACTS
    assert introspect(issuer, body["access_token"])["aud"] == CONTACTS


def test_a_resource_only_at_the_token_endpoint_is_refused(issuer):
    # The user authorized no resource: the client cannot add one later.
    code = sign_in(issuer, authorize_pairs())["code"]
    status, body = redeem(issuer, code, [CONTACTS])
    assert (status, body["error"]) == (400, "invalid_target"), body


def test_implicit_flow_access_token_is_for_the_resource(issuer):
    pairs = authorize_pairs(response_type="id_token token", code_challenge=None, code_challenge_method=None,
                            resources=[CONTACTS])
    answer = sign_in(issuer, pairs)
    assert verify(issuer, answer["access_token"], audience=CONTACTS)["aud"] == CONTACTS
    # The implicit flow issues one access token at once: one resource only.
    pairs = authorize_pairs(response_type="id_token token", code_challenge=None, code_challenge_method=None,
                            resources=[CONTACTS, OTHER])
    answer = sign_in(issuer, pairs)
    assert answer["error"] == "invalid_target" and answer["state"] == "st-1"
    assert "access_token" not in answer


@pytest.mark.parametrize("bad", ["contacts", CONTACTS + "#x", ""])
def test_authorize_refuses_a_bad_resource_back_to_the_client(issuer, bad):
    pairs = authorize_pairs(resources=[bad])
    # RFC 8707 section 2 / RFC 6749 4.1.2.1: an error redirected to the client.
    status, headers, _ = http("GET", issuer.authorization_endpoint + "?" + urllib.parse.urlencode(pairs))
    assert status == 302
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert answer["error"] == "invalid_target" and answer["state"] == "st-1"
    assert "code" not in answer


# ----------------------------------------- RFC 9470: acr_values, max_age


def test_acr_values_are_satisfied_and_carried_by_both_tokens(issuer):
    before = int(time.time())
    code = sign_in(issuer, authorize_pairs(acr_values=f"urn:example:unknown {LOA2}", max_age="0"))["code"]
    status, body = redeem(issuer, code)
    assert status == 200, body
    access = verify(issuer, body["access_token"], audience="api://contacts")
    id_claims = verify(issuer, body["id_token"], audience="spa")
    # OIDC Core 3.1.2.1: the first requested value the user can reach.
    assert access["acr"] == id_claims["acr"] == LOA2
    # No sessions: every sign-in is fresh, so max_age=0 is met; auth_time now.
    assert before <= access["auth_time"] == id_claims["auth_time"] <= int(time.time())
    assert introspect(issuer, body["access_token"])["acr"] == LOA2


def test_without_acr_values_a_sign_in_is_level_one(issuer):
    answer = sign_in(issuer, authorize_pairs(response_type="id_token token", code_challenge=None,
                                             code_challenge_method=None))
    assert verify(issuer, answer["access_token"], audience="api://contacts")["acr"] == LOA1
    assert verify(issuer, answer["id_token"], audience="spa")["acr"] == LOA1


def test_acr_the_user_cannot_reach_is_unmet_authentication_requirements(issuer):
    # bob reaches level 1 only.
    answer = sign_in(issuer, authorize_pairs(acr_values=LOA2), username="bob", password="bob")
    assert answer["error"] == "unmet_authentication_requirements" and answer["state"] == "st-1"
    assert "code" not in answer
    answer = sign_in(issuer, authorize_pairs(acr_values=f"{LOA2} {LOA1}"), username="bob", password="bob")
    status, body = redeem(issuer, answer["code"])
    assert verify(issuer, body["id_token"], audience="spa")["acr"] == LOA1


def test_login_page_names_the_requested_level(issuer):
    query = urllib.parse.urlencode(authorize_pairs(acr_values=LOA2))
    status, _, page = http("GET", issuer.authorization_endpoint + "?" + query)
    assert status == 200 and b'id="acr-values"' in page and LOA2.encode() in page
    assert b'name="acr_values"' in page  # carried on to the POST


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "", "\u0661"])  # \u0661: an Arabic-Indic digit
def test_bad_max_age_is_invalid_request(issuer, bad):
    status, headers, _ = http("GET", issuer.authorization_endpoint + "?"
                              + urllib.parse.urlencode(authorize_pairs(max_age=bad)))
    assert status == 302
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert answer["error"] == "invalid_request" and "max_age" in answer["error_description"]


def test_users_acrs_are_configurable():
    with LocalIssuer(users={"carol": {"password": "c", "acrs": ["urn:example:mfa"]}, "dave": "d"}) as iss:
        assert iss.discovery_document()["acr_values_supported"] == ["urn:example:mfa", LOA1]  # sorted
        answer = sign_in(iss, authorize_pairs(acr_values="urn:example:mfa"), "carol", "c")
        status, body = redeem(iss, answer["code"])
        assert verify(iss, body["id_token"], audience="spa")["acr"] == "urn:example:mfa"
    with pytest.raises(ValueError, match="acrs"):
        LocalIssuer(users={"eve": {"password": "e", "acrs": "urn:example:mfa"}})


def test_discovery_lists_the_acr_values(issuer):
    doc = json.loads(http("GET", issuer.discovery_url)[2])
    assert doc["acr_values_supported"] == [LOA1, LOA2]
    assert "acr" in doc["claims_supported"] and "auth_time" in doc["claims_supported"]
