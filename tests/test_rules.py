"""Route rules beyond scopes (scope groups, claim checks, the issuer rule)
through the WSGI and the Flask decorators, and OIDC_GUARD_ISSUERS, against
two real LocalIssuers.  Both frameworks must give the same RFC 6750 answers."""

import json
import logging

import pytest
import webtest
from flask import Flask, jsonify

from oidc_guard import BearerMiddleware, MultiIssuerValidator, TokenValidator
from oidc_guard import flask as og_flask
from oidc_guard import wsgi as og_wsgi
from oidc_guard.flask import ConfigurationError, OIDCGuard
from oidc_guard.rules import ClaimRules, ScopeGroups

from test_wsgi_middleware import assert_error, bearer

REALM = "contacts-api"


@pytest.fixture(scope="module")
def issuers():
    from oidc_guard.testing import LocalIssuer

    with LocalIssuer(algs=("RS256",)) as old, LocalIssuer(algs=("ES256",)) as new:
        yield old, new


def _routes(deco):
    """(path, decorator) pairs, the same for WSGI and Flask."""
    return {
        "/groups": deco.require_scope_groups("contacts wte", "coordinate"),
        "/groups-list": deco.require_scope_groups(["a", "b", "c"], "d e"),
        "/tenant": deco.require_claims(tenant="acme"),
        "/admin": deco.require_claims(roles=deco.includes("admin")),
        "/mfa": deco.require_claims(amr=lambda v: isinstance(v, list) and "mfa" in v),
        "/url-claim": deco.require_claims({"https://acme.example/plan": "gold"}, tenant="acme"),
        "/number": deco.require_claims(level=2),
        "/bad-predicate": deco.require_claims(tenant=lambda v: 1 / 0),
        "/non-bool": deco.require_claims(tenant=lambda v: v),
    }


def wsgi_app(validator):
    routes = {}
    for path, decorate in _routes(og_wsgi).items():
        def view(environ, start_response, path=path):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"ok": path}).encode()]
        routes[path] = decorate(view)

    def app(environ, start_response):
        return routes[environ["PATH_INFO"]](environ, start_response)

    return BearerMiddleware(app, validator, realm=REALM)


def flask_app(validator):
    app = Flask(__name__)
    OIDCGuard(app, validator=validator, realm=REALM)
    for path, decorate in _routes(og_flask).items():
        def view(path=path):
            return jsonify(ok=path)
        app.add_url_rule(path, path, decorate(view))
    return app


@pytest.fixture(params=["wsgi", "flask"])
def api(request, issuers):
    old, new = issuers
    validator = MultiIssuerValidator([TokenValidator(old.issuer, audience="api://contacts"),
                                      TokenValidator(new.issuer, audience="api://contacts")])
    build = wsgi_app if request.param == "wsgi" else flask_app
    return webtest.TestApp(build(validator))


def get(api, path, token, status=200):
    return api.get(path, headers=bearer(token), status=status)


# --- scope groups ---------------------------------------------------------------


@pytest.mark.parametrize("scope", ["contacts wte", ["contacts", "wte", "x"], "coordinate", ["coordinate"]])
def test_any_one_complete_group_is_enough(api, issuers, scope):
    assert get(api, "/groups", issuers[0].mint(scope=scope)).json == {"ok": "/groups"}


@pytest.mark.parametrize("scope, hint", [
    ("contacts", "contacts wte"),      # closest group: one missing
    ("wte x", "contacts wte"),
    ("x", "coordinate"),                # the smaller group: least privilege
    (None, "coordinate"),
])
def test_no_complete_group_is_403_insufficient_scope_naming_the_closest(api, issuers, scope, hint):
    r = get(api, "/groups", issuers[0].mint(scope=scope), status=403)
    text = assert_error(r, 403, "insufficient_scope", scope=hint)
    assert '"contacts wte" or "coordinate"' in text


