"""The Flask extension through webtest, against the real LocalIssuer.

Function views, MethodView (decorated methods and ``decorators = [...]``),
blueprints, async views, app factories and several apps in one process; the
error responses are byte-for-byte those of the WSGI layer.
"""

import logging

import pytest
import webtest
from flask import Blueprint, Flask, jsonify, request
from flask.views import MethodView

from oidc_guard import OIDCGuardError, TokenValidator
from oidc_guard.errors import InsufficientScope, error_response
from oidc_guard.flask import (
    ConfigurationError,
    OIDCGuard,
    current_claims,
    get_claims,
    require_any_scope,
    require_scope,
    require_token,
)
from oidc_guard.testing import LocalIssuer
from oidc_guard.wsgi import BearerMiddleware

from test_wsgi_middleware import assert_error, assert_unavailable, bearer

REALM = "contacts-api"
AUDIENCE = "api://contacts"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


def _claims_json():
    claims = get_claims()
    return jsonify(
        sub=current_claims.subject if current_claims else None,
        scopes=sorted(claims.scopes) if claims is not None else None,
        remote_user=request.environ.get("REMOTE_USER"),
    )


contacts_bp = Blueprint("contacts", __name__, url_prefix="/bp")


@contacts_bp.get("/contacts")
@require_scope("contacts")
def bp_contacts():
    return _claims_json()


class ContactView(MethodView):
    """Decorated methods: GET needs contacts, DELETE needs contacts and wte."""

    @require_scope("contacts")
    def get(self, contact_id):
        return jsonify(id=contact_id, sub=current_claims.subject)

    @require_scope("contacts", "wte")
    def delete(self, contact_id):
        return jsonify(deleted=contact_id)


class CoordinateView(MethodView):
    """Class-wide requirement through Flask's ``decorators`` list."""

    decorators = [require_any_scope("coordinate", "wte")]

    def get(self):
        return jsonify(sub=current_claims.subject, scopes=sorted(current_claims.scopes))

    async def post(self):
        return jsonify(posted=True, sub=current_claims.subject)


def register_routes(app):
    @app.get("/public")
    def public():
        return _claims_json()

    @app.get("/token")
    @require_token()
    def token_only():
        return _claims_json()

    @app.get("/token-bare")
    @require_token
    def token_bare():
        return _claims_json()

    @app.get("/contacts")
    @require_scope("contacts")
    def contacts():
        return _claims_json()

    @app.get("/contacts-wte")
    @require_scope("contacts", "wte")
    def contacts_wte():
        return _claims_json()

    @app.get("/wte-or-coordinate")
    @require_any_scope("wte", "coordinate")
    def wte_or_coordinate():
        return _claims_json()

    @app.post("/form")
    @require_token()
    def form():
        return jsonify(form=request.form.to_dict(), sub=current_claims.subject)

    app.add_url_rule("/contact/<int:contact_id>", view_func=ContactView.as_view("contact"))
    app.add_url_rule("/coordinate", view_func=CoordinateView.as_view("coordinate"))
    app.register_blueprint(contacts_bp)
    return app


def create_app(issuer_url, **overrides):
    """An application factory, as a user would write it."""
    app = Flask(__name__)
    app.config.update(
        OIDC_GUARD_ISSUER=issuer_url,
        OIDC_GUARD_AUDIENCE=AUDIENCE,
        OIDC_GUARD_REALM=REALM,
    )
    OIDCGuard(app, **overrides)
    return register_routes(app)


@pytest.fixture(scope="module")
def app(issuer):
    return create_app(issuer.issuer)


@pytest.fixture()
def api(app):
    return webtest.TestApp(app)


# --- configuration ---------------------------------------------------------------


def test_init_app_registers_state_and_wraps_wsgi_app(issuer):
    app = Flask(__name__)
    app.config.update(
        OIDC_GUARD_ISSUER=issuer.issuer,
        OIDC_GUARD_AUDIENCE=[AUDIENCE, "api://other"],
        OIDC_GUARD_REALM="r",
        OIDC_GUARD_LEEWAY=5,
        OIDC_GUARD_ALGORITHMS=["RS256", "ES256"],
        OIDC_GUARD_HTTP_TIMEOUT=2,
        OIDC_GUARD_CACHE_SIZE=0,
        OIDC_GUARD_ACCEPT_QUERY="true",
        OIDC_GUARD_REQUIRED="0",
    )
    guard = OIDCGuard()
    state = guard.init_app(app)
    assert app.extensions["oidc_guard"] is state
    assert state.guard is guard
    assert isinstance(app.wsgi_app, BearerMiddleware) and app.wsgi_app is state.middleware
    validator = state.validator
    assert isinstance(validator, TokenValidator)
    assert validator.issuer == issuer.issuer
    assert validator.audiences == (AUDIENCE, "api://other")
    assert validator.leeway == 5 and validator.http_timeout == 2
    assert validator.algorithms == {"RS256", "ES256"}
    assert state.realm == "r"
    assert state.middleware.accept_query is True and state.middleware.required is False
    assert state.middleware.accept_form is False
    with app.app_context():
        assert guard.validator is validator


