"""Reference (opaque) access tokens from the real npm oidc-provider, validated
through RFC 7662 introspection, plus RFC 7009 revocation and UserInfo.

scripts/oidc-provider/interop.mjs enables ``features.introspection`` and
``features.revocation``; its clients ``wte-worker-ref`` (client credentials)
and ``server-app-ref`` (code flow) get no default resource indicator, so the
provider issues opaque access tokens for them; ``contacts-api`` is this API's
own client at the introspection endpoint. Every test runs against 7.14.3 and
9.13.3.
"""

import logging

import pytest

from oidc_guard import InvalidToken, ProviderError, TokenValidator

from . import flows
from .flows import SERVER_APP_REDIRECT, code_flow

pytestmark = pytest.mark.integration

API_CLIENT = ("contacts-api", "contacts-api-secret")
WORKER_REF = ("wte-worker-ref", "wte-secret")
SERVER_APP_REF = ("server-app-ref", "server-app-ref-dev-secret")


def validator(op, **kwargs):
    kwargs.setdefault("introspection_client_id", API_CLIENT[0])
    kwargs.setdefault("introspection_client_secret", API_CLIENT[1])
    kwargs.setdefault("http_timeout", 5)
    # The opaque tokens of REFERENCE_CLIENTS are minted without a resource
    # indicator, so the provider's answers carry no aud (and any authenticated
    # client may introspect any token): refused by default, see
    # test_answers_without_aud_are_refused_by_default.  These tests are about
    # the introspection exchange itself, hence the opt-in.
    kwargs.setdefault("introspection_audience_optional", True)
    return TokenValidator(op.issuer, audience="api://contacts", **kwargs)


def opaque_cc_token(op, scope="wte"):
    body = flows.client_credentials(op.token_endpoint, WORKER_REF[0], WORKER_REF[1], scope)
    token = body["access_token"]
    assert "." not in token, "the provider was expected to issue an opaque token"
    return token


def revoke(op, token, client):
    """RFC 7009 section 2.1; the answer is 200 with an empty body."""
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(
        op.discovery["revocation_endpoint"], method="POST",
        data=urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode())
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Authorization", flows._basic_auth(client[0], client[1]))
    with flows.OPENER.open(req, timeout=flows.HTTP_TIMEOUT) as resp:
        assert resp.status == 200


def test_opaque_client_credentials_token_accepted_with_scopes_enforced(real_op):
    from webtest import TestApp

    from oidc_guard.wsgi import BearerMiddleware, require_scope

    token = opaque_cc_token(real_op)
    v = validator(real_op)
    assert v.check() is None  # discovery names the introspection endpoint
    claims = v.validate_access_token(token)
    assert claims.client_id == "wte-worker-ref" and "wte" in claims.scopes and claims.issuer == real_op.issuer

    def ok(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = TestApp(BearerMiddleware(ok, v))
    wte_app = TestApp(BearerMiddleware(require_scope("wte")(ok), v))
    contacts_app = TestApp(BearerMiddleware(require_scope("contacts")(ok), v))
    headers = {"Authorization": "Bearer " + token}
    assert app.get("/", headers=headers).status_int == 200
    assert wte_app.get("/", headers=headers).status_int == 200
    denied = contacts_app.get("/", headers=headers, expect_errors=True)
    assert denied.status_int == 403 and 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    # a random handle: inactive -> 401
    assert wte_app.get("/", headers={"Authorization": "Bearer " + "x" * 43}, expect_errors=True).status_int == 401


def test_answers_without_aud_are_refused_by_default(real_op):
    # npm oidc-provider answers active, without aud, for an opaque token made
    # for no particular API: the default must not take that as "for us".
    token = opaque_cc_token(real_op)
    with pytest.raises(InvalidToken) as info:
        validator(real_op, introspection_audience_optional=False).validate_access_token(token)
    assert "names no aud" in info.value.description
    assert "introspection_audience_optional=True" in info.value.description


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_both_client_authentication_methods(real_op, method):
    token = opaque_cc_token(real_op)
    v = validator(real_op, introspection_auth_method=method)
    assert v.validate_access_token(token).client_id == "wte-worker-ref"
    wrong = validator(real_op, introspection_auth_method=method, introspection_client_secret="nope")
    with pytest.raises(ProviderError, match="refused this API's credentials"):
        wrong.validate_access_token(token)


def test_revoked_at_the_provider_refused_once_the_cache_entry_ends(real_op):
    token = opaque_cc_token(real_op)
    clock_now = [__import__("time").time()]
    v = validator(real_op, introspection_cache_ttl=30, clock=lambda: clock_now[0])
    assert v.validate_access_token(token).client_id == "wte-worker-ref"
    revoke(real_op, token, WORKER_REF)
    assert v.validate_access_token(token).client_id == "wte-worker-ref"  # still cached (documented)
    clock_now[0] += 31  # the entry ends
    with pytest.raises(InvalidToken, match="not active"):
        v.validate_access_token(token)


def test_wrong_api_credentials_are_503_with_the_logged_reason(real_op, caplog):
    token = opaque_cc_token(real_op)
    v = validator(real_op, introspection_client_secret="not-the-secret")
    caplog.set_level(logging.WARNING, logger="oidc_guard.introspection")
    for _ in range(3):
        with pytest.raises(ProviderError) as err:
            v.validate_access_token(token)
        assert err.value.status == 503
    warnings = [r for r in caplog.records if "refused this API's credentials" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "not-the-secret" not in warnings[0].getMessage()


def test_userinfo_for_a_user_token_from_the_code_flow(real_op):
    body, _nonce, _code = code_flow(real_op, scope="openid profile email contacts", resource=None,
                                    client=SERVER_APP_REF, redirect_uri=SERVER_APP_REDIRECT, login="carol")
    token = body["access_token"]
    assert "." not in token
    v = validator(real_op)
    claims = v.validate_access_token(token)
    assert claims.subject == "carol" and "contacts" in claims.scopes
    profile = v.userinfo(token)
    assert profile["sub"] == "carol" and profile["email"] == "carol@example.org"
    assert profile["name"] == "Alice Example"
    # the ID Token from the same flow still validates locally
    assert v.validate_id_token(body["id_token"], client_id=SERVER_APP_REF[0]).subject == "carol"


def test_jwts_still_validated_locally_in_mode_both(real_op):
    jwt_token = flows.cc_token(real_op, flows.WORKER, "wte")
    assert jwt_token.count(".") == 2
    v = validator(real_op, introspection_endpoint="http://127.0.0.1:9/never-called")
    assert v.validate_access_token(jwt_token).client_id == "wte-worker"
