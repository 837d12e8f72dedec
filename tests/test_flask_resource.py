"""Flask: ``OIDC_GUARD_RESOURCE`` / ``OIDC_GUARD_SCOPES_SUPPORTED`` (the
configuration table), the RFC 8707 default audience, and the RFC 9728
document and challenge attribute through the Flask extension, against the
real LocalIssuer."""

from __future__ import annotations

import pytest
from flask import Flask

from oidc_guard import ConfigurationError
from oidc_guard.flask import OIDCGuard, current_claims, require_scope
from oidc_guard.testing import LocalIssuer

RESOURCE = "https://api.test/contacts"
WELL_KNOWN = "/.well-known/oauth-protected-resource/contacts"
METADATA_URL = "https://api.test" + WELL_KNOWN


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",), audience=RESOURCE) as iss:
        yield iss


def make_app(**config):
    app = Flask(__name__)
    app.config.update(config)
    state = OIDCGuard(app).state(app)

    @app.get("/contacts")
    @require_scope("contacts")
    def contacts():
        return {"sub": current_claims.subject}

    return app, state


def test_the_resource_is_the_audience_when_none_is_set(issuer):
    app, state = make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_RESOURCE=RESOURCE,
                          OIDC_GUARD_SCOPES_SUPPORTED="contacts wte")
    assert state.validator.audiences == (RESOURCE,)
    client = app.test_client()
    assert client.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint()}).json == {"sub": "alice"}
    other = issuer.mint(claims={"aud": "https://api.test/other"})
    r = client.get("/contacts", headers={"Authorization": "Bearer " + other})
    assert r.status_code == 401 and r.json["error"] == "invalid_token"
    assert "https://api.test/other" in r.json["error_description"] and RESOURCE in r.json["error_description"]
    assert f'resource_metadata="{METADATA_URL}"' in r.headers["WWW-Authenticate"]

    doc = client.get(WELL_KNOWN)
    assert doc.status_code == 200 and doc.headers["Access-Control-Allow-Origin"] == "*"
    assert doc.json["resource"] == RESOURCE and doc.json["scopes_supported"] == ["contacts", "wte"]
    assert doc.json["authorization_servers"] == [issuer.issuer]
    assert client.head(WELL_KNOWN).data == b""


def test_an_explicit_audience_wins(issuer, caplog):
    app, state = make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE="api://contacts",
                          OIDC_GUARD_RESOURCE=RESOURCE)
    assert state.validator.audiences == ("api://contacts",)
    assert any("api://contacts" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_issuers_entries_default_to_the_resource(make_issuer):
    first, second = make_issuer(algs=("RS256",), audience=RESOURCE), make_issuer(algs=("RS256",))
    app, state = make_app(OIDC_GUARD_RESOURCE=RESOURCE, OIDC_GUARD_ISSUERS=[
        {"issuer": first.issuer}, {"issuer": second.issuer, "audience": RESOURCE}])
    assert [v.audiences for v in state.validators] == [(RESOURCE,), (RESOURCE,)]
    doc = app.test_client().get(WELL_KNOWN).json
    assert doc["authorization_servers"] == [first.issuer, second.issuer]


def test_configuration_errors(issuer):
    with pytest.raises(ConfigurationError, match="OIDC_GUARD_AUDIENCE"):
        make_app(OIDC_GUARD_ISSUER=issuer.issuer)
    with pytest.raises(ConfigurationError, match="https URL"):
        make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_RESOURCE="http://api.test/contacts")
    with pytest.raises(ConfigurationError, match="checks the audience"):
        make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_RESOURCE=RESOURCE, OIDC_GUARD_VERIFY_AUDIENCE="false")
    with pytest.raises(ConfigurationError, match="needs resource"):
        make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=RESOURCE, OIDC_GUARD_SCOPES_SUPPORTED="a")
    with pytest.raises(ConfigurationError, match="OIDC_GUARD_SCOPES_SUPPORTED must be a list"):
        make_app(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_RESOURCE=RESOURCE, OIDC_GUARD_SCOPES_SUPPORTED=3)