def test_keyword_arguments_override_config(issuer):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER="http://127.0.0.1:9", OIDC_GUARD_AUDIENCE="api://x", OIDC_GUARD_REALM="cfg")
    guard = OIDCGuard(app, issuer=issuer.issuer, audience=AUDIENCE, realm="kw", leeway=0, required=True)
    state = app.extensions["oidc_guard"]
    assert state.validator.issuer == issuer.issuer
    assert state.validator.audiences == (AUDIENCE,)
    assert state.validator.leeway == 0
    assert state.realm == "kw" and state.middleware.required is True
    assert guard.validator is state.validator  # the app given to the constructor


@pytest.mark.parametrize(
    "config, missing",
    [
        ({"OIDC_GUARD_AUDIENCE": AUDIENCE}, "OIDC_GUARD_ISSUER"),
        ({"OIDC_GUARD_ISSUER": "https://idp.example.com"}, "OIDC_GUARD_AUDIENCE"),
        ({"OIDC_GUARD_ISSUER": "https://idp.example.com", "OIDC_GUARD_AUDIENCE": ""}, "OIDC_GUARD_AUDIENCE"),
        ({}, "OIDC_GUARD_ISSUER and OIDC_GUARD_AUDIENCE"),
    ],
)
def test_missing_issuer_or_audience_is_a_clear_error_at_init(config, missing):
    app = Flask(__name__)
    app.config.update(config)
    original = app.wsgi_app
    with pytest.raises(ConfigurationError) as info:
        OIDCGuard(app)
    assert missing in str(info.value)
    assert isinstance(info.value, OIDCGuardError) and isinstance(info.value, ValueError)
    assert "oidc_guard" not in app.extensions and app.wsgi_app == original


def test_invalid_values_are_reported_at_init():
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER="https://idp.example.com", OIDC_GUARD_AUDIENCE=AUDIENCE)
    with pytest.raises(ConfigurationError, match="OIDC_GUARD_REQUIRED must be a boolean"):
        OIDCGuard(app, required="sometimes")
    with pytest.raises(ConfigurationError, match="HS256"):
        OIDCGuard(app, algorithms=["HS256"])
    with pytest.raises(ConfigurationError):
        OIDCGuard(app, issuer="http://idp.example.com")  # plain http, not loopback


def test_string_false_never_switches_a_flag_on():
    app = Flask(__name__)
    app.config.update(
        OIDC_GUARD_ISSUER="https://idp.example.com",
        OIDC_GUARD_AUDIENCE=AUDIENCE,
        OIDC_GUARD_ACCEPT_QUERY="false",
        OIDC_GUARD_ACCEPT_FORM="off",
        OIDC_GUARD_REQUIRED="yes",
    )
    middleware = OIDCGuard(app).state(app).middleware
    assert (middleware.accept_query, middleware.accept_form, middleware.required) == (False, False, True)


def test_ready_validator_keyword(issuer):
    validator = TokenValidator(issuer=issuer.issuer, audience=AUDIENCE)
    app = register_routes(Flask(__name__))
    OIDCGuard(app, validator=validator, realm=REALM)  # no issuer/audience config needed
    assert app.extensions["oidc_guard"].validator is validator
    response = webtest.TestApp(app).get("/contacts", headers=bearer(issuer.mint()))
    assert response.json["sub"] == "alice"


def test_bad_keywords_are_type_errors(issuer):
    with pytest.raises(TypeError, match="isuer"):
        OIDCGuard(isuer="x")
    validator = TokenValidator(issuer=issuer.issuer, audience=AUDIENCE)
    with pytest.raises(TypeError, match="either validator= or"):
        OIDCGuard(validator=validator, audience=AUDIENCE)


def test_init_app_twice_is_an_error(issuer):
    app = Flask(__name__)
    guard = OIDCGuard(issuer=issuer.issuer, audience=AUDIENCE)
    guard.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        guard.init_app(app)


