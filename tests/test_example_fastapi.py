"""examples/contacts_fastapi answers as examples/contacts_api: the same
requests to both apps (one LocalIssuer, a database each) give the same
statuses, challenges, CORS headers and bodies -- the guard's refusals
wrapped in FastAPI's {"detail": ...}.  Its OpenAPI schema names the
scheme and each route's scopes."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from contacts_api import create_app as create_flask_app  # noqa: E402
from contacts_fastapi import create_app as create_fastapi_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient  # noqa: E402

SPA_ORIGIN = "http://127.0.0.1:5002"


@pytest.fixture
def apps(issuer, tmp_path):
    def settings(name):
        return {"OIDC_GUARD_ISSUER": issuer.issuer, "OIDC_GUARD_AUDIENCE": "api://contacts",
                "CONTACTS_DB_PATH": str(tmp_path / f"{name}.sqlite3"), "CORS_ALLOWED_ORIGINS": [SPA_ORIGIN]}

    return create_flask_app(settings("flask")).test_client(), TestClient(create_fastapi_app(settings("fastapi")))


def seen(response, body):
    """What a client sees; the guard's FastAPI refusal unwrapped."""
    if isinstance(body, dict) and set(body) == {"detail"} and isinstance(body["detail"], dict):
        body = body["detail"]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("job",)}  # ids and times differ
        if isinstance(body.get("contacts"), list):
            body["contacts"] = [{k: v for k, v in c.items() if k != "added_at"} for c in body["contacts"]]
    return {
        "status": response.status_code,
        "www": response.headers.get("WWW-Authenticate"),
        "retry": response.headers.get("Retry-After"),
        "cors": response.headers.get("Access-Control-Allow-Origin"),
        "body": body,
    }


def both(apps, method, path, headers=None, json=None):
    flask, fast = apps
    headers = {"Origin": SPA_ORIGIN, **(headers or {})}
    f = flask.open(path, method=method, headers=headers, json=json)
    a = fast.request(method, path, headers=headers, json=json)
    return seen(f, f.get_json(silent=True)), seen(a, a.json() if a.content else None)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def test_the_same_answers_as_the_flask_app(apps, issuer):
    user = issuer.mint(scope="openid contacts coordinate")
    wte_only = issuer.mint(scope="wte")
    client = issuer.mint(subject=None, scope="contacts wte", client_id="wte-worker")
    id_token = issuer.mint_id_token("spa", nonce="n-1", access_token=user)
    cases = [
        ("GET", "/health", None, None),
        ("GET", "/contacts", None, None),
        ("GET", "/contacts", bearer("not-a-token"), None),
        ("GET", "/contacts", bearer(issuer.mint({"exp": 1000})), None),
        ("GET", "/contacts", bearer(wte_only), None),
        ("GET", "/contacts", bearer(client), None),
        ("GET", "/contacts", {"Authorization": "Bearer a b"}, None),
        ("POST", "/contacts/import", bearer(user), {"emails": ["Ann@Example.com", "bob@example.org"]}),
        ("POST", "/contacts/import", bearer(user), {"emails": ["ann@example.com", "not an address"]}),
        ("POST", "/contacts/import", bearer(user), {"emails": []}),
        ("POST", "/contacts/import", bearer(user), {"addresses": []}),
        ("GET", "/contacts", bearer(user), None),
        ("POST", "/wte/jobs", bearer(client), {"kind": "sync", "payload": {"n": 1}}),
        ("POST", "/wte/jobs", bearer(client), {"kind": "Bad Kind"}),
        ("POST", "/wte/jobs", bearer(user), {}),
        ("GET", "/coordinate", bearer(user), None),
        ("GET", "/coordinate", bearer(wte_only), None),
        ("POST", "/session/handoff", bearer(user), {"id_token": id_token, "nonce": "n-1"}),
        ("POST", "/session/handoff", bearer(user), {"id_token": id_token, "nonce": "other"}),
        ("POST", "/session/handoff", bearer(user), {"nonce": "n-1"}),
        ("POST", "/session/handoff", bearer(client), {"id_token": id_token, "nonce": "n-1"}),
        ("GET", "/me", bearer(client), None),
        ("GET", "/me", None, None),
    ]
    for method, path, headers, body in cases:
        flask_answer, fastapi_answer = both(apps, method, path, headers, body)
        assert fastapi_answer == flask_answer, (method, path, body)
    # the cases cover every kind of answer
    statuses = {both(apps, m, p, h, b)[1]["status"] for m, p, h, b in cases}
    assert {200, 202, 400, 401, 403} <= statuses


def test_openapi_names_the_scheme_and_the_scopes(apps, issuer):
    schema = apps[1].get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["contacts-oidc"]
    flow = scheme["flows"]["authorizationCode"]
    assert scheme["type"] == "oauth2" and flow["authorizationUrl"] == issuer.issuer + "/authorize"
    assert flow["tokenUrl"] == issuer.issuer + "/token" and "contacts" in flow["scopes"]
    paths = schema["paths"]
    assert paths["/contacts"]["get"]["security"] == [{"contacts-oidc": ["contacts"]}]
    assert paths["/wte/jobs"]["post"]["security"] == [{"contacts-oidc": ["wte"]}]
    assert paths["/me"]["get"]["security"] == [{"contacts-oidc": []}]
    assert "security" not in paths["/health"]["get"]


def test_docs_page_is_served_from_local_files(apps):
    fast = apps[1]
    page = fast.get("/docs")
    if page.status_code == 404:
        pytest.skip("swagger-ui-dist is not installed (bash scripts/install_swagger_ui.sh)")
    assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and '"usePkceWithAuthorizationCodeGrant": true' in page.text
    assert fast.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    assert "oauth2" in fast.get("/docs/oauth2-redirect").text.lower()
