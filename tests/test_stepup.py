"""RFC 9470 step-up authentication: ``require_acr`` and
``require_auth_time`` (oidc_guard.rules, in the WSGI and Flask decorator
families) answer 401 ``insufficient_user_authentication`` with
``acr_values`` / ``max_age``, against tokens of the real LocalIssuer."""

from __future__ import annotations

import json
import time

import pytest
import webtest
from flask import Flask

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.errors import InsufficientUserAuthentication, render_error
from oidc_guard.flask import OIDCGuard, current_claims
from oidc_guard import flask as og_flask
from oidc_guard import wsgi as og_wsgi
from oidc_guard.rules import AcrRule, AuthTimeRule
from oidc_guard.testing import DPoPKey, LocalIssuer

from challenges import parse_challenges

LOA1 = "urn:oidc-guard:loa:1"
LOA2 = "urn:oidc-guard:loa:2"
LOA3 = "urn:oidc-guard:loa:3"
RESOURCE = "https://api.test/contacts"
METADATA_URL = "https://api.test/.well-known/oauth-protected-resource/contacts"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",), audience=RESOURCE) as iss:
        yield iss


def challenge_list(response):
    headers = response.headers
    fields = headers.getall("WWW-Authenticate") if hasattr(headers, "getall") else headers.getlist("WWW-Authenticate")
    return [(scheme, params) for scheme, params, _raw in parse_challenges(fields)]


# --- the rules ------------------------------------------------------------------------------


class _Claims(dict):
    pass


def test_acr_rule():
    rule = AcrRule((LOA2, LOA3))
    assert rule.deny(_Claims(acr=LOA2)) is None and rule.deny(_Claims(acr=LOA3)) is None
    for claims, words in ((_Claims(acr=LOA1), f"the token's acr is '{LOA1}'"), (_Claims(), "no acr claim"),
                          (_Claims(acr=[LOA2]), "not a string")):
        denied = rule.deny(claims)
        assert isinstance(denied, InsufficientUserAuthentication) and words in denied.description
        assert (denied.status, denied.error, denied.reason) == (401, "insufficient_user_authentication",
                                                                 "insufficient_user_authentication")
        assert denied.challenge_params == (("acr_values", f"{LOA2} {LOA3}"),)


def test_auth_time_rule_with_a_clock():
    now = 1_700_000_000.0
    rule = AuthTimeRule(300, clock=lambda: now)
    assert rule.deny(_Claims(auth_time=int(now) - 300)) is None
    assert rule.deny(_Claims(auth_time=now - 10.5)) is None
    assert rule.deny(_Claims(auth_time=int(now) + 30)) is None  # clock skew
    for claims, words in ((_Claims(auth_time=int(now) - 301), "signed in 301 seconds ago"),
                          (_Claims(), "no auth_time claim"), (_Claims(auth_time="1700000000"), "not a NumericDate"),
                          (_Claims(auth_time=True), "not a NumericDate"),
                          (_Claims(auth_time=float("nan")), "not a NumericDate"),
                          (_Claims(auth_time=int(now) + 3600), "in the future")):
        denied = rule.deny(claims)
        assert isinstance(denied, InsufficientUserAuthentication) and words in denied.description, claims
        assert denied.challenge_params == (("max_age", "300"),)


@pytest.mark.parametrize("call, error", [
    (lambda: og_wsgi.require_acr(), TypeError),
    (lambda: og_wsgi.require_acr("a b"), ValueError),
    (lambda: og_wsgi.require_acr('a"b'), ValueError),
    (lambda: og_wsgi.require_acr(2), TypeError),
    (lambda: og_wsgi.require_auth_time(max_age=0), ValueError),
    (lambda: og_wsgi.require_auth_time(max_age=True), TypeError),
    (lambda: og_wsgi.require_auth_time(max_age="300"), TypeError),
    (lambda: og_flask.require_auth_time(max_age=1.5), TypeError),
    (lambda: og_flask.require_acr(lambda: None), TypeError),
])
def test_bad_arguments_are_refused_at_decoration_time(call, error):
    with pytest.raises(error):
        call()


def test_rendered_as_rfc_9470_section_3():
    error = AcrRule((LOA2,)).deny(_Claims(acr=LOA1))
    rendered = render_error(error)
    assert rendered.status == 401
    [(scheme, params)] = [(s, p) for s, p, _r in parse_challenges([dict(rendered.headers)["WWW-Authenticate"]])]
    assert scheme == "Bearer" and params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == LOA2 and params["error_description"] == error.description
    assert rendered.body == {"error": "insufficient_user_authentication", "error_description": error.description}


# --- WSGI -----------------------------------------------------------------------------------