def test_init_does_no_network_io():
    # nothing listens on port 1; init_app must still succeed (discovery is lazy)
    app = Flask(__name__)
    OIDCGuard(app, issuer="http://127.0.0.1:1", audience=AUDIENCE)
    assert "oidc_guard" in app.extensions


# --- function views: same responses as the WSGI layer ---------------------------------


def test_public_route_anonymous(api):
    assert api.get("/public").json == {"sub": None, "scopes": None, "remote_user": None}


@pytest.mark.parametrize(
    "path", ["/token", "/token-bare", "/contacts", "/contacts-wte", "/wte-or-coordinate", "/bp/contacts", "/coordinate"]
)
def test_no_token_is_bare_401_identical_to_error_response(api, path):
    response = api.get(path, status=401)
    status, headers, body = error_response(None, REALM)
    assert response.status == status
    assert response.body == body
    for name, value in headers:
        if name == "WWW-Authenticate":
            # error_response() alone knows only Bearer; the middleware (dpop
            # "allowed") adds the bare DPoP challenge after it, in the same field
            assert response.headers[name].startswith(value + ', DPoP realm="contacts-api", algs="')
        else:
            assert response.headers[name] == value
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="contacts-api", DPoP ')


def test_valid_token(api, issuer):
    response = api.get("/contacts", headers=bearer(issuer.mint(scope="contacts wte")))
    assert response.json == {"sub": "alice", "scopes": ["contacts", "wte"], "remote_user": "alice"}
    response = api.get("/public", headers=bearer(issuer.mint(subject="bob")))
    assert response.json["sub"] == "bob"


def test_invalid_token(api, issuer):
    token = issuer.mint(expires_in=-600)
    response = api.get("/token", headers=bearer(token), status=401)
    assert_error(response, 401, "invalid_token", description="expired")
    # public route: anonymous, the view still runs
    assert api.get("/public", headers=bearer(token)).json["sub"] is None


@pytest.mark.parametrize(
    "path, scope, required, description",
    [
        ("/contacts", "wte", "contacts", "the token lacks the required scope contacts"),
        ("/contacts-wte", "coordinate", "contacts wte", "the token lacks the required scopes contacts wte"),
        ("/contacts-wte", ["contacts"], "contacts wte", "the token lacks the required scope wte"),
        ("/wte-or-coordinate", "contacts", "wte coordinate", "the token has none of the accepted scopes wte coordinate"),
        ("/bp/contacts", "coordinate", "contacts", "the token lacks the required scope contacts"),
    ],
)
def test_insufficient_scope_identical_to_error_response(api, issuer, path, scope, required, description):
    response = api.get(path, headers=bearer(issuer.mint(scope=scope)), status=403)
    assert_error(response, 403, "insufficient_scope", scope=required)
    status, headers, body = error_response(InsufficientScope(description, required.split()), REALM)
    assert response.status == status and response.body == body
    for name, value in headers:
        assert response.headers[name] == value


def test_malformed_header_is_400(api):
    response = api.get("/public", headers={"Authorization": "Bearer a b"}, status=400)
    assert_error(response, 400, "invalid_request")


def test_current_claims_outside_a_request_is_none(app):
    assert get_claims() is None
    assert not current_claims
    with app.app_context():
        assert get_claims() is None


# --- blueprints and class-based views ---------------------------------------------------


def test_blueprint_view(api, issuer):
    response = api.get("/bp/contacts", headers=bearer(issuer.mint(scope="contacts")))
    assert response.json["sub"] == "alice"


def test_method_view_decorated_methods(api, issuer):
    token = issuer.mint(scope="contacts")
    assert api.get("/contact/7", headers=bearer(token)).json == {"id": 7, "sub": "alice"}
    response = api.delete("/contact/7", headers=bearer(token), status=403)
    assert_error(response, 403, "insufficient_scope", scope="contacts wte")
    response = api.delete("/contact/7", headers=bearer(issuer.mint(scope="contacts wte")))
    assert response.json == {"deleted": 7}
    assert_error(api.get("/contact/7", status=401), 401, None)


def test_method_view_decorators_list(api, issuer):
    response = api.get("/coordinate", headers=bearer(issuer.mint(scope="coordinate")))
    assert response.json == {"sub": "alice", "scopes": ["coordinate"]}
    response = api.get("/coordinate", headers=bearer(issuer.mint(scope="contacts")), status=403)
    assert_error(response, 403, "insufficient_scope", scope="coordinate wte")


def test_decorating_a_view_class_is_refused():
    with pytest.raises(TypeError, match="decorators"):
        require_token()(ContactView)


