"""``@require_scope`` above ``@app.get`` leaves the route public (Flask
registered the undecorated function); oidc_guard.flask detects it at
init_app and at the first request, and the right order - functions,
blueprints, MethodView, async views, extra decorators - is never flagged."""

import functools

import pytest
from flask import Blueprint, Flask, jsonify
from flask.views import MethodView

from oidc_guard.flask import ConfigurationError, OIDCGuard, require_any_scope, require_scope, require_token
from oidc_guard.testing import LocalIssuer

AUDIENCE = "api://contacts"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


def guarded_app(issuer):
    app = Flask(__name__)
    OIDCGuard(app, issuer=issuer.issuer, audience=AUDIENCE)
    return app


def get(app, path, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return app.test_client().get(path, headers=headers)


def refused(app, path, caplog, method="get"):
    """The request fails closed (500, the view never runs) and Flask logs
    the ConfigurationError; returns its message."""
    caplog.clear()
    response = getattr(app.test_client(), method)(path)
    assert response.status_code == 500 and b"secret" not in response.data and b"queued" not in response.data
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ConfigurationError)]
    assert len(errors) == 1, caplog.records
    return str(errors[0])


def test_decorator_above_the_route_is_refused_at_the_first_request(issuer, caplog):
    app = guarded_app(issuer)

    @app.get("/public")
    def public():
        return "ok"

    @require_scope("contacts")  # wrong: above the route decorator
    @app.get("/contacts")
    def contacts():
        return "secret"

    message = refused(app, "/contacts", caplog)  # without the check: 200 "secret", no token at all
    assert "endpoint 'contacts'" in message and "above the route decorator" in message
    assert "public" not in message.replace("unprotected", "")
    refused(app, "/public", caplog)  # fails closed until fixed, for every route
    app.testing = True  # and with exceptions propagated (tests), it is raised
    with pytest.raises(ConfigurationError):
        get(app, "/contacts")


def test_decorator_above_the_route_is_refused_by_init_app(issuer):
    app = Flask(__name__)

    @require_token
    @app.route("/me")
    def me():
        return "secret"

    with pytest.raises(ConfigurationError, match=r"test_flask_decorator_order\..*me \(endpoint 'me'\)"):
        OIDCGuard(app, issuer=issuer.issuer, audience=AUDIENCE)
    assert "oidc_guard" not in app.extensions  # nothing half-installed


def test_wrong_order_on_a_blueprint_registered_after_init_app(issuer, caplog):
    app = guarded_app(issuer)
    bp = Blueprint("wte", __name__, url_prefix="/wte")

    @require_any_scope("wte")
    @bp.post("/jobs")
    def jobs():
        return "queued"

    app.register_blueprint(bp)
    assert "endpoint 'wte.jobs'" in refused(app, "/wte/jobs", caplog, method="post")


def test_an_oidc_decorator_above_the_route_over_another_one_is_refused(issuer, caplog):
    app = guarded_app(issuer)

    @require_scope("admin")  # never applied: the route has require_token only
    @app.get("/admin")
    @require_token
    def admin():
        return "secret"

    assert "endpoint 'admin'" in refused(app, "/admin", caplog)


def _other_decorator(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        return view(*args, **kwargs)

    return wrapper


class Contacts(MethodView):
    @require_scope("contacts")
    def get(self):
        return jsonify(ok=True)


class Coordinates(MethodView):
    decorators = [require_any_scope("coordinate")]

    def get(self):
        return jsonify(ok=True)

    async def post(self):
        return jsonify(ok=True)


def test_right_order_blueprints_methodview_async_and_other_decorators_are_fine(issuer):
    app = guarded_app(issuer)
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @app.get("/contacts")
    @require_scope("contacts")
    def contacts():
        return "contacts"

    @app.get("/wrapped")
    @_other_decorator
    @require_token
    @_other_decorator
    def wrapped():
        return "wrapped"

    @app.get("/async")
    @require_token
    async def async_view():
        return "async"

    @bp.get("/jobs")
    @require_any_scope("wte")
    def bp_jobs():
        return "jobs"

    # one function public under one endpoint and protected under another, on purpose
    def report():
        return "report"

    app.add_url_rule("/report/public", "report_public", report)
    app.add_url_rule("/report/private", "report_private", require_token(report))
    app.add_url_rule("/mv/contacts", view_func=Contacts.as_view("mv_contacts"))
    app.add_url_rule("/mv/coordinates", view_func=Coordinates.as_view("mv_coordinates"))
    app.register_blueprint(bp)

    for path in ("/contacts", "/wrapped", "/async", "/bp/jobs", "/report/private", "/mv/contacts",
                 "/mv/coordinates"):
        assert get(app, path).status_code == 401, path
    assert get(app, "/report/public").data == b"report"
    token = issuer.mint(scope="contacts")
    assert get(app, "/contacts", token).data == b"contacts"
    assert get(app, "/mv/contacts", token).json == {"ok": True}
    assert app.test_client().post("/mv/coordinates", headers={
        "Authorization": "Bearer " + issuer.mint(scope="coordinate")}).json == {"ok": True}
