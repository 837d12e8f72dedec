"""RFC 9728 protected resource metadata, RFC 8707 audiences and RFC 9470
step-up through the Django adapter (the core pieces of oidc_guard.auth and
oidc_guard.rules; the adapter only translates)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("django")

import djangoproj  # noqa: E402

djangoproj.setup()

from django.test import Client  # noqa: E402

from challenges import parse_challenges  # noqa: E402

RESOURCE = "http://127.0.0.1/contacts"  # loopback: http is allowed for a resource there


@pytest.fixture
def iss(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    # no OIDC_GUARD_AUDIENCE: the resource is the audience (RFC 8707)
    with djangoproj.guard_settings(issuer, OIDC_GUARD_AUDIENCE=None, OIDC_GUARD_RESOURCE=RESOURCE,
                                   OIDC_GUARD_SCOPES_SUPPORTED="contacts wte"):
        yield issuer


def _first(response):
    return parse_challenges([response["WWW-Authenticate"]])[0]


def test_the_metadata_document_is_served_at_the_path_inserted_url(iss):
    response = Client().get("/.well-known/oauth-protected-resource/contacts")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    doc = response.json()
    assert doc["resource"] == RESOURCE
    assert doc["authorization_servers"] == [iss.issuer]
    assert doc["scopes_supported"] == ["contacts", "wte"]
    assert doc["bearer_methods_supported"] == ["header"]
    head = Client().head("/.well-known/oauth-protected-resource/contacts")
    assert head.status_code == 200 and head.content == b""
    assert Client().post("/.well-known/oauth-protected-resource/contacts").status_code == 405


def test_every_challenge_names_the_metadata(iss):
    url = "http://127.0.0.1/.well-known/oauth-protected-resource/contacts"
    missing = Client().get("/contacts")
    assert missing.status_code == 401 and _first(missing)[1]["resource_metadata"] == url
    scope = Client().get("/contacts", HTTP_AUTHORIZATION="Bearer " + iss.mint({"aud": RESOURCE}, scope="wte"))
    assert scope.status_code == 403 and _first(scope)[1]["resource_metadata"] == url


def test_the_resource_is_the_audience(iss):
    ok = Client().get("/contacts", HTTP_AUTHORIZATION="Bearer " + iss.mint({"aud": RESOURCE}, scope="contacts"))
    assert ok.status_code == 200, ok.content
    other = Client().get("/contacts", HTTP_AUTHORIZATION="Bearer " + iss.mint({"aud": "api://other"},
                                                                              scope="contacts"))
    assert other.status_code == 401
    params = _first(other)[1]
    assert params["error"] == "invalid_token" and "api://other" in params["error_description"]


def test_step_up_challenges_carry_acr_values_and_max_age(iss):
    weak = iss.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:1", "auth_time": int(time.time())})
    strong = iss.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:2", "auth_time": int(time.time()) - 3600})
    response = Client().get("/strong", HTTP_AUTHORIZATION="Bearer " + weak)
    assert response.status_code == 401
    params = _first(response)[1]
    assert params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == "urn:oidc-guard:loa:2"
    assert Client().get("/strong", HTTP_AUTHORIZATION="Bearer " + strong).status_code == 200
    old = Client().get("/recent", HTTP_AUTHORIZATION="Bearer " + strong)
    assert old.status_code == 401 and _first(old)[1]["max_age"] == "300"
    assert Client().get("/recent", HTTP_AUTHORIZATION="Bearer " + weak).status_code == 200


def test_drf_step_up_permissions(iss):
    weak = iss.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:1", "auth_time": int(time.time()) - 3600})
    strong = iss.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:2", "auth_time": int(time.time())})
    refused = Client().get("/drf/strong", HTTP_AUTHORIZATION="Bearer " + weak)
    assert refused.status_code == 401
    params = _first(refused)[1]
    assert params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == "urn:oidc-guard:loa:2"
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/contacts")
    assert Client().get("/drf/strong", HTTP_AUTHORIZATION="Bearer " + strong).status_code == 200
    old = Client().get("/drf/recent", HTTP_AUTHORIZATION="Bearer " + weak)
    assert old.status_code == 401 and _first(old)[1]["max_age"] == "300"
    assert Client().get("/drf/recent", HTTP_AUTHORIZATION="Bearer " + strong).status_code == 200
    assert Client().get("/drf/strong").status_code == 401  # no token: the bare challenge
