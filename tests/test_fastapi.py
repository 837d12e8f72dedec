"""oidc_guard.fastapi.OIDCGuard: Security(guard, scopes=[...]) and
Depends(guard) return the Claims; refusals are FastAPI's {"detail": {...}}
with the RFC 6750 challenge; the OpenAPI schema names the scheme and each
operation's scopes.  Through httpx's ASGI transport, against the real
LocalIssuer."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Security

from oidc_guard import TokenValidator
from oidc_guard.asgi import BearerMiddleware
from oidc_guard.fastapi import OIDCGuard

from challenges import parse_challenges


def build(validator, **guard_kwargs):
    guard = OIDCGuard(validator, realm="contacts-api", **guard_kwargs)
    app = FastAPI()

    @app.get("/contacts")
    async def contacts(claims=Security(guard, scopes=["contacts"])):
        return {"sub": claims.subject, "scopes": sorted(claims.scopes)}

    @app.get("/both")
    async def both(claims=Security(guard, scopes=["contacts", "wte"])):
        return {"sub": claims.subject}

    @app.get("/me")
    async def me(claims=Depends(guard)):
        return {"sub": claims.subject}

    @app.get("/public")
    async def public():
        return {"ok": True}

    return app, guard


def call(app, path, token=None, headers=None):
    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            h = dict(headers or {})
            if token is not None:
                h["Authorization"] = "Bearer " + token
            return await client.get(path, headers=h)

    return asyncio.run(run())


def challenge(response):
    (scheme, params, _raw), *_ = parse_challenges(response.headers.get_list("www-authenticate"))
    return scheme, params


@pytest.fixture
def validator(issuer, make_validator):
    return make_validator(issuer)


def test_security_and_depends_return_the_claims(issuer, validator):
    app, _ = build(validator)
    r = call(app, "/contacts", issuer.mint(scope="contacts wte"))
    assert r.status_code == 200 and r.json() == {"sub": "alice", "scopes": ["contacts", "wte"]}
    assert call(app, "/me", issuer.mint(scope="")).json() == {"sub": "alice"}
    assert call(app, "/both", issuer.mint(scope="contacts wte")).json() == {"sub": "alice"}


def test_refusals(issuer, validator):
    app, _ = build(validator)
    # no token: 401, a bare challenge (RFC 6750 section 3.1)
    r = call(app, "/contacts")
    assert r.status_code == 401 and challenge(r) == ("Bearer", {"realm": "contacts-api"})
    assert r.json() == {"detail": {"error": "unauthorized", "error_description": "a bearer token is required"}}
    assert r.headers["cache-control"] == "no-store"
    # invalid: 401 invalid_token
    r = call(app, "/me", issuer.mint({"aud": "api://other"}))
    scheme, params = challenge(r)
    assert r.status_code == 401 and params["error"] == "invalid_token"
    assert r.json()["detail"]["error"] == "invalid_token" and r.json()["detail"]["error_description"]
    # scope missing: 403 insufficient_scope with scope=
    r = call(app, "/both", issuer.mint(scope="contacts"))
    scheme, params = challenge(r)
    assert r.status_code == 403 and params["error"] == "insufficient_scope" and params["scope"] == "contacts wte"
    assert r.json()["detail"]["error"] == "insufficient_scope"
    # malformed: 400
    r = call(app, "/me", headers={"Authorization": "Bearer a b"})
    assert r.status_code == 400 and r.json()["detail"]["error"] == "invalid_request"
    assert call(app, "/public").json() == {"ok": True}


def test_outage_is_503_with_retry_after(issuer, validator):
    app, _ = build(validator)
    token = issuer.mint()
    issuer.stop()
    r = call(app, "/contacts", token)
    assert r.status_code == 503 and r.headers["retry-after"] and "www-authenticate" not in r.headers
    assert r.json()["detail"]["error"] == "temporarily_unavailable"


def test_auto_error_false_makes_the_token_optional_but_never_ignores_a_bad_one(issuer, validator):
    guard = OIDCGuard(validator, auto_error=False)
    app = FastAPI()

    @app.get("/maybe")
    async def maybe(claims=Depends(guard)):
        return {"sub": claims.subject if claims else None}

    assert call(app, "/maybe").json() == {"sub": None}
    assert call(app, "/maybe", issuer.mint()).json() == {"sub": "alice"}
    assert call(app, "/maybe", issuer.mint({"exp": 1})).status_code == 401


def test_one_validation_per_request_and_a_foreign_result_is_not_trusted(issuer, validator, make_validator):
    calls = []

    class Counting(TokenValidator):
        def validate_access_token(self, token):
            calls.append(token)
            return super().validate_access_token(token)

        def cached_access_token(self, token):
            return None  # every authentication reaches validate_access_token

    counting = Counting(issuer.issuer, audience=issuer.audience)
    guard = OIDCGuard(counting)
    router = APIRouter(dependencies=[Depends(guard)])

    @router.get("/r")
    async def r(claims=Security(guard, scopes=["contacts"])):
        return {"sub": claims.subject}

    app = FastAPI()
    app.include_router(router)
    assert call(app, "/r", issuer.mint()).json() == {"sub": "alice"}
    assert len(calls) == 1  # a router dependency and the route's: one validation
    # a middleware in front with *another* validator (another audience): its
    # result is not reused by a guard of a different validator
    other = make_validator(issuer, audience="api://other")
    fronted = BearerMiddleware(app, other)
    calls.clear()
    token = issuer.mint({"aud": "api://other"})
    r = call(fronted, "/r", token)
    assert r.status_code == 401 and r.json()["detail"]["error"] == "invalid_token" and len(calls) == 1
    # the same validator in front: reused, not validated again
    calls.clear()
    assert call(BearerMiddleware(app, counting), "/r", issuer.mint()).status_code == 200 and len(calls) == 1


def test_openapi_names_the_scheme_and_each_operation_s_scopes(issuer, validator):
    app, _ = build(validator)
    schema = app.openapi()
    assert schema["components"]["securitySchemes"] == {
        "oidc_guard": {"type": "openIdConnect",
                       "openIdConnectUrl": issuer.issuer + "/.well-known/openid-configuration"}}
    ops = schema["paths"]
    assert ops["/contacts"]["get"]["security"] == [{"oidc_guard": ["contacts"]}]
    assert ops["/both"]["get"]["security"] == [{"oidc_guard": ["contacts", "wte"]}]
    assert ops["/me"]["get"]["security"] == [{"oidc_guard": []}]
    assert "security" not in ops["/public"]["get"]


def test_openapi_oauth2_authorization_code_flow(issuer, validator):
    app, _ = build(validator, authorization_url=issuer.issuer + "/authorize", token_url=issuer.issuer + "/token",
                   scopes={"contacts": "your contacts", "wte": "jobs"}, scheme_name="dev")
    scheme = app.openapi()["components"]["securitySchemes"]["dev"]
    assert scheme == {"type": "oauth2", "flows": {"authorizationCode": {
        "authorizationUrl": issuer.issuer + "/authorize", "tokenUrl": issuer.issuer + "/token",
        "scopes": {"contacts": "your contacts", "wte": "jobs"}}}}
    assert app.openapi()["paths"]["/contacts"]["get"]["security"] == [{"dev": ["contacts"]}]


def test_bad_settings_are_refused(validator):
    with pytest.raises(TypeError):
        OIDCGuard(validator, authorization_url="https://idp/authorize")  # no token_url
    with pytest.raises(TypeError):
        OIDCGuard(validator, required=True)
    with pytest.raises(TypeError):
        OIDCGuard(validator, token_url="/relative", authorization_url="/a")
    guard = OIDCGuard(validator)
    app = FastAPI()

    @app.get("/x")
    async def x(claims=Security(guard, scopes=["a b"])):  # not a scope-token (RFC 6749 section 3.3)
        return {}

    with pytest.raises(ValueError):
        asyncio.run(_request(app))


async def _request(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return await client.get("/x", headers={"Authorization": "Bearer abc"})


def test_insufficient_scope_is_logged_with_its_reason(issuer, validator, caplog):
    app, _ = build(validator)
    with caplog.at_level(logging.INFO, logger="oidc_guard.asgi"):
        call(app, "/both", issuer.mint(scope="contacts"))
    assert any("reason=insufficient_scope" in rec.getMessage() for rec in caplog.records)
