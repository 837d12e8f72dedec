"""The FastAPI contacts API's steps of ``examples/demo.py --check``: the app
under a real uvicorn on an ephemeral loopback port, against the demo's
development provider, called as its clients call it."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

from oidc_guard import TokenValidator
from oidc_guard.testing.devtoken import DevTokenError, user_token

from .app import DEFAULT_SWAGGER_UI_DIR, create_app

HOST = "127.0.0.1"


def _request(method: str, url: str, headers: Optional[Dict[str, str]] = None,
             body: Optional[Any] = None) -> Tuple[int, Dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    h = dict(headers or {})
    if data is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, head, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        status, head, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, head, json.loads(raw or b"null")
    except ValueError:
        return status, head, raw


class _Uvicorn:
    """uvicorn serving ``app`` in a thread on an ephemeral loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn  # the demo's ASGI server

        self.server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=0, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{HOST}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run_steps(issuer: Any, step: Callable[[str, bool, str], bool], say: Callable[[str], None] = print,
              worker: Optional[Callable[[str], bool]] = None, username: str = "alice",
              password: str = "alice") -> None:
    """Start the FastAPI app for the provider ``issuer`` (a LocalIssuer) and
    report each step through ``step(name, ok, detail)``; ``worker(api_url)``
    runs the back-end worker against it."""
    try:
        validator = TokenValidator(issuer.issuer, audience="api://contacts")
        with tempfile.TemporaryDirectory(prefix="oidc_guard-demo-fastapi-") as tmp:
            app = create_app({"OIDC_GUARD_ISSUER": issuer.issuer, "CONTACTS_DB_PATH": tmp + "/contacts.sqlite3"},
                             validator=validator)
            server = _Uvicorn(app)
            api = server.start()
            try:
                _steps(api, issuer, step, say, worker, username, password)
            finally:
                server.stop()
    except ImportError as exc:
        step("FastAPI app: uvicorn and fastapi are installed", False,
             f"{exc} (pip install -e '.[fastapi,examples]')")


def _steps(api: str, issuer: Any, step: Callable[[str, bool, str], bool], say: Callable[[str], None],
           worker: Optional[Callable[[str], bool]], username: str, password: str) -> None:
    say(f"      the same API as a FastAPI app under uvicorn: {api}")
    # Swagger UI's Authorize button: a public client with PKCE (RFC 7636)
    # whose redirect URI is the docs page's.
    issuer.register_client("swagger-ui", redirect_uris=[api + "/docs/oauth2-redirect"],
                           scopes="openid contacts wte coordinate", grant_types=("authorization_code",))
    status, _, body = _request("GET", api + "/health")
    step("FastAPI: GET /health", status == 200 and body == {"status": "ok"}, f"HTTP {status}")
    status, headers, body = _request("GET", api + "/contacts")
    www = headers.get("www-authenticate", "")
    step("FastAPI: GET /contacts without a token is 401 with a bare challenge",
         status == 401 and www.startswith("Bearer") and "error=" not in www, f"HTTP {status} {www}")
    try:
        token = user_token(issuer.issuer, username, password, scope=("openid", "contacts"))["access_token"]
    except DevTokenError as exc:
        step("FastAPI: a user's token from the provider (code + PKCE)", False, str(exc))
        return
    auth = {"Authorization": "Bearer " + token}
    mine = [f"fastapi-{int(time.time())}@example.com"]
    status, _, body = _request("POST", api + "/contacts/import", auth, {"emails": mine})
    step("FastAPI: POST /contacts/import", status == 200 and body.get("added") == 1, f"HTTP {status} {body}")
    status, _, body = _request("GET", api + "/contacts", auth)
    listed = [c["email"] for c in body.get("contacts", [])] if isinstance(body, dict) else []
    step("FastAPI: GET /contacts lists them", status == 200 and listed == mine, f"HTTP {status}")
    status, headers, body = _request("GET", api + "/coordinate", auth)
    www = headers.get("www-authenticate", "")
    step("FastAPI: GET /coordinate without the scope is 403 insufficient_scope in {\"detail\": ...}",
         status == 403 and 'scope="coordinate"' in www and body["detail"]["error"] == "insufficient_scope",
         f"HTTP {status} {www}")
    status, _, schema = _request("GET", api + "/openapi.json")
    security = schema["paths"]["/contacts"]["get"].get("security") if status == 200 else None
    step("FastAPI: the OpenAPI schema names the scheme and the route's scopes",
         security == [{"contacts-oidc": ["contacts"]}], f"HTTP {status} {security}")
    status, _, page = _request("GET", api + "/docs")
    if status == 404 and not os.path.isfile(os.path.join(DEFAULT_SWAGGER_UI_DIR, "swagger-ui-bundle.js")):
        say("      (Swagger UI's files are not installed, so no /docs: bash scripts/install_swagger_ui.sh)")
    else:
        step("FastAPI: Swagger UI at /docs from local files", status == 200 and b"/docs/static/" in page,
             f"HTTP {status}")
    if worker is not None:
        step("FastAPI: worker: wte job accepted, contacts refused with insufficient_scope", worker(api), "")
