"""oidc_guard.asgi: the ASGI 3 BearerMiddleware (http and websocket scopes)
and the require_* decorators for Starlette endpoints, through httpx's ASGI
transport and Starlette's test client, against the real LocalIssuer.  The
middleware must answer exactly as the WSGI one does."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List

import httpx
import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
import warnings

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its test client; httpx works
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from oidc_guard import BearerMiddleware as WSGIBearerMiddleware
from oidc_guard import TokenValidator
from oidc_guard.asgi import (
    SCOPE_CLAIMS, SCOPE_ERROR, SCOPE_RESULT, BearerMiddleware, require_claims, require_scope, require_token,
)
from oidc_guard.testing import DPoPKey

from challenges import parse_challenges

HOST = "api.test"


async def echo(scope, receive, send):
    """A bare ASGI app: what it saw of the scope and the body."""
    body = b""
    if scope["type"] == "http":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    claims = scope.get(SCOPE_CLAIMS)
    error = scope.get(SCOPE_ERROR)
    payload = json.dumps({
        "sub": None if claims is None else claims.subject,
        "error": None if error is None else error.reason,
        "has_result": SCOPE_RESULT in scope,
        "body": body.decode("latin-1"),
    }).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


def wsgi_echo(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def asgi_call(app, method="GET", path="/x", headers=None, content=None):
    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            return await client.request(method, path, headers=headers or {}, content=content)

    return asyncio.run(run())


def wsgi_call(app, method="GET", path="/x", headers=None):
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url=f"http://{HOST}") as client:
        return client.request(method, path, headers=headers or {})


def answer(response) -> Dict[str, Any]:
    """What a client sees of a refusal: status, the headers that matter, body."""
    return {
        "status": response.status_code,
        "www": response.headers.get_list("www-authenticate"),
        "retry": response.headers.get("retry-after"),
        "cache": response.headers.get("cache-control"),
        "type": response.headers.get("content-type"),
        "body": response.json(),
    }


@pytest.fixture
def validator(issuer, make_validator):
    return make_validator(issuer)


def test_refusals_are_the_wsgi_middleware_s(issuer, validator):
    asgi = BearerMiddleware(echo, validator, realm="contacts-api", required=True)
    wsgi = WSGIBearerMiddleware(wsgi_echo, validator, realm="contacts-api", required=True)
    cases = {
        "no token": {},
        "bad token": {"Authorization": "Bearer not.a.token"},
        "wrong audience": {"Authorization": "Bearer " + issuer.mint({"aud": "api://other"})},
        "expired": {"Authorization": "Bearer " + issuer.mint({"exp": 1000})},
        "malformed": {"Authorization": "Bearer a b"},
        "two schemes": {"Authorization": "Basic eA==, Bearer abc"},
    }
    for name, headers in cases.items():
        a, w = asgi_call(asgi, headers=headers), wsgi_call(wsgi, headers=headers)
        assert answer(a) == answer(w), name
        assert a.status_code in (400, 401), name
    # the shapes themselves (RFC 6750 section 3)
    none = asgi_call(asgi)
    (scheme, params, _raw), *_ = parse_challenges(none.headers.get_list("www-authenticate"))
    assert scheme == "Bearer" and params == {"realm": "contacts-api"}  # no error attribute without a token
    bad = asgi_call(asgi, headers={"Authorization": "Bearer " + issuer.mint({"aud": "api://other"})})
    (scheme, params, _raw), *_ = parse_challenges(bad.headers.get_list("www-authenticate"))
    assert params["error"] == "invalid_token" and bad.json()["error"] == "invalid_token"


def test_a_valid_token_reaches_the_app_with_its_claims_and_the_scope_is_copied(issuer, validator):
    seen: List[Dict[str, Any]] = []

    async def app(scope, receive, send):
        seen.append(scope)
        await echo(scope, receive, send)

    middleware = BearerMiddleware(app, validator)
    original: Dict[str, Any] = {}

    async def run():
        async def outer(scope, receive, send):
            original.update(scope)
            await middleware(scope, receive, send)
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            return await client.get("/x", headers={"Authorization": "Bearer " + issuer.mint()})

    response = asyncio.run(run())
    assert response.json() == {"sub": "alice", "error": None, "has_result": True, "body": ""}
    assert seen[0][SCOPE_RESULT].claims is seen[0][SCOPE_CLAIMS]
    assert SCOPE_RESULT not in original  # the middleware's own copy, not the server's scope


def test_an_invalid_token_goes_on_anonymous_unless_required(issuer, validator):
    r = asgi_call(BearerMiddleware(echo, validator), headers={"Authorization": "Bearer " + issuer.mint({"exp": 1000})})
    assert r.status_code == 200 and r.json()["sub"] is None and r.json()["error"] == "expired"
    # a malformed request is 400 even on a public route (as in WSGI)
    r = asgi_call(BearerMiddleware(echo, validator), headers={"Authorization": "Bearer"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_outage_is_503_with_retry_after_never_401(issuer, validator):
    token = issuer.mint()
    issuer.stop()
    r = asgi_call(BearerMiddleware(echo, validator, required=True), headers={"Authorization": "Bearer " + token})
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "www-authenticate" not in r.headers and r.json()["error"] == "temporarily_unavailable"


def test_form_body_token_is_read_within_its_bound_and_replayed(issuer, validator):
    token = issuer.mint()
    app = BearerMiddleware(echo, validator, accept_form=True, max_form_bytes=4096)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = f"access_token={token}&name=ann".encode()
    r = asgi_call(app, "POST", headers=form, content=body)
    assert r.json()["sub"] == "alice" and r.json()["body"] == body.decode()  # the app read the same bytes
    # over the bound: passed on unread, never searched
    big = body + b"&pad=" + b"x" * 5000
    r = asgi_call(app, "POST", headers=form, content=big)
    assert r.json()["sub"] is None and r.json()["body"] == big.decode()
    # chunked (no Content-Length): not searched either
    async def chunks():
        yield body
    r = asgi_call(app, "POST", headers=form, content=chunks())
    assert r.json()["sub"] is None and r.json()["body"] == body.decode()
    # off by default: the body is not looked at
    r = asgi_call(BearerMiddleware(echo, validator), "POST", headers=form, content=body)
    assert r.json()["sub"] is None
    # header and body at once: 400 (RFC 6750 section 2)
    r = asgi_call(app, "POST", headers={**form, "Authorization": "Bearer " + token}, content=body)
    assert r.status_code == 400 and "more than one method" in r.json()["error_description"]


def test_query_token_only_when_accepted(issuer, validator):
    token = issuer.mint()
    assert asgi_call(BearerMiddleware(echo, validator), path="/x?access_token=" + token).json()["sub"] is None
    assert asgi_call(BearerMiddleware(echo, validator, accept_query=True),
                     path="/x?access_token=" + token).json()["sub"] == "alice"


def test_dpop_htu_is_the_url_the_client_used(issuer, validator):
    key = DPoPKey("ES256")
    token = issuer.mint({"cnf": key.cnf})
    app = BearerMiddleware(echo, validator)
    url = f"http://{HOST}/a%20b/c"
    r = asgi_call(app, path="/a%20b/c", headers={"Authorization": "DPoP " + token,
                                                  "DPoP": key.proof("GET", url, token)})
    assert r.json()["sub"] == "alice"
    r = asgi_call(app, path="/a%20b/c", headers={"Authorization": "DPoP " + token,
                                                  "DPoP": key.proof("GET", f"http://{HOST}/other", token)})
    assert r.json()["error"] == "dpop_proof"


def test_lifespan_passes_through(validator):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BearerMiddleware(app, validator)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


# --- websocket handshakes -----------------------------------------------------------------


async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    claims = websocket.scope[SCOPE_CLAIMS]
    await websocket.send_json({"sub": claims.subject if claims else None})
    await websocket.close()


def ws_app(validator, **kwargs):
    return BearerMiddleware(Starlette(routes=[WebSocketRoute("/ws", ws_echo)]), validator, **kwargs)


def test_websocket_handshake_is_refused_with_an_http_answer_when_the_server_can(issuer, validator):
    from starlette.testclient import WebSocketDenialResponse

    client = TestClient(ws_app(validator, realm="contacts-api", required=True))
    with pytest.raises(WebSocketDenialResponse) as info:
        with client.websocket_connect("/ws"):
            pass
    denied = info.value
    assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
    assert denied.headers["www-authenticate"].startswith('Bearer realm="contacts-api"')
    with pytest.raises(WebSocketDenialResponse) as info:
        with client.websocket_connect("/ws", headers={"Authorization": "Bearer " + issuer.mint({"exp": 1})}):
            pass
    assert info.value.status_code == 401 and 'error="invalid_token"' in info.value.headers["www-authenticate"]
    with client.websocket_connect("/ws", headers={"Authorization": "Bearer " + issuer.mint()}) as ws:
        assert ws.receive_json() == {"sub": "alice"}


def test_websocket_handshake_is_closed_1008_without_the_denial_extension(validator):
    sent: List[Dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b"", "scheme": "ws",
             "server": ("api.test", 80), "extensions": {}}
    asyncio.run(ws_app(validator, required=True)(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "unauthorized"}]


# --- decorators on Starlette endpoints ---------------------------------------------------


@require_scope("contacts")
async def contacts(request):
    return JSONResponse({"sub": request.scope[SCOPE_CLAIMS].subject})


@require_token
def sync_me(request):
    return JSONResponse({"sub": request.scope[SCOPE_CLAIMS].subject})


@require_claims(tenant="acme")
async def acme(request):
    return JSONResponse({"ok": True})


class Items(HTTPEndpoint):
    @require_scope("wte")
    async def get(self, request):
        return JSONResponse({"ok": True})


@require_scope("contacts")
async def ws_contacts(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_json({"ok": True})
    await websocket.close()


def starlette_app(validator):
    routes = [Route("/contacts", contacts), Route("/me", sync_me), Route("/acme", acme), Route("/items", Items),
              WebSocketRoute("/ws", ws_contacts)]
    return BearerMiddleware(Starlette(routes=routes), validator, realm="contacts-api")


def test_starlette_decorators_answer_as_the_wsgi_ones(issuer, validator):
    client = TestClient(starlette_app(validator))
    good = {"Authorization": "Bearer " + issuer.mint(scope="contacts")}
    assert client.get("/contacts", headers=good).json() == {"sub": "alice"}
    assert client.get("/me", headers=good).json() == {"sub": "alice"}  # a sync endpoint
    r = client.get("/contacts")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith('Bearer realm="contacts-api"')
    assert "error=" not in r.headers["www-authenticate"]
    r = client.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint({"exp": 1})})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = client.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint(scope="wte")})
    (scheme, params, _raw), *_ = parse_challenges(r.headers.get_list("www-authenticate"))
    assert r.status_code == 403 and params["error"] == "insufficient_scope" and params["scope"] == "contacts"
    assert r.headers["cache-control"] == "no-store" and r.json()["error"] == "insufficient_scope"
    r = client.get("/items", headers=good)  # an HTTPEndpoint method
    assert r.status_code == 403 and 'scope="wte"' in r.headers["www-authenticate"]
    r = client.get("/acme", headers=good)
    assert r.status_code == 403 and r.json()["error"] == "insufficient_claims"
    # a websocket endpoint: the handshake refused with the same answer
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse) as info:
        with client.websocket_connect("/ws", headers={"Authorization": "Bearer " + issuer.mint(scope="wte")}):
            pass
    assert info.value.status_code == 403 and 'scope="contacts"' in info.value.headers["www-authenticate"]
    with client.websocket_connect("/ws", headers=good) as ws:
        assert ws.receive_json() == {"ok": True}


def test_a_decorator_without_the_middleware_fails_closed(issuer):
    client = TestClient(Starlette(routes=[Route("/contacts", contacts)]))
    r = client.get("/contacts", headers={"Authorization": "Bearer " + issuer.mint()})
    assert r.status_code == 500 and "not configured" in r.text


def test_decorators_check_their_arguments():
    with pytest.raises(TypeError):
        require_scope()
    with pytest.raises(ValueError):
        require_scope("a b")
