"""The framework-free core: ``oidc_guard.auth.Authenticator`` on request facts
without any WSGI environ, the one ``AuthResult`` per request, a ready
``DPoPVerifier`` given to the middleware, ``errors.render_error`` and the
decorator family shared by WSGI and Flask.  Against LocalIssuer, as the
other middleware tests."""

from __future__ import annotations

import json

import flask
import pytest
import webtest

from oidc_guard import BearerMiddleware, ConfigurationError, InsufficientScope, InvalidRequest, ProviderError
from oidc_guard import TokenValidator
from oidc_guard import auth as auth_module
from oidc_guard import flask as og_flask
from oidc_guard import wsgi as og_wsgi
from oidc_guard.auth import AuthResult, Authenticator
from oidc_guard.credentials import Facts
from oidc_guard.dpop import DPoPVerifier, UseDPoPNonce
from oidc_guard.errors import ChallengeSettings, ErrorResponse, InvalidToken, MissingToken, render_error
from oidc_guard.rules import evaluate, includes, scope_rule
from oidc_guard.testing import DPoPKey, LocalIssuer

from challenges import challenges as parse_challenges

AUDIENCE = "api://contacts"
REALM = "contacts-api"
HOST = "api.test"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


@pytest.fixture(scope="module")
def validator(issuer):
    return TokenValidator(issuer=issuer.issuer, audience=AUDIENCE)


# --- authenticate() on facts, no environ -------------------------------------------------


def test_authenticate_facts_without_environ(issuer, validator):
    a = Authenticator(validator, realm=REALM)
    token = issuer.mint(scope="contacts")
    result = a.authenticate(Facts("GET", authorization="Bearer " + token, path="/contacts"))
    assert isinstance(result, AuthResult)
    assert result.claims is not None and result.claims.subject == "alice"
    assert result.error is None and result.token_present and result.scheme == "bearer"
    assert result.credential.source == "header" and result.credential.token == token
    assert token not in repr(result)  # the token never in a repr (RFC 6750 section 5.1)
    assert result.binding is None and a.refusal(result) is None
    assert evaluate(result, scope_rule(("contacts",), "all", "t")) is None
    assert isinstance(evaluate(result, scope_rule(("wte",), "all", "t")), InsufficientScope)


def test_authenticate_refusals_on_facts(issuer, validator):
    a = Authenticator(validator, realm=REALM, required=True)
    bad = a.authenticate(Facts("GET", authorization="Bearer " + issuer.mint(expires_in=-3600)))
    assert bad.claims is None and bad.error.reason == "expired" and bad.token_present
    rendered = a.refusal(bad)
    assert rendered.status == 401 and rendered.body["error"] == "invalid_token"
    none = a.authenticate(Facts("GET"))
    assert none == (None, None, None, None, a.challenge, None) and not none.token_present
    assert isinstance(evaluate(none), MissingToken)
    assert a.refusal(none).body["error"] == "unauthorized"  # required=True: 401, bare challenge
    malformed = a.authenticate(Facts("GET", authorization="Bearer a b"))
    assert isinstance(malformed.error, InvalidRequest) and a.refusal(malformed).status == 400
    # required=False: only the malformed request is answered by the adapter
    lenient = Authenticator(validator)
    assert lenient.refusal(lenient.authenticate(Facts("GET", authorization="Bearer a b"))).status == 400
    assert lenient.refusal(lenient.authenticate(Facts("GET"))) is None


def test_authenticate_pre_read_form_body(issuer, validator):
    token = issuer.mint()
    a = Authenticator(validator, accept_form=True, max_form_bytes=4096)
    form = ("x=1&access_token=" + token).encode()
    result = a.authenticate(Facts("POST", content_type="application/x-www-form-urlencoded", form=form))
    assert result.claims is not None and result.credential.source == "form"
    small = Authenticator(validator, accept_form=True, max_form_bytes=16)  # over the limit: not searched
    assert small.authenticate(Facts("POST", content_type="application/x-www-form-urlencoded",
                                    form=form)).credential is None
    read = []
    lazy = a.authenticate(Facts("POST", content_type="application/x-www-form-urlencoded",
                                form=lambda limit: read.append(limit) or form))
    assert lazy.claims is not None and read == [4096]


def test_authenticate_dpop_on_facts(issuer, validator):
    key = DPoPKey("ES256")
    a = Authenticator(validator, public_url="https://api.example.com")
    token = issuer.mint(claims={"cnf": key.cnf})
    proof = key.proof("GET", "https://api.example.com/app/jobs", token)
    result = a.authenticate(Facts("GET", authorization="DPoP " + token, dpop=proof, root_path="/app", path="/jobs"))
    assert result.error is None and result.binding == "dpop" and result.proof.jkt == key.jkt
    replay = a.authenticate(Facts("GET", authorization="DPoP " + token, dpop=proof, root_path="/app", path="/jobs"))
    assert replay.error.reason == "dpop_proof"
    assert replay.render(replay.error).headers[2][1].startswith('DPoP error="invalid_dpop_proof"')


