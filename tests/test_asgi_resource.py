"""RFC 9728 metadata, RFC 8707 audiences and RFC 9470 step-up through the
ASGI adapters (oidc_guard.asgi middleware and Starlette decorators, the
FastAPI guard): the core pieces of oidc_guard.auth / rules / errors, the
adapters only translate.  Through httpx's ASGI transport, real LocalIssuer."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import Depends, FastAPI, Security
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from challenges import parse_challenges
from oidc_guard import TokenValidator
from oidc_guard.asgi import BearerMiddleware, require_acr, require_auth_time, require_scope
from oidc_guard.fastapi import OIDCGuard

RESOURCE = "http://127.0.0.1/contacts"
WELL_KNOWN = "/.well-known/oauth-protected-resource/contacts"
METADATA_URL = "http://127.0.0.1" + WELL_KNOWN


def request(app, method, path, token=None):
    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"Authorization": "Bearer " + token} if token else {}
            return await client.request(method, path, headers=headers)
    return asyncio.run(run())


def first(response):
    return parse_challenges(response.headers.get_list("www-authenticate"))[0]


@pytest.fixture
def validator(issuer):
    return TokenValidator(issuer.issuer, audience=RESOURCE)


@pytest.fixture
def starlette_app(validator):
    @require_scope("contacts")
    async def contacts(request):
        return JSONResponse({"sub": request.scope["oidc_guard.claims"].subject})

    @require_acr("urn:oidc-guard:loa:2")
    async def strong(request):
        return JSONResponse({"ok": True})

    @require_auth_time(max_age=300)
    async def recent(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/contacts", contacts), Route("/strong", strong), Route("/recent", recent)])
    return BearerMiddleware(app, validator, realm="contacts-api", resource=RESOURCE,
                            scopes_supported=["contacts"])


def test_the_asgi_middleware_serves_the_metadata(starlette_app, issuer):
    response = request(starlette_app, "GET", WELL_KNOWN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    doc = response.json()
    assert doc["resource"] == RESOURCE and doc["authorization_servers"] == [issuer.issuer]
    assert doc["scopes_supported"] == ["contacts"]
    head = request(starlette_app, "HEAD", WELL_KNOWN)
    assert head.status_code == 200 and head.content == b""
    assert request(starlette_app, "DELETE", WELL_KNOWN).status_code == 405


def test_asgi_challenges_name_the_metadata_and_step_up(starlette_app, issuer):
    missing = request(starlette_app, "GET", "/contacts")
    assert missing.status_code == 401 and first(missing)[1]["resource_metadata"] == METADATA_URL
    other = request(starlette_app, "GET", "/contacts", issuer.mint({"aud": "api://other"}, scope="contacts"))
    assert other.status_code == 401 and first(other)[1]["resource_metadata"] == METADATA_URL
    weak = issuer.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:1", "auth_time": int(time.time()) - 3600})
    refused = request(starlette_app, "GET", "/strong", weak)
    params = first(refused)[1]
    assert refused.status_code == 401 and params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == "urn:oidc-guard:loa:2" and params["resource_metadata"] == METADATA_URL
    old = request(starlette_app, "GET", "/recent", weak)
    assert old.status_code == 401 and first(old)[1]["max_age"] == "300"
    strong = issuer.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:2", "auth_time": int(time.time())})
    assert request(starlette_app, "GET", "/strong", strong).status_code == 200
    assert request(starlette_app, "GET", "/recent", strong).status_code == 200


def test_the_fastapi_guard_serves_the_metadata_and_steps_up(validator, issuer):
    guard = OIDCGuard(validator, realm="contacts-api", resource=RESOURCE)
    app = FastAPI()
    assert guard.serve_metadata(app) == WELL_KNOWN

    @app.get("/contacts")
    async def contacts(claims=Security(guard, scopes=["contacts"])):
        return {"sub": claims.subject}

    @app.delete("/contacts")
    async def delete(claims=Depends(guard.require_acr("urn:oidc-guard:loa:2"))):
        return {"deleted_by": claims.subject}

    @app.get("/recent")
    async def recent(claims=Depends(guard.require_auth_time(max_age=300))):
        return {"ok": True}

    doc = request(app, "GET", WELL_KNOWN)
    assert doc.status_code == 200 and doc.json()["resource"] == RESOURCE
    assert WELL_KNOWN not in app.openapi()["paths"]
    missing = request(app, "GET", "/contacts")
    assert missing.status_code == 401 and first(missing)[1]["resource_metadata"] == METADATA_URL
    weak = issuer.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:1", "auth_time": int(time.time()) - 3600})
    refused = request(app, "DELETE", "/contacts", weak)
    assert refused.status_code == 401
    assert refused.json()["detail"]["error"] == "insufficient_user_authentication"
    assert first(refused)[1]["acr_values"] == "urn:oidc-guard:loa:2"
    assert first(request(app, "GET", "/recent", weak))[1]["max_age"] == "300"
    strong = issuer.mint({"aud": RESOURCE, "acr": "urn:oidc-guard:loa:2"})
    assert request(app, "DELETE", "/contacts", strong).json() == {"deleted_by": "alice"}


def test_serve_metadata_needs_a_resource(validator):
    with pytest.raises(Exception, match="resource"):
        OIDCGuard(validator).serve_metadata(FastAPI())