def test_closest_group_prefers_fewest_missing(api, issuers):
    r = get(api, "/groups-list", issuers[0].mint(scope="d"), status=403)
    assert_error(r, 403, "insufficient_scope", scope="d e")
    r = get(api, "/groups-list", issuers[0].mint(scope="a b"), status=403)
    assert_error(r, 403, "insufficient_scope", scope="a b c")
    r = get(api, "/groups-list", issuers[0].mint(scope="a"), status=403)  # a tie: the first listed
    assert_error(r, 403, "insufficient_scope", scope="a b c")


def test_no_token_and_bad_token_are_still_401(api, issuers):
    r = api.get("/groups", status=401)
    assert_error(r, 401, None)
    r = get(api, "/tenant", issuers[0].mint(expires_in=-3600), status=401)
    assert_error(r, 401, "invalid_token")


def test_scope_groups_are_checked_at_decoration():
    for bad in ((), ("",), ("a  ", "  "), ("a\"b",), (3,), ([],)):
        with pytest.raises((TypeError, ValueError)):
            ScopeGroups.parse(bad)
    assert ScopeGroups.parse(("a b a", ["c"])).groups == (("a", "b"), ("c",))


# --- claim checks ------------------------------------------------------------------


def test_claim_equals(api, issuers):
    ok = issuers[0].mint({"tenant": "acme"})
    assert get(api, "/tenant", ok).json == {"ok": "/tenant"}
    for token in (issuers[0].mint({"tenant": "globex"}), issuers[0].mint({"tenant": ["acme"]}), issuers[0].mint()):
        r = get(api, "/tenant", token, status=403)
        text = assert_error(r, 403, "insufficient_claims")
        assert "'tenant'" in text
        # never the expected value, never the token's value
        assert "acme" not in r.text and "globex" not in r.text


def test_claim_equality_is_json_equality(api, issuers):
    assert get(api, "/number", issuers[0].mint({"level": 2})).status_int == 200
    assert get(api, "/number", issuers[0].mint({"level": 2.0})).status_int == 200
    for value in ("2", True, [2]):
        get(api, "/number", issuers[0].mint({"level": value}), status=403)


@pytest.mark.parametrize("roles, status", [
    (["user", "admin"], 200),
    ("admin", 200),            # IdentityServer v3 sends a single role as a string
    (["user"], 403),
    ("administrator", 403),
    (None, 403),
    ({"admin": True}, 403),
])
def test_claim_includes(api, issuers, roles, status):
    claims = {} if roles is None else {"roles": roles}
    r = get(api, "/admin", issuers[0].mint(claims), status=status)
    if status == 403:
        assert_error(r, 403, "insufficient_claims")
        assert "admin" not in r.json["error_description"].replace("'roles'", "")


def test_claim_predicate(api, issuers):
    assert get(api, "/mfa", issuers[0].mint({"amr": ["pwd", "mfa"]})).status_int == 200
    get(api, "/mfa", issuers[0].mint({"amr": "pwd"}), status=403)
    get(api, "/mfa", issuers[0].mint(), status=403)  # missing: predicate not called


def test_claim_names_that_are_not_identifiers(api, issuers):
    token = issuers[0].mint({"tenant": "acme", "https://acme.example/plan": "gold"})
    assert get(api, "/url-claim", token).status_int == 200
    r = get(api, "/url-claim", issuers[0].mint({"tenant": "acme", "https://acme.example/plan": "tin"}), status=403)
    assert "https://acme.example/plan" in r.json["error_description"] and "gold" not in r.text


def test_a_broken_predicate_denies_and_logs(api, issuers, caplog):
    caplog.set_level(logging.ERROR, logger="oidc_guard.rules")
    r = get(api, "/bad-predicate", issuers[0].mint({"tenant": "acme"}), status=403)
    assert_error(r, 403, "insufficient_claims")
    assert any("raised" in rec.getMessage() for rec in caplog.records)
    # a truthy non-bool (say, a str) is not a yes
    get(api, "/non-bool", issuers[0].mint({"tenant": "acme"}), status=403)
    assert any("not a bool" in rec.getMessage() for rec in caplog.records)