# --- async views (Flask's asgiref extra) ----------------------------------------------


def test_async_views(issuer):
    pytest.importorskip("asgiref")
    app = create_app(issuer.issuer)

    @app.get("/async")
    @require_scope("contacts")
    async def async_view():
        return jsonify(sub=current_claims.subject)

    api = webtest.TestApp(app)
    assert api.get("/async", headers=bearer(issuer.mint())).json == {"sub": "alice"}
    assert_error(api.get("/async", headers=bearer(issuer.mint(scope="wte")), status=403), 403,
                 "insufficient_scope", scope="contacts")
    assert_error(api.get("/async", status=401), 401, None)
    # async method of a MethodView with a class-wide decorator
    response = api.post("/coordinate", headers=bearer(issuer.mint(scope="wte")))
    assert response.json == {"posted": True, "sub": "alice"}
    assert_error(api.post("/coordinate", headers=bearer(issuer.mint(scope="contacts")), status=403), 403,
                 "insufficient_scope", scope="coordinate wte")


# --- form and query tokens, required mode ------------------------------------------------


def test_form_token_and_request_form_still_works(issuer):
    api = webtest.TestApp(create_app(issuer.issuer, accept_form=True))
    response = api.post("/form", {"name": "Ada Lovelace", "access_token": issuer.mint()})
    assert response.json == {"form": {"name": "Ada Lovelace", "access_token": response.json["form"]["access_token"]},
                             "sub": "alice"}


def test_query_token_from_config(issuer):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_ACCEPT_QUERY=True)
    OIDCGuard(app)
    register_routes(app)
    api = webtest.TestApp(app)
    assert api.get("/contacts?access_token=" + issuer.mint()).json["sub"] == "alice"


def test_required_config_protects_every_route(issuer):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_REQUIRED=True,
                      OIDC_GUARD_REALM=REALM)
    OIDCGuard(app)
    register_routes(app)
    api = webtest.TestApp(app)
    assert_error(api.get("/public", status=401), 401, None)
    assert_error(api.get("/does-not-exist", status=401), 401, None)  # before routing
    assert api.get("/public", headers=bearer(issuer.mint())).json["sub"] == "alice"


# --- identity provider down ----------------------------------------------------------------


def test_provider_down_is_503_on_protected_and_200_on_public(caplog):
    with LocalIssuer() as iss:
        iss.set_fault("discovery", status=503)
        api = webtest.TestApp(create_app(iss.issuer, http_timeout=2))
        token = iss.mint()
        with caplog.at_level(logging.WARNING, logger="oidc_guard"):
            assert_unavailable(api.get("/contacts", headers=bearer(token), status=503))
        assert api.get("/public", headers=bearer(token)).json["sub"] is None
        assert iss.fetch_counts["discovery"] >= 1
    assert any(r.name.startswith("oidc_guard.") and r.levelno == logging.WARNING for r in caplog.records)


# --- factories and several apps in one process ---------------------------------------


def test_two_apps_two_issuers_one_guard(oidc_issuer, issuer):
    """One OIDCGuard instance, two applications from one factory, each with its
    own issuer: a token of one is rejected by the other."""
    guard = OIDCGuard()

    def factory(issuer_url):
        app = Flask(__name__)
        app.config.update(OIDC_GUARD_ISSUER=issuer_url, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_REALM=REALM)
        guard.init_app(app)
        return register_routes(app)

    app_a, app_b = factory(issuer.issuer), factory(oidc_issuer.issuer)
    api_a, api_b = webtest.TestApp(app_a), webtest.TestApp(app_b)
    token_a = issuer.mint(subject="alice")
    token_b = oidc_issuer.mint(subject="bob")

    assert api_a.get("/contacts", headers=bearer(token_a)).json["sub"] == "alice"
    assert api_b.get("/contacts", headers=bearer(token_b)).json["sub"] == "bob"
    assert_error(api_a.get("/contacts", headers=bearer(token_b), status=401), 401, "invalid_token")
    assert_error(api_b.get("/contacts", headers=bearer(token_a), status=401), 401, "invalid_token")
    assert app_a.extensions["oidc_guard"].validator is not app_b.extensions["oidc_guard"].validator
    with app_b.app_context():
        assert guard.validator is app_b.extensions["oidc_guard"].validator


def test_view_without_guard_fails_closed():
    app = register_routes(Flask(__name__))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = webtest.TestApp(app).get("/contacts", headers={"Authorization": "Bearer abc"}, status=500)
    assert b"alice" not in response.body
