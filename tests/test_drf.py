"""oidc_guard.drf with DRF's APIClient: OIDCAuthentication (401 with the
Bearer challenge, not 403), HasScope / HasAnyScope with required_scopes and
required_scopes_by_method, 403 insufficient_scope with scope=, refused
tokens and outages, anonymous requests on AllowAny views, and the
drf-spectacular security scheme.  Real LocalIssuer tokens."""

from __future__ import annotations

import pytest

pytest.importorskip("rest_framework")

import djangoproj  # noqa: E402

djangoproj.setup()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import override_settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from challenges import parse_challenges  # noqa: E402
from oidc_guard.testing import DPoPKey  # noqa: E402


@pytest.fixture
def iss(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    with djangoproj.guard_settings(issuer):
        yield issuer


@pytest.fixture(params=["middleware", "no middleware"])
def client(request, iss):
    """Every test twice: with BearerMiddleware (its result is reused) and
    with the DRF classes alone."""
    if request.param == "middleware":
        yield APIClient()
    else:
        with override_settings(MIDDLEWARE=[]):
            yield APIClient()


def _auth(c, token, scheme="Bearer"):
    c.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
    return c


def _first(response):
    return parse_challenges([response["WWW-Authenticate"]])[0]


def test_no_token_is_401_with_the_bearer_challenge_not_403(client):
    for url in ("/drf/contacts", "/drf/authenticated"):
        response = client.get(url)
        assert response.status_code == 401, url
        scheme, params, _ = _first(response)
        assert scheme.lower() == "bearer" and params == {"realm": "contacts-api"}
    assert client.get("/drf/contacts").json() == {"error": "unauthorized",
                                                  "error_description": "a bearer token is required"}


def test_valid_token_sets_auth_and_token_user(client, iss):
    answer = _auth(client, iss.mint(scope="contacts")).get("/drf/contacts").json()
    assert answer == {"sub": "alice", "user": "alice", "authenticated": True}


def test_missing_scope_is_403_insufficient_scope(client, iss):
    response = _auth(client, iss.mint(scope="wte")).get("/drf/contacts")
    assert response.status_code == 403
    scheme, params, _ = _first(response)
    assert scheme.lower() == "bearer"
    assert params["error"] == "insufficient_scope" and params["scope"] == "contacts"
    assert response.json()["error"] == "insufficient_scope"


def test_has_any_scope(client, iss):
    assert _auth(client, iss.mint(scope="coordinate")).get("/drf/any").status_code == 200
    refused = _auth(client, iss.mint(scope="contacts")).get("/drf/any")
    assert refused.status_code == 403 and _first(refused)[1]["scope"] == "wte coordinate"


def test_required_scopes_by_method(client, iss):
    _auth(client, iss.mint(scope="contacts"))
    assert client.get("/drf/methods").status_code == 200
    assert client.head("/drf/methods").status_code == 200  # HEAD uses GET's scopes
    refused = client.post("/drf/methods")
    assert refused.status_code == 403 and _first(refused)[1]["scope"] == "contacts wte"
    _auth(client, iss.mint(scope="contacts wte"))
    assert client.post("/drf/methods").json() == {"posted": True, "sub": "alice"}


def test_a_view_without_scopes_fails_closed(iss):
    client = _auth(APIClient(), iss.mint(scope="contacts"))
    client.raise_request_exception = True
    with pytest.raises(ImproperlyConfigured, match="names no scopes for GET"):
        client.get("/drf/unconfigured")


def test_invalid_token_is_401_even_on_allow_any(client, iss):
    assert client.get("/drf/open").json() == {"sub": None, "user": None, "authenticated": False}
    response = _auth(client, iss.mint() + "x").get("/drf/open")
    assert response.status_code == 401
    assert _first(response)[1]["error"] == "invalid_token"
    assert response.json()["error"] == "invalid_token"
    good = _auth(client, iss.mint()).get("/drf/open").json()
    assert good["sub"] == "alice"


def test_malformed_is_400_and_outage_is_503(client, iss):
    client.credentials(HTTP_AUTHORIZATION="Bearer a b")
    assert client.get("/drf/contacts").status_code == 400
    token = iss.mint(scope="contacts")
    iss.stop()
    response = _auth(client, token).get("/drf/contacts")
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"


def test_middleware_adds_cache_control_to_drf_refusals(iss):
    response = _auth(APIClient(), iss.mint(scope="wte")).get("/drf/contacts")
    assert response["Cache-Control"] == "no-store"


def test_dpop_with_drf(client, iss):
    key = DPoPKey("ES256")
    token = iss.mint(claims={"cnf": key.cnf}, scope="contacts")
    client.credentials(HTTP_AUTHORIZATION="DPoP " + token,
                       HTTP_DPOP=key.proof("GET", "http://testserver/drf/contacts", token))
    response = client.get("/drf/contacts")
    assert response.status_code == 200, response.content
    refused = _auth(APIClient(), token).get("/drf/contacts")
    assert refused.status_code == 401 and _first(refused)[1]["error"] == "invalid_token"


def test_user_loader_returning_none_is_401(client, iss):
    with override_settings(OIDC_GUARD_USER_LOADER="test_django.load_user"):
        assert _auth(client, iss.mint(scope="contacts")).get("/drf/contacts").status_code == 200
        assert _auth(client, iss.mint(subject="eve", scope="contacts")).get("/drf/contacts").status_code == 401


def test_spectacular_schema_has_the_scheme_and_scopes(iss):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    scheme = schema["components"]["securitySchemes"]["oidcGuard"]
    assert scheme == {"type": "openIdConnect",
                      "openIdConnectUrl": iss.issuer + "/.well-known/openid-configuration"}
    paths = schema["paths"]
    assert paths["/drf/contacts"]["get"]["security"] == [{"oidcGuard": ["contacts"]}]
    assert paths["/drf/any"]["get"]["security"] == [{"oidcGuard": ["wte"]}, {"oidcGuard": ["coordinate"]}]
    assert paths["/drf/methods"]["post"]["security"] == [{"oidcGuard": ["contacts", "wte"]}]
    # AllowAny: the token is optional ({} is "no security")
    assert paths["/drf/open"]["get"]["security"] == [{"oidcGuard": []}, {}]
