"""oidc_guard.django with Django's test client: the middleware, the
decorators on function, class-based and async views, TokenUser, the user
loader, settings read through the one configuration table, the system check
and manage.py oidc_guard_check.  Real LocalIssuer tokens throughout."""

from __future__ import annotations

import io
import json
import time

import pytest

pytest.importorskip("django")

import djangoproj  # noqa: E402  (tests/djangoproj: the test project)

djangoproj.setup()

from django.core.management import call_command  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

from challenges import parse_challenges  # noqa: E402
from oidc_guard import ConfigurationError, MultiIssuerValidator, TokenValidator  # noqa: E402
from oidc_guard.django import TokenUser, _state  # noqa: E402
from oidc_guard.django.checks import check_settings  # noqa: E402
from oidc_guard.testing import DPoPKey  # noqa: E402

LOADED = []


def load_user(claims):
    """An OIDC_GUARD_USER_LOADER for the tests: alice only."""
    LOADED.append(claims.subject)
    return {"alice": TokenUser(claims)}.get(claims.subject)


@pytest.fixture
def iss(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    with djangoproj.guard_settings(issuer):
        yield issuer


def _challenge(response):
    return parse_challenges([response["WWW-Authenticate"]])


def _bearer(token):
    return {"HTTP_AUTHORIZATION": "Bearer " + token}


# --- the middleware and the decorators ------------------------------------------------


def test_no_token_is_a_bare_challenge_and_json_body(iss):
    response = Client().get("/contacts")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    first = _challenge(response)[0]
    assert first[0].lower() == "bearer" and first[1] == {"realm": "contacts-api"}
    assert response.json() == {"error": "unauthorized", "error_description": "a bearer token is required"}


def test_valid_token_reaches_the_view_with_claims_and_token_user(iss):
    response = Client().get("/contacts", **_bearer(iss.mint(scope="contacts")))
    assert response.status_code == 200, response.content
    assert response.json() == {"sub": "alice", "user": "alice"}


def test_missing_scope_is_403_naming_the_scope(iss):
    response = Client().get("/contacts", **_bearer(iss.mint(scope="wte")))
    assert response.status_code == 403
    scheme, params, _ = _challenge(response)[0]
    assert scheme.lower() == "bearer"
    assert params["error"] == "insufficient_scope" and params["scope"] == "contacts"
    assert response.json()["error"] == "insufficient_scope"


def test_invalid_token_is_401_invalid_token(iss):
    response = Client().get("/contacts", **_bearer(iss.mint(scope="contacts") + "x"))
    assert response.status_code == 401
    assert _challenge(response)[0][1]["error"] == "invalid_token"
    assert response.json()["error"] == "invalid_token"


def test_malformed_header_is_400_even_on_a_public_route(iss):
    response = Client().get("/public", HTTP_AUTHORIZATION="Bearer a b")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_public_route_sees_claims_or_none(iss):
    assert Client().get("/public").json() == {"claims": False, "sub": None}
    answer = Client().get("/public", **_bearer(iss.mint())).json()
    assert answer == {"claims": True, "sub": "alice"}
    # a refused token on a public route: anonymous, as with the WSGI middleware
    assert Client().get("/public", **_bearer("abc.def.ghi")).json()["claims"] is False


def test_provider_outage_is_503_with_retry_after(iss):
    token = iss.mint(scope="contacts")
    iss.stop()
    response = Client().get("/contacts", **_bearer(token))
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in response
    assert response.json()["error"] == "temporarily_unavailable"


def test_any_scope_groups_claims_and_issuer_rules(iss):
    c = Client()
    assert c.get("/any", **_bearer(iss.mint(scope="coordinate"))).status_code == 200
    assert c.get("/any", **_bearer(iss.mint(scope="contacts"))).status_code == 403
    assert c.get("/groups", **_bearer(iss.mint(scope="contacts wte"))).status_code == 200
    denied = c.get("/groups", **_bearer(iss.mint(scope="contacts")))
    assert denied.status_code == 403 and _challenge(denied)[0][1]["scope"] == "contacts wte"
    ok = c.get("/tenant", **_bearer(iss.mint({"tenant": "acme", "roles": ["admin", "x"]})))
    assert ok.status_code == 200
    refused = c.get("/tenant", **_bearer(iss.mint({"tenant": "other", "roles": ["admin"]})))
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_claims"
    assert c.get("/issuer", **_bearer(iss.mint())).json()["error"] == "insufficient_claims"


def test_class_based_view_through_method_decorator(iss):
    c = Client()
    assert c.get("/cbv").status_code == 401
    assert c.get("/cbv", **_bearer(iss.mint(scope="wte"))).status_code == 403
    assert c.get("/cbv", **_bearer(iss.mint(scope="contacts"))).json() == {"sub": "alice", "user": "alice"}
    # POST without a CSRF token: the decorated view is csrf_exempt (a bearer
    # token is never sent by the browser on its own)
    posted = Client(enforce_csrf_checks=True).post("/cbv", **_bearer(iss.mint(scope="contacts")))
    assert posted.status_code == 200 and posted.json()["posted"] is True


def test_decorated_view_without_the_middleware_authenticates_itself(iss):
    with override_settings(MIDDLEWARE=[]):
        c = Client()
        assert c.get("/contacts").status_code == 401
        assert c.get("/contacts", **_bearer(iss.mint(scope="contacts"))).json()["sub"] == "alice"
        assert c.get("/contacts", **_bearer(iss.mint(scope="wte"))).status_code == 403


def test_async_view_and_async_stack(iss):
    c = AsyncClient()
    import asyncio

    async def run():
        anonymous = await c.get("/async")
        good = await c.get("/async", headers={"Authorization": "Bearer " + iss.mint(scope="contacts")})
        return anonymous, good

    anonymous, good = asyncio.run(run())
    assert anonymous.status_code == 401
    assert good.status_code == 200 and good.json()["sub"] == "alice"


def test_required_answers_every_route(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    with djangoproj.guard_settings(issuer, OIDC_GUARD_REQUIRED="true"):
        c = Client()
        assert c.get("/public").status_code == 401
        assert c.get("/public", **_bearer(issuer.mint())).status_code == 200


def test_client_token_user_is_its_client_id(iss):
    answer = Client().get("/token", **_bearer(iss.mint(subject=None, client_id="wte-worker"))).json()
    assert answer == {"sub": None, "user": "wte-worker"}


def test_token_user(iss):
    validator = TokenValidator(iss.issuer, audience=iss.audience)
    claims = validator.validate_access_token(iss.mint(scope="contacts wte"))
    user = TokenUser(claims)
    assert user.is_authenticated and not user.is_anonymous and not user.is_staff
    assert user.username == "alice" == str(user) == user.get_username()
    assert user.scopes == {"contacts", "wte"} and user.claims is claims
    assert not user.has_perm("auth.add_user")
    assert user == TokenUser(claims) and hash(user) == hash(TokenUser(claims))


def test_user_loader(iss):
    with override_settings(OIDC_GUARD_USER_LOADER="test_django.load_user"):
        LOADED.clear()
        c = Client()
        assert c.get("/contacts", **_bearer(iss.mint(scope="contacts"))).json()["user"] == "alice"
        refused = c.get("/contacts", **_bearer(iss.mint(subject="mallory", scope="contacts")))
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert LOADED == ["alice", "mallory"]


def test_dpop_bound_token_and_htu_from_django_rules(iss):
    key = DPoPKey("ES256")
    token = iss.mint(claims={"cnf": key.cnf}, scope="contacts")
    c = Client()
    proof = key.proof("GET", "http://api.test/bound", token)
    ok = c.get("/bound", HTTP_HOST="api.test", HTTP_AUTHORIZATION="DPoP " + token, HTTP_DPOP=proof)
    assert ok.status_code == 200, ok.content
    assert ok.json()["binding"] == "dpop"
    # the same token as a bearer token: refused (RFC 9449 section 7.2)
    assert c.get("/bound", HTTP_HOST="api.test", **_bearer(token)).status_code == 401
    # behind a TLS proxy: https only when SECURE_PROXY_SSL_HEADER says so
    proof = key.proof("GET", "https://api.test/bound", token)
    headers = dict(HTTP_HOST="api.test", HTTP_AUTHORIZATION="DPoP " + token, HTTP_DPOP=proof,
                   HTTP_X_FORWARDED_PROTO="https")
    assert c.get("/bound", **headers).status_code == 401  # not trusted by default
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        proof = key.proof("GET", "https://api.test/bound", token)
        assert c.get("/bound", **dict(headers, HTTP_DPOP=proof)).status_code == 200
    # X-Forwarded-Host only with USE_X_FORWARDED_HOST, and only an allowed host
    proof = key.proof("GET", "http://localhost/bound", token)
    forwarded = dict(HTTP_HOST="api.test", HTTP_X_FORWARDED_HOST="localhost", HTTP_AUTHORIZATION="DPoP " + token)
    assert c.get("/bound", **dict(forwarded, HTTP_DPOP=proof)).status_code == 401
    with override_settings(USE_X_FORWARDED_HOST=True):
        proof = key.proof("GET", "http://localhost/bound", token)
        assert c.get("/bound", **dict(forwarded, HTTP_DPOP=proof)).status_code == 200
        proof = key.proof("GET", "http://evil.example/bound", token)
        evil = c.get("/bound", **dict(forwarded, HTTP_X_FORWARDED_HOST="evil.example", HTTP_DPOP=proof))
        assert evil.status_code in (400, 401)


def test_public_url_wins_for_htu(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    key = DPoPKey("ES256")
    with djangoproj.guard_settings(issuer, OIDC_GUARD_PUBLIC_URL="https://api.example.com/v1"):
        token = issuer.mint(claims={"cnf": key.cnf})
        proof = key.proof("GET", "https://api.example.com/v1/bound", token)
        ok = Client().get("/bound", HTTP_AUTHORIZATION="DPoP " + token, HTTP_DPOP=proof)
        assert ok.status_code == 200, ok.content


def test_dpop_nonce_header_on_success(make_issuer):
    issuer = make_issuer(algs=("RS256",))
    key = DPoPKey("ES256")
    with djangoproj.guard_settings(issuer, OIDC_GUARD_DPOP_NONCE=True, OIDC_GUARD_DPOP_NONCE_SECRET="s" * 32):
        token = issuer.mint(claims={"cnf": key.cnf})
        c = Client()
        first = c.get("/bound", HTTP_AUTHORIZATION="DPoP " + token,
                      HTTP_DPOP=key.proof("GET", "http://testserver/bound", token))
        assert first.status_code == 401 and first.json()["error"] == "use_dpop_nonce"
        nonce = first["DPoP-Nonce"]
        ok = c.get("/bound", HTTP_AUTHORIZATION="DPoP " + token,
                   HTTP_DPOP=key.proof("GET", "http://testserver/bound", token, nonce=nonce))
        assert ok.status_code == 200, ok.content


def test_userinfo_refusal_is_rendered_by_the_middleware(iss):
    iss.set_fault("userinfo", status=401)
    response = Client().get("/me", **_bearer(iss.mint(scope="openid contacts")))
    # the provider refused the token at its UserInfo endpoint: 401, rendered
    # by the middleware from the Refused the view raised (no 500)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    iss.clear_faults()
    good = Client().get("/me", **_bearer(iss.mint(scope="openid contacts")))
    assert good.status_code == 200 and good.json()["profile"]["sub"] == "alice"


# --- settings: the one table ------------------------------------------------------------


def test_settings_are_parsed_as_in_flask(iss):
    with override_settings(OIDC_GUARD_LEEWAY="5", OIDC_GUARD_DPOP="disabled", OIDC_GUARD_ACCEPT_QUERY="yes"):
        state = _state.current()
        assert state.validator.leeway == 5.0
        assert state.authenticator.dpop == "disabled" and state.authenticator.accept_query is True
        response = Client().get("/contacts?access_token=" + iss.mint(scope="contacts"))
        assert response.status_code == 200
    with override_settings(OIDC_GUARD_ACCEPT_FORM="maybe"):
        with pytest.raises(ConfigurationError, match="OIDC_GUARD_ACCEPT_FORM must be a boolean"):
            _state.current()
    with override_settings(OIDC_GUARD_LEEWAY_SECONDS=5):
        with pytest.raises(ConfigurationError, match="did you mean OIDC_GUARD_LEEWAY"):
            _state.current()


def test_several_issuers(make_issuer):
    one, two = make_issuer(algs=("RS256",)), make_issuer(algs=("ES256",))
    issuers = json.dumps([{"issuer": one.issuer, "audience": one.audience}, [two.issuer, two.audience]])
    with override_settings(OIDC_GUARD_ISSUER=None, OIDC_GUARD_ISSUERS=issuers, OIDC_GUARD_AUDIENCE=None):
        assert isinstance(_state.current().validator, MultiIssuerValidator)
        c = Client()
        assert c.get("/contacts", **_bearer(one.mint(scope="contacts"))).status_code == 200
        assert c.get("/contacts", **_bearer(two.mint(scope="contacts"))).status_code == 200


def test_reference_token_through_introspection(make_issuer):
    from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET

    issuer = make_issuer(algs=("RS256",))
    with djangoproj.guard_settings(issuer, OIDC_GUARD_INTROSPECTION_CLIENT_ID=INTROSPECTION_CLIENT_ID,
                                   OIDC_GUARD_INTROSPECTION_CLIENT_SECRET=INTROSPECTION_CLIENT_SECRET):
        token = issuer.mint(reference=True, scope="contacts")
        assert Client().get("/contacts", **_bearer(token)).json()["sub"] == "alice"


# --- the system check and the command ---------------------------------------------------


def test_system_check_reports_missing_issuer_and_audience(iss):
    assert check_settings() == []
    with override_settings(OIDC_GUARD_ISSUER=None):
        errors = check_settings()
        assert [e.id for e in errors] == ["oidc_guard.E001"] and "OIDC_GUARD_ISSUER" in errors[0].msg
    with override_settings(OIDC_GUARD_AUDIENCE=None):
        assert "OIDC_GUARD_AUDIENCE" in check_settings()[0].msg
    with override_settings(OIDC_GUARD_LEEWAY="soon"):
        assert [e.id for e in check_settings()] == ["oidc_guard.E002"]
    with override_settings(OIDC_GUARD_DPOP_NONCE=True, MIDDLEWARE=[]):
        assert [e.id for e in check_settings()] == ["oidc_guard.W001"]
    # registered through the app: manage.py check sees it
    from django.core.management.base import SystemCheckError

    with override_settings(OIDC_GUARD_ISSUER=None):
        with pytest.raises(SystemCheckError, match="oidc_guard.E001"):
            call_command("check")


def _command(*args):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("oidc_guard_check", *args, stdout=out)
    return exit_info.value.code, out.getvalue()


def test_oidc_guard_check_command(iss):
    code, text = _command()
    assert code == 0 and text.startswith("ok: " + iss.issuer)
    code, text = _command("--json")
    assert code == 0 and json.loads(text)["ok"] is True
    iss.stop()
    code, text = _command()
    assert code == 3 and text.startswith("PROVIDER UNAVAILABLE".split()[0])
    with override_settings(OIDC_GUARD_AUDIENCE=None):
        code, text = _command()
        assert code == 1 and "OIDC_GUARD_AUDIENCE" in text


def test_check_on_start_stops_the_project(make_issuer):
    from django.core.handlers.wsgi import WSGIHandler

    issuer = make_issuer(algs=("RS256",))
    issuer.stop()
    with djangoproj.guard_settings(issuer, OIDC_GUARD_CHECK_ON_START=True):
        started = time.monotonic()
        from oidc_guard import ProviderError

        with pytest.raises(ProviderError):
            WSGIHandler()
        assert time.monotonic() - started < 10
