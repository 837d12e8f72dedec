"""oidc_guard.flask.current_userinfo() and TokenValidator.userinfo with
sender-constrained tokens, against a LocalIssuer's own /userinfo endpoint.

A DPoP-bound token (RFC 9449) or a certificate-bound token (RFC 8705) can
only be presented to the provider's UserInfo endpoint with a proof of the
client's key, which the API does not hold: the library refuses it with a
clear 401 and never calls the endpoint.  Every refusal carries the
challenges of the schemes the middleware accepts (RFC 9449 section 7.1).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

flask = pytest.importorskip("flask")

from oidc_guard import InvalidToken  # noqa: E402
from oidc_guard.flask import OIDCGuard, current_userinfo, require_token  # noqa: E402
from oidc_guard.testing import DPoPKey, LocalIssuer  # noqa: E402

from challenges import challenges as parse_challenges  # noqa: E402

REALM = "contacts-api"
AUDIENCE = "api://contacts"
ME = "http://localhost/me"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",), audience=AUDIENCE) as iss:
        yield iss


@pytest.fixture(scope="module")
def key():
    return DPoPKey("ES256")


def make_app(issuer, **config):
    app = flask.Flask("userinfo_test")
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_REALM=REALM,
                      **config)
    OIDCGuard(app)

    @app.get("/me")
    @require_token
    def me():
        return {"profile": dict(current_userinfo() or {})}

    return app.test_client()


def challenges(response):
    """{scheme: challenge} in the order sent, from the one WWW-Authenticate field."""
    fields = response.headers.getlist("WWW-Authenticate")
    assert len(fields) == 1, fields
    return parse_challenges(fields)


def userinfo_calls(issuer):
    return issuer.fetch_counts.get("userinfo", 0)


def test_bearer_token_gets_the_profile(issuer):
    c = make_app(issuer)
    r = c.get("/me", headers={"Authorization": "Bearer " + issuer.mint(scope="openid profile")})
    assert r.status_code == 200, r.data
    assert r.json["profile"]["sub"] == "alice"
    assert r.json["profile"]["name"] == issuer.users["alice"]["name"]


def test_form_token_profile_after_the_view_read_request_form(issuer):
    # accept_form: the middleware reads the body and puts it back; once the
    # view has read request.form the body is consumed, so current_userinfo()
    # must use the credential the middleware recorded, not look again.
    app = flask.Flask("userinfo_form_test")
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE, OIDC_GUARD_REALM=REALM,
                      OIDC_GUARD_ACCEPT_FORM=True)
    OIDCGuard(app)

    @app.post("/me")
    @require_token
    def me():
        note = flask.request.form["note"]
        credential = flask.request.environ["oidc_guard.credential"]
        return {"note": note, "profile": dict(current_userinfo() or {}),
                "scheme": credential.scheme, "source": credential.source, "repr": repr(credential)}

    token = issuer.mint(scope="openid profile")
    before = userinfo_calls(issuer)
    r = app.test_client().post("/me", data={"access_token": token, "note": "hello"})
    assert r.status_code == 200, r.data
    assert r.json["note"] == "hello"
    assert r.json["profile"]["sub"] == "alice"
    assert userinfo_calls(issuer) == before + 1
    assert (r.json["scheme"], r.json["source"]) == ("bearer", "form")
    assert token not in r.json["repr"]  # the record never shows the token


def test_credential_record_is_immutable_and_fresh_per_request(issuer):
    from dataclasses import FrozenInstanceError

    from oidc_guard.wsgi import ENVIRON_CREDENTIAL, Credential
    seen = []
    app = flask.Flask("credential_test")
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=AUDIENCE)
    OIDCGuard(app)

    @app.get("/who")
    def who():
        seen.append(flask.request.environ[ENVIRON_CREDENTIAL])
        return "ok"

    c = app.test_client()
    token = issuer.mint()
    c.get("/who", headers={"Authorization": "Bearer " + token})
    c.get("/who")
    assert seen[0] == Credential("bearer", "header", token) and seen[1] is None
    with pytest.raises(FrozenInstanceError):
        seen[0].token = "other"  # type: ignore[misc]


def test_dpop_token_is_refused_with_both_challenges_and_no_userinfo_call(issuer, key):
    c = make_app(issuer)
    token = issuer.mint(claims={"cnf": key.cnf}, scope="openid profile")
    before = userinfo_calls(issuer)
    r = c.get("/me", headers={"Authorization": "DPoP " + token, "DPoP": key.proof("GET", ME, token)})
    assert r.status_code == 401, r.data
    assert r.json["error"] == "invalid_token"
    assert "UserInfo is not available for a DPoP-bound token" in r.json["error_description"]
    assert "RFC 9449 section 7" in r.json["error_description"]
    found = challenges(r)
    assert list(found) == ["DPoP", "Bearer"]
    # the error goes on the scheme the request used, first; the other is bare
    assert 'error="invalid_token"' in found["DPoP"] and "algs=" in found["DPoP"]
    assert found["Bearer"] == f'Bearer realm="{REALM}"'
    assert token not in r.get_data(as_text=True)
    assert userinfo_calls(issuer) == before  # nothing was sent to the provider


def test_dpop_required_mode_sends_only_the_dpop_challenge(issuer, key):
    c = make_app(issuer, OIDC_GUARD_DPOP="required")
    token = issuer.mint(claims={"cnf": key.cnf}, scope="openid")
    r = c.get("/me", headers={"Authorization": "DPoP " + token, "DPoP": key.proof("GET", ME, token)})
    assert r.status_code == 401
    assert list(challenges(r)) == ["DPoP"]
    assert "DPoP-bound" in r.json["error_description"]


def test_provider_refusal_of_a_bearer_token_has_both_challenges(issuer):
    c = make_app(issuer)
    token = issuer.mint(scope="openid profile")
    issuer.revoke(token)  # valid locally (a JWT), refused by /userinfo
    r = c.get("/me", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 401
    assert r.json == {"error": "invalid_token",
                      "error_description": "the UserInfo endpoint refused the access token (HTTP 401)"}
    found = challenges(r)
    assert list(found) == ["Bearer", "DPoP"]
    assert 'error="invalid_token"' in found["Bearer"]
    assert "error=" not in found["DPoP"] and "algs=" in found["DPoP"]


def test_dpop_disabled_keeps_the_single_bearer_challenge(issuer):
    c = make_app(issuer, OIDC_GUARD_DPOP="disabled")
    token = issuer.mint(scope="openid profile")
    issuer.revoke(token)
    r = c.get("/me", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 401
    assert list(challenges(r)) == ["Bearer"]


@pytest.mark.parametrize("cnf, words", [
    ({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, "DPoP-bound token"),
    ({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, "certificate-bound token"),
])
def test_userinfo_refuses_sender_constrained_tokens_without_a_request(issuer, cnf, words):
    from oidc_guard import TokenValidator

    v = TokenValidator(issuer.issuer, audience=AUDIENCE)
    before = userinfo_calls(issuer)
    with pytest.raises(InvalidToken, match=f"UserInfo is not available for a {words}"):
        v.userinfo(issuer.mint(claims={"cnf": cnf}, scope="openid"))
    assert userinfo_calls(issuer) == before


def test_dev_provider_userinfo_refuses_a_dpop_bound_token_as_bearer(issuer, key):
    # As npm oidc-provider does (lib/shared/access_token.js: "failed jkt verification").
    token = issuer.mint(claims={"cnf": key.cnf}, scope="openid profile")
    request = urllib.request.Request(issuer.userinfo_endpoint, headers={"Authorization": "Bearer " + token})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["error_description"] == "failed jkt verification"