def test_claim_rules_are_checked_at_decoration():
    with pytest.raises(TypeError):
        ClaimRules.parse(None, {})
    with pytest.raises(TypeError):
        ClaimRules.parse(None, {"tenant": None})
    with pytest.raises(TypeError):
        ClaimRules.parse(None, {"tenant": object()})
    with pytest.raises(TypeError, match="given twice"):
        ClaimRules.parse({"tenant": "a"}, {"tenant": "b"})
    with pytest.raises(TypeError):
        og_wsgi.includes()
    with pytest.raises(TypeError):
        og_wsgi.includes(["a"])


# --- the issuer rule --------------------------------------------------------------------


@pytest.mark.parametrize("framework", ["wsgi", "flask"])
def test_require_issuer_admits_one_tenant(issuers, framework):
    old, new = issuers
    validator = MultiIssuerValidator([TokenValidator(old.issuer, audience="api://contacts"),
                                      TokenValidator(new.issuer, audience="api://contacts")])
    deco = og_wsgi if framework == "wsgi" else og_flask
    if framework == "wsgi":
        @deco.require_issuer(new.issuer)
        @deco.require_scope("contacts")
        def view(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        api = webtest.TestApp(BearerMiddleware(view, validator, realm=REALM))
    else:
        app = Flask(__name__)
        OIDCGuard(app, validator=validator, realm=REALM)

        @app.get("/")
        @deco.require_issuer(new.issuer)
        @deco.require_scope("contacts")
        def view():
            return "ok"
        api = webtest.TestApp(app)
    assert api.get("/", headers=bearer(new.mint())).text == "ok"
    r = api.get("/", headers=bearer(old.mint()), status=403)
    assert_error(r, 403, "insufficient_claims")
    assert new.issuer not in r.text and old.issuer not in r.text
    # the issuer rule runs first, the scope rule after it
    r = api.get("/", headers=bearer(new.mint(scope="wte")), status=403)
    assert_error(r, 403, "insufficient_scope", scope="contacts")
    with pytest.raises(TypeError):
        deco.require_issuer()


# --- OIDC_GUARD_ISSUERS -------------------------------------------------------------------


def _guarded(config, **kwargs):
    app = Flask(__name__)
    app.config.update(config)
    state = OIDCGuard(app, **kwargs).state(app)

    @app.get("/")
    @og_flask.require_token()
    def who():
        return jsonify(iss=og_flask.current_claims.issuer)

    return app, state


@pytest.mark.parametrize("form", ["dicts", "pairs", "json"])
def test_issuers_setting_builds_one_member_per_issuer(issuers, form):
    old, new = issuers
    entries = {
        "dicts": [{"issuer": old.issuer, "audience": old.issuer + "/resources", "leeway": 5},
                  {"issuer": new.issuer, "audience": "api://contacts"}],
        "pairs": [(old.issuer, old.issuer + "/resources"), (new.issuer, "api://contacts")],
        "json": json.dumps([{"issuer": old.issuer, "audience": old.issuer + "/resources", "leeway": 5},
                            [new.issuer, "api://contacts"]]),
    }[form]
    app, state = _guarded({"OIDC_GUARD_ISSUERS": entries, "OIDC_GUARD_LEEWAY": 30})
    assert isinstance(state.validator, MultiIssuerValidator)
    assert [v.issuer for v in state.validators] == [old.issuer, new.issuer]
    assert state.validators[0].audiences == (old.issuer + "/resources",)
    assert state.validators[1].leeway == 30  # shared setting
    if form != "pairs":
        assert state.validators[0].leeway == 5  # per-issuer setting wins
    api = webtest.TestApp(app)
    token = old.mint(audience=old.issuer + "/resources", typ="JWT", scope=["contacts"], subject=None)
    assert api.get("/", headers=bearer(token)).json == {"iss": old.issuer}
    assert api.get("/", headers=bearer(new.mint())).json == {"iss": new.issuer}
    api.get("/", headers=bearer(new.mint(audience=old.issuer + "/resources")), status=401)


def test_issuers_setting_takes_a_ready_validator_and_audience_default(issuers):
    old, new = issuers
    ready = MultiIssuerValidator([TokenValidator(new.issuer, audience="x")])
    _, state = _guarded({"OIDC_GUARD_ISSUERS": ready})
    assert state.validator is ready and state.validators == (ready.validators[0],)
    _, state = _guarded({"OIDC_GUARD_ISSUERS": [[old.issuer], [new.issuer]], "OIDC_GUARD_AUDIENCE": "api://contacts"})
    assert [v.audiences for v in state.validators] == [("api://contacts",), ("api://contacts",)]
    _, state = _guarded({}, issuers=[(new.issuer, "a")])
    assert state.validators[0].issuer == new.issuer
    _, single = _guarded({"OIDC_GUARD_ISSUER": new.issuer, "OIDC_GUARD_AUDIENCE": "a"})
    assert single.validators == (single.validator,)


@pytest.mark.parametrize("config, words", [
    ({"OIDC_GUARD_ISSUERS": "[{"}, "not valid JSON"),
    ({"OIDC_GUARD_ISSUERS": []}, "non-empty list"),
    ({"OIDC_GUARD_ISSUERS": {"issuer": "https://a"}}, "non-empty list"),
    ({"OIDC_GUARD_ISSUERS": [{"issuer": "https://a"}]}, "no audience"),
    ({"OIDC_GUARD_ISSUERS": [{"audience": "a"}]}, "no issuer"),
    ({"OIDC_GUARD_ISSUERS": [{"issuer": "https://a", "audience": "a", "colour": "red"}]}, "unknown key"),
    ({"OIDC_GUARD_ISSUERS": [("https://a", "a", "b")]}, "pair"),
    ({"OIDC_GUARD_ISSUERS": [("https://a", "a"), ("https://a", "b")]}, "listed twice"),
    ({"OIDC_GUARD_ISSUERS": [("ftp://a", "a")]}, "OIDC_GUARD_ISSUERS[0]"),
    ({"OIDC_GUARD_ISSUERS": [("https://a", "a")], "OIDC_GUARD_ISSUER": "https://b"}, "not both"),
    ({"OIDC_GUARD_ISSUERS": [("https://a", "a")], "OIDC_GUARD_JWKS_URI": "https://a/k"}, "per issuer"),
    ({"OIDC_GUARD_ISSUERS": [{"issuer": "https://a", "audience": "a", "allow_http": "maybe"}]}, "boolean"),
])
def test_issuers_setting_errors_are_clear(config, words):
    with pytest.raises(ConfigurationError) as info:
        _guarded(config)
    assert words in str(info.value)


def test_issuers_and_validator_keyword_clash():
    with pytest.raises(TypeError, match="not both"):
        OIDCGuard(validator=object(), issuers=[("https://a", "a")])


# --- one scope-name check for every decorator (oidc_guard.rules.check_scope_names)


def _view(environ, start_response):  # pragma: no cover - never called
    return []


@pytest.mark.parametrize("make, name", [
    (lambda *a: og_wsgi.require_scope(*a), "require_scope"),
    (lambda *a: og_wsgi.require_any_scope(*a), "require_any_scope"),
    (lambda *a: og_flask.require_scope(*a), "require_scope"),
    (lambda *a: og_wsgi.require_scope_groups([*a]), "require_scope_groups"),
    (lambda *a: ScopeGroups.parse([list(a)]), "require_scope_groups"),
])
def test_scope_name_errors_say_the_same_everywhere(make, name):
    with pytest.raises(ValueError) as caught:
        make("contacts", "a b")
    assert str(caught.value) == (
        f"{name}(): 'a b' is not a valid scope name (RFC 6749 section 3.3; pass each scope separately)")
    with pytest.raises(ValueError) as caught:
        make('a"b')
    assert str(caught.value) == f"{name}(): 'a\"b' is not a valid scope name (RFC 6749 section 3.3)"
    with pytest.raises(TypeError) as caught:
        make("contacts", 3)
    assert str(caught.value) == f"{name}() takes scope names as str, got int"


@pytest.mark.parametrize("decorator", [og_wsgi.require_scope, og_wsgi.require_any_scope, og_flask.require_scope])
def test_bare_scope_decorator_error_says_to_add_parentheses(decorator):
    with pytest.raises(TypeError) as caught:
        decorator(_view)
    name = decorator.__name__
    assert str(caught.value) == (
        f'{name}() takes scope names as str, got function (write @{name}("scope"), not @{name})')