def test_the_result_is_immutable(issuer, validator):
    result = Authenticator(validator).authenticate(Facts("GET", authorization="Bearer " + issuer.mint()))
    with pytest.raises(AttributeError):
        result.claims = None  # type: ignore[misc]


# --- one record per request, one extraction ------------------------------------------------


def test_decorators_read_the_one_result_and_nothing_extracts_twice(issuer, validator, monkeypatch):
    calls = []
    real = auth_module.credential_from

    def counting(facts, **kw):
        calls.append(kw)
        return real(facts, **kw)

    monkeypatch.setattr(auth_module, "credential_from", counting)
    app = flask.Flask(__name__)
    og_flask.OIDCGuard(app, validator=validator, accept_form=True)

    @app.post("/contacts")
    @og_flask.require_scope("contacts")
    def contacts():
        environ = flask.request.environ
        assert flask.request.form["access_token"]  # the view reads the body: still one credential
        # the legacy keys are derived from the one record
        result = environ["oidc_guard.result"]
        assert environ["oidc_guard.claims"] is result.claims is og_flask.get_claims()
        assert environ["oidc_guard.credential"] is result.credential
        return {"sub": og_flask.current_claims.subject}

    token = issuer.mint(scope="contacts")
    r = app.test_client().post("/contacts", data={"access_token": token})
    assert r.status_code == 200 and r.json == {"sub": "alice"}
    assert len(calls) == 1