def _ok(environ, start_response):
    claims = environ["oidc_guard.claims"]
    body = json.dumps({"acr": claims.get("acr")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {
    "/strong": og_wsgi.require_acr(LOA2, LOA3)(_ok),
    "/recent": og_wsgi.require_auth_time(max_age=300)(_ok),
    "/both": og_wsgi.require_acr(LOA2)(og_wsgi.require_auth_time(max_age=300)(_ok)),
}


def wsgi_app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)


@pytest.fixture(scope="module")
def api(issuer):
    validator = TokenValidator(issuer.issuer, audience=RESOURCE)
    return webtest.TestApp(BearerMiddleware(wsgi_app, validator, realm="contacts", resource=RESOURCE),
                           extra_environ={"HTTP_HOST": "api.test"})


def bearer(token):
    return {"Authorization": "Bearer " + token}


def test_wsgi_acr_met_and_unmet(api, issuer):
    assert api.get("/strong", headers=bearer(issuer.mint(claims={"acr": LOA2}))).json == {"acr": LOA2}
    for claims in ({"acr": LOA1}, {}):
        r = api.get("/strong", headers=bearer(issuer.mint(claims=claims)), status=401)
        assert r.json["error"] == "insufficient_user_authentication"
        (scheme, params), (other, bare) = challenge_list(r)
        assert scheme == "Bearer" and params == {
            "realm": "contacts", "error": "insufficient_user_authentication",
            "error_description": r.json["error_description"], "acr_values": f"{LOA2} {LOA3}",
            "resource_metadata": METADATA_URL}
        assert other == "DPoP" and "error" not in bare and bare["resource_metadata"] == METADATA_URL


def test_wsgi_auth_time_met_and_unmet(api, issuer):
    now = int(time.time())
    assert api.get("/recent", headers=bearer(issuer.mint(claims={"auth_time": now - 10})))
    for claims in ({"auth_time": now - 3600}, {}):
        r = api.get("/recent", headers=bearer(issuer.mint(claims=claims)), status=401)
        (scheme, params), _dpop = challenge_list(r)
        assert params["error"] == "insufficient_user_authentication" and params["max_age"] == "300"
        assert "acr_values" not in params
    # a stale login at the right level still needs the recent login
    r = api.get("/both", headers=bearer(issuer.mint(claims={"acr": LOA2, "auth_time": now - 3600})), status=401)
    assert challenge_list(r)[0][1]["max_age"] == "300"
    assert api.get("/both", headers=bearer(issuer.mint(claims={"acr": LOA2, "auth_time": now}))).json["acr"] == LOA2


def test_wsgi_step_up_with_a_dpop_token_answers_the_dpop_scheme(api, issuer):
    key = DPoPKey("ES256")
    token = issuer.mint(claims={"cnf": key.cnf, "acr": LOA1})
    r = api.get("/strong", headers={"Authorization": "DPoP " + token,
                                    "DPoP": key.proof("GET", "http://api.test/strong", token)}, status=401)
    (scheme, params), (other, _bare) = challenge_list(r)
    assert (scheme, other) == ("DPoP", "Bearer")
    assert params["error"] == "insufficient_user_authentication" and params["acr_values"] == f"{LOA2} {LOA3}"
    assert params["resource_metadata"] == METADATA_URL and "algs" in params


def test_an_invalid_token_is_not_a_step_up(api, issuer):
    r = api.get("/strong", headers=bearer(issuer.mint(claims={"acr": LOA2}, expires_in=-600)), status=401)
    assert r.json["error"] == "invalid_token"
    r = api.get("/strong", status=401)
    assert "error" not in challenge_list(r)[0][1]


# --- Flask ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_client(issuer):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_RESOURCE=RESOURCE, OIDC_GUARD_REALM="contacts")
    OIDCGuard(app)

    @app.delete("/contacts/<int:number>")
    @og_flask.require_scope("contacts")
    @og_flask.require_acr(LOA2)
    def delete(number):
        return {"deleted": number, "acr": current_claims["acr"]}

    @app.post("/password")
    @og_flask.require_auth_time(max_age=60)
    def password():
        return {"ok": True}

    return app.test_client()


def test_flask_step_up(flask_client, issuer):
    r = flask_client.delete("/contacts/3", headers=bearer(issuer.mint(claims={"acr": LOA1})))
    assert r.status_code == 401 and r.json["error"] == "insufficient_user_authentication"
    (scheme, params), _dpop = challenge_list(r)
    assert params["acr_values"] == LOA2 and params["resource_metadata"] == METADATA_URL
    r = flask_client.delete("/contacts/3", headers=bearer(issuer.mint(claims={"acr": LOA2})))
    assert r.status_code == 200 and r.json == {"deleted": 3, "acr": LOA2}
    r = flask_client.post("/password", headers=bearer(issuer.mint(claims={"auth_time": int(time.time()) - 120})))
    assert r.status_code == 401 and challenge_list(r)[0][1]["max_age"] == "60"
    r = flask_client.post("/password", headers=bearer(issuer.mint(claims={"auth_time": int(time.time())})))
    assert r.status_code == 200
