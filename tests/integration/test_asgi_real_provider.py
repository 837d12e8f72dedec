"""FastAPI and Starlette under a real uvicorn on a loopback port, protected
by oidc_guard's ASGI adapters, with tokens from the real npm oidc-provider
(both pinned releases): the routes answer as the WSGI ones, and a
websocket handshake is refused with an HTTP 401/403 (uvicorn offers the
websocket.http.response extension) or accepted with a good token."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi import Depends, FastAPI, Security
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from oidc_guard import TokenValidator
from oidc_guard.asgi import BearerMiddleware, require_scope
from oidc_guard.fastapi import OIDCGuard

from .flows import API, SERVER_APP, WORKER, cc_token, code_flow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from uvicorn_server import UvicornServer  # noqa: E402

pytestmark = pytest.mark.integration


def fastapi_app(validator):
    guard = OIDCGuard(validator, realm="contacts-api")
    app = FastAPI()

    @app.get("/contacts")
    async def contacts(claims=Security(guard, scopes=["contacts"])):
        return {"sub": claims.subject}

    @app.post("/wte/jobs")
    async def jobs(claims=Security(guard, scopes=["wte"])):
        return {"client_id": claims.client_id}

    @app.get("/me")
    async def me(claims=Depends(guard)):
        return {"sub": claims.subject, "client_id": claims.client_id}

    return app


@require_scope("wte")
async def wte(request):
    return JSONResponse({"client_id": request.scope["oidc_guard.claims"].client_id})


async def feed(websocket):
    await websocket.accept()
    await websocket.send_json({"client_id": websocket.scope["oidc_guard.claims"].client_id})
    await websocket.close()


def starlette_app(validator):
    app = Starlette(routes=[Route("/wte", wte), WebSocketRoute("/feed", require_scope("wte")(feed))])
    return BearerMiddleware(app, validator, realm="contacts-api")


@pytest.fixture
def servers(real_op):
    validator = TokenValidator(real_op.issuer, audience=API)  # one validator, one set of caches, both apps
    started = [UvicornServer(fastapi_app(validator)).start(), UvicornServer(starlette_app(validator)).start()]
    yield started
    for server in started:
        server.stop()


def test_fastapi_under_uvicorn_with_real_tokens(real_op, servers):
    fast, _ = servers
    worker = cc_token(real_op, WORKER, "wte")
    user = code_flow(real_op, scope="openid contacts")[0]["access_token"]
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        assert client.post("/wte/jobs", headers={"Authorization": "Bearer " + worker}).json() == {
            "client_id": WORKER[0]}
        assert client.get("/contacts", headers={"Authorization": "Bearer " + user}).json()["sub"] == "alice"
        r = client.get("/contacts", headers={"Authorization": "Bearer " + worker})
        assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert 'scope="contacts"' in r.headers["www-authenticate"]
        assert r.json()["detail"]["error"] == "insufficient_scope"
        r = client.get("/me")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith('Bearer realm="contacts-api"')
        r = client.get("/me", headers={"Authorization": "Bearer " + worker[:-4] + "AAAA"})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_starlette_and_a_websocket_handshake_under_uvicorn(real_op, servers):
    _, star = servers
    worker = cc_token(real_op, WORKER, "wte")
    user = code_flow(real_op, scope="openid contacts")[0]["access_token"]
    with httpx.Client(base_url=star.url, timeout=10) as client:
        assert client.get("/wte", headers={"Authorization": "Bearer " + worker}).json() == {"client_id": WORKER[0]}
        assert client.get("/wte", headers={"Authorization": "Bearer " + user}).status_code == 403
    ws_url = star.url.replace("http://", "ws://") + "/feed"

    async def handshake(token):
        headers = {"Authorization": "Bearer " + token} if token else {}
        try:
            async with websockets.connect(ws_url, additional_headers=headers) as ws:
                return 101, json.loads(await ws.recv()), None
        except websockets.exceptions.InvalidStatus as exc:
            response = exc.response
            return response.status_code, json.loads(response.body or b"{}"), response.headers

    code, body, _ = asyncio.run(handshake(worker))
    assert code == 101 and body == {"client_id": WORKER[0]}
    code, body, headers = asyncio.run(handshake(user))  # no wte scope: 403 with the challenge
    assert code == 403 and body["error"] == "insufficient_scope" and 'scope="wte"' in headers["WWW-Authenticate"]
    code, body, headers = asyncio.run(handshake(None))
    assert code == 401 and headers["WWW-Authenticate"].startswith('Bearer realm="contacts-api"')