def test_decorator_trusts_the_result_not_the_legacy_keys(issuer, validator):
    def tamper(environ, start_response):
        environ["oidc_guard.claims"] = None  # a later layer changes a legacy key
        environ["oidc_guard.token_present"] = False
        return inner(environ, start_response)

    def ok(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    inner = og_wsgi.require_scope("contacts")(ok)
    api = webtest.TestApp(BearerMiddleware(tamper, validator))
    assert api.get("/", headers={"Authorization": "Bearer " + issuer.mint(scope="contacts")}).body == b"ok"


def test_hand_built_legacy_environ_still_works():
    denied = og_wsgi.check_access({"oidc_guard.token_present": False, "oidc_guard.claims": None,
                                   "oidc_guard.realm": "r"})
    assert denied is not None and denied[0] == "401 Unauthorized"
    assert ("WWW-Authenticate", 'Bearer realm="r"') in denied[1]
    with pytest.raises(RuntimeError):
        og_wsgi.check_access({})


# --- dpop=DPoPVerifier(...) ----------------------------------------------------------------


def test_middleware_takes_a_ready_verifier(issuer, validator):
    key = DPoPKey("ES256")
    verifier = DPoPVerifier(algorithms=("ES256",))

    def app(environ, start_response):
        start_response("200 OK", [])
        return [environ["oidc_guard.claims"].binding.encode()]

    mw = BearerMiddleware(og_wsgi.require_token()(app), validator, realm=REALM, dpop=verifier,
                          public_url="https://api.example.com")
    assert mw.dpop == "allowed" and mw.dpop_verifier is verifier
    api = webtest.TestApp(mw)
    token = issuer.mint(claims={"cnf": key.cnf})
    r = api.get("/x", headers={"Authorization": "DPoP " + token,
                               "DPoP": key.proof("GET", "https://api.example.com/x", token)})
    assert r.body == b"dpop"
    r = api.get("/x", expect_errors=True)
    assert r.status_int == 401
    assert parse_challenges(r.headers.getall("WWW-Authenticate"))["DPoP"] == f'DPoP realm="{REALM}", algs="ES256"'
    with pytest.raises(ConfigurationError):
        BearerMiddleware(app, validator, dpop=verifier, dpop_nonce=True)
    with pytest.raises(ConfigurationError):
        BearerMiddleware(app, validator, dpop="sometimes")


# --- render_error -------------------------------------------------------------------------


SETTINGS = ChallengeSettings(REALM, "allowed", "ES256 RS256")


def test_render_no_token_offers_both_schemes():
    rendered = render_error(None, SETTINGS)
    assert isinstance(rendered, ErrorResponse) and rendered.status == 401
    assert rendered.headers == [
        ("Content-Type", "application/json"), ("Cache-Control", "no-store"),
        ("WWW-Authenticate", f'Bearer realm="{REALM}", DPoP realm="{REALM}", algs="ES256 RS256"')]
    assert rendered.body == {"error": "unauthorized", "error_description": "a bearer token is required"}
    assert render_error(MissingToken(), SETTINGS) == rendered


def test_render_errors_per_scheme_and_status():
    scope = render_error(InsufficientScope("need wte", ["wte"]), SETTINGS, "dpop")
    assert scope.status == 403  # a 403 answers the scheme that was used, only
    assert dict(scope.headers)["WWW-Authenticate"] == \
        f'DPoP realm="{REALM}", error="insufficient_scope", error_description="need wte", scope="wte", algs="ES256 RS256"'
    bad = render_error(InvalidToken("expired"), ChallengeSettings(REALM, "required", "ES256"), "bearer")
    assert dict(bad.headers)["WWW-Authenticate"] == \
        f'DPoP realm="{REALM}", error="invalid_token", error_description="expired", algs="ES256"'
    nonce = render_error(UseDPoPNonce("fresh nonce please", "n-1"), SETTINGS, "bearer")
    names = [name for name, _ in nonce.headers]
    assert names == ["Content-Type", "Cache-Control", "WWW-Authenticate", "DPoP-Nonce"]
    assert dict(nonce.headers)["WWW-Authenticate"].startswith('DPoP realm="contacts-api", error="use_dpop_nonce"')
    down = render_error(ProviderError("http://10.0.0.1/jwks refused", retry_after=7), SETTINGS)
    assert down.status == 503 and ("Retry-After", "7") in down.headers
    assert "WWW-Authenticate" not in dict(down.headers) and "10.0.0.1" not in json.dumps(down.body)


def test_render_extra_challenge_params_hooks():
    class StepUp(InvalidToken):
        error = "insufficient_user_authentication"
        challenge_params = (("max_age", "300"),)

    settings = SETTINGS._replace(params=(("resource_metadata", "https://api/.well-known/x"),))
    value = dict(render_error(StepUp("too old"), settings, "bearer").headers)["WWW-Authenticate"]
    assert value == (f'Bearer realm="{REALM}", error="insufficient_user_authentication", '
                     'error_description="too old", max_age="300", resource_metadata="https://api/.well-known/x", '
                     f'DPoP realm="{REALM}", algs="ES256 RS256", resource_metadata="https://api/.well-known/x"')


def test_render_serialisations_agree():
    rendered = render_error(InvalidToken('kid "x" unknown'), SETTINGS, "bearer")
    status, headers, body = rendered.wsgi()
    assert status == "401 Unauthorized" and json.loads(body) == rendered.body == json.loads(rendered.body_bytes())
    assert headers[:-1] == rendered.headers and headers[-1] == ("Content-Length", str(len(body)))
    assert rendered.headers is not render_error(InvalidToken("x"), SETTINGS).headers  # a new list each time


# --- the same decorator family in WSGI and Flask -----------------------------------------

DECORATED = {
    "/token": lambda m: m.require_token(),
    "/bare": lambda m: m.require_token,
    "/bound": lambda m: m.require_token(bound=True),
    "/scope": lambda m: m.require_scope("contacts", "wte"),
    "/any": lambda m: m.require_any_scope("wte", "coordinate"),
    "/groups": lambda m: m.require_scope_groups("contacts wte", "coordinate"),
    "/claims": lambda m: m.require_claims(sub="alice", amr=includes("mfa")),
    "/issuer": lambda m: m.require_issuer("https://other.example"),
}


def _wsgi_client(validator):
    def ok(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    routes = {path: make(og_wsgi)(ok) for path, make in DECORATED.items()}

    def app(environ, start_response):
        return routes[environ["PATH_INFO"]](environ, start_response)

    return webtest.TestApp(BearerMiddleware(app, validator, realm=REALM))


def _flask_client(validator):
    app = flask.Flask(__name__)
    og_flask.OIDCGuard(app, validator=validator, realm=REALM)
    for path, make in DECORATED.items():
        app.add_url_rule(path, path, make(og_flask)(lambda: "ok"))
    return app.test_client()


def test_the_decorator_family_answers_alike_in_wsgi_and_flask(issuer, validator):
    assert og_wsgi.require_scope.__func__ is og_flask.require_scope.__func__  # defined once
    tokens = {
        "none": None,
        "bad": "not-a-token",
        "expired": issuer.mint(expires_in=-3600),
        "contacts": issuer.mint(scope="contacts"),
        "all": issuer.mint(scope="contacts wte coordinate", claims={"amr": ["pwd", "mfa"]}),
    }
    w, f = _wsgi_client(validator), _flask_client(validator)
    seen = set()
    for path in DECORATED:
        for name, token in tokens.items():
            headers = {"Authorization": "Bearer " + token} if token else {}
            a = w.get(path, headers=headers, expect_errors=True)
            b = f.get(path, headers=headers)
            assert a.status_int == b.status_code, (path, name)
            assert a.headers.get("WWW-Authenticate") == b.headers.get("WWW-Authenticate"), (path, name)
            if a.status_int != 200:
                assert json.loads(a.body) == b.json, (path, name)
            seen.add(a.status_int)
    assert seen == {200, 401, 403}
