#!/usr/bin/env python3
"""The oidc_guard demo: a development identity provider, the contacts API and
the single-page app, on loopback, in one command.

    python examples/demo.py            # start everything, print the URLs, Ctrl-C stops
    python examples/demo.py --check    # the whole sign-in + API handoff, headless; exit 0 = all good

What runs (default ports; change them with --provider-port/--api-port/--spa-port):

* http://127.0.0.1:5000  the DEVELOPMENT provider ``oidc_guard.testing.LocalIssuer``:
  discovery, JWKS, ``/authorize`` (implicit ``id_token token`` behind a login
  page with users alice/alice and bob/bob) and ``/token`` (client credentials
  for ``wte-worker`` / ``wte-secret``).  Not an identity provider for
  production: hard-coded users, keys thrown away on exit.
* http://127.0.0.1:5001  the contacts API (``examples/contacts_api``), data in
  ``examples/contacts_api/instance/contacts.sqlite3``; ``--api django`` serves
  the same API as a Django REST framework project (``examples/contacts_django``).
* http://127.0.0.1:5002  the SPA (``examples/spa``), with a generated
  ``/config.js`` that points it at the two above.

``--check`` runs every step against the Flask API and then against the Django
one.  It uses ephemeral ports and a throw-away database, so it can run
while the demo is also running, and gives up after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import errno
import html.parser
import json
import logging
import mimetypes
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPA_DIR = os.path.join(HERE, "spa")
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # contacts_api and wte_worker live next to this file
try:
    import oidc_guard  # noqa: F401  (installed with pip install -e .)
except ImportError:
    # A fresh clone that was not pip-installed: use the package next door.
    sys.path.insert(1, ROOT)

try:
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    from oidc_guard.testing import LocalIssuer
except ImportError as exc:  # pragma: no cover - message for a fresh clone
    sys.exit(
        f"demo: cannot import {exc.name!r}. Install the project first:\n"
        f"    python -m pip install -e '.[flask]'\n(from the repository root)"
    )

import wte_worker  # noqa: E402  (needs sys.path above)
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET  # noqa: E402
from contacts_api import create_app  # noqa: E402

HOST = "127.0.0.1"  # loopback only: the dev provider has hard-coded users
DEFAULT_PORTS = {"provider": 5000, "api": 5001, "spa": 5002}
SPA_CLIENT_ID = "spa"
API_AUDIENCE = "api://contacts"
SPA_SCOPE = "openid profile contacts wte coordinate"
WORKER_CLIENT_ID = "wte-worker"
WORKER_SECRET = "wte-secret"
# The worker's twin with reference (opaque) tokens, and the API's own
# credentials at the development provider's /introspect (RFC 7662).
REFERENCE_WORKER_CLIENT_ID = wte_worker.DEFAULT_REFERENCE_CLIENT_ID
# Seconds the API reuses an introspection result in the demo: short, so the
# revocation step shows a refusal within a second (the library default is 60).
DEMO_INTROSPECTION_CACHE_TTL = 1

BANNER = """\
==============================================================================
  DEVELOPMENT IDENTITY PROVIDER - NOT FOR PRODUCTION
  oidc_guard.testing.LocalIssuer: hard-coded users (alice/alice, bob/bob),
  a hard-coded client secret, keys that live only as long as this process.
  It listens on 127.0.0.1 only. Point the API at your real provider with
  CONTACTS_API_ISSUER=https://your-idp.example.com for anything real.
=============================================================================="""


# --- the SPA's static server --------------------------------------------------


class SpaServer:
    """Serves the files of ``examples/spa`` and a generated ``/config.js``.

    Only the files that exist in the folder at start-up are served (no path
    from the request is ever joined to the file system).  The Content
    Security Policy allows scripts and styles from this origin only and
    network calls to the API and provider origins only; the page has no
    inline script or style, so this costs nothing.
    """

    def __init__(self, spa_dir: str, config: Dict[str, Any], connect_origins: List[str]) -> None:
        self.files: Dict[str, Tuple[bytes, str]] = {}
        for name in sorted(os.listdir(spa_dir)):
            path = os.path.join(spa_dir, name)
            if os.path.isfile(path) and not name.startswith("."):
                with open(path, "rb") as f:
                    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                    if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
                        ctype += "; charset=utf-8"
                    self.files["/" + name] = (f.read(), ctype)
        self.files["/"] = self.files["/index.html"]
        # Data only, as JSON: nothing from the config can become code.
        config_js = "window.CONTACTS_SPA_CONFIG = " + json.dumps(config, indent=2).replace("<", "\\u003c") + ";\n"
        self.files["/config.js"] = (config_js.encode("utf-8"), "text/javascript; charset=utf-8")
        self.csp = "; ".join(
            [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self'",
                "connect-src " + " ".join(connect_origins),
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method not in ("GET", "HEAD"):
            response = Response("method not allowed\n", status=405, headers={"Allow": "GET, HEAD"})
        elif request.path not in self.files:
            response = Response("not found\n", status=404, mimetype="text/plain")
        else:
            body, ctype = self.files[request.path]
            response = Response(body, content_type=ctype)
        response.headers["Content-Security-Policy"] = self.csp
        response.headers["Referrer-Policy"] = "no-referrer"  # tokens travel in the fragment
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)


# --- starting and stopping everything -----------------------------------------


class PortBusy(Exception):
    pass


def _serve(app, port: int, name: str):
    """Bind now (so a busy port fails here, clearly), serve in a thread."""
    try:
        server = make_server(HOST, port, app, threaded=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE or "in use" in str(exc).lower():
            raise PortBusy(f"port {port} for the {name} is busy (is the demo already running?)") from None
        raise
    # A short poll interval so that stop() (server.shutdown) returns quickly.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"demo-{name}", daemon=True
    )
    thread.start()
    return server, thread


def origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Stack:
    """The provider, the API and the SPA, started together.

    ``Stack(ports={"provider": 0, ...}).start()``: 0 = ephemeral port.
    ``db_path=None`` uses the API's default (the instance folder).

    ``issuer_url`` + ``authorization_endpoint``: use that (already running)
    provider instead of starting the development one; the API and the SPA
    are the same, only the issuer URL changes.  The provider must already
    know the SPA's redirect URI (``http://127.0.0.1:<spa port>/``).
    ``api_config``: extra settings for the API's ``create_app``.
    """

    def __init__(
        self,
        ports: Optional[Dict[str, int]] = None,
        db_path: Optional[str] = None,
        *,
        issuer_url: Optional[str] = None,
        authorization_endpoint: Optional[str] = None,
        spa_scope: str = SPA_SCOPE,
        api_config: Optional[Dict[str, Any]] = None,
        legacy: bool = False,
        api: str = "flask",
    ) -> None:
        if api not in ("flask", "django"):
            raise ValueError("api is 'flask' (examples/contacts_api) or 'django' (examples/contacts_django)")
        #: which contacts API: the Flask one or the Django REST framework one
        self.api = api
        self.ports = dict(DEFAULT_PORTS if ports is None else ports)
        self.db_path = db_path
        self.issuer: Optional[LocalIssuer] = None
        self.issuer_url = issuer_url or ""
        self.authorization_endpoint = authorization_endpoint or ""
        self.spa_scope = spa_scope
        self.api_config = dict(api_config or {})
        #: migration mode: a second development provider in IdentityServer
        #: v3's token shape plays the old provider the API still trusts
        self.legacy = legacy
        self.legacy_issuer: Optional[LocalIssuer] = None
        self._servers: List[Tuple[Any, threading.Thread]] = []
        self.api_url = self.spa_url = ""

    def start(self) -> "Stack":
        try:
            if not self.issuer_url:
                issuer = LocalIssuer(host=HOST, port=self.ports["provider"])
                try:
                    issuer.start()
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE or "in use" in str(exc).lower():
                        raise PortBusy(
                            f"port {self.ports['provider']} for the provider is busy (is the demo already running?)"
                        ) from None
                    raise
                self.issuer = issuer
                self.issuer_url = issuer.issuer
                self.authorization_endpoint = issuer.authorization_endpoint

            config: Dict[str, Any] = {"OIDC_GUARD_ISSUER": self.issuer_url, "OIDC_GUARD_AUDIENCE": API_AUDIENCE}
            if self.issuer is not None:
                # Reference tokens: the API introspects opaque tokens at the
                # development provider with its own client credentials.
                config.update({
                    "OIDC_GUARD_INTROSPECTION_CLIENT_ID": INTROSPECTION_CLIENT_ID,
                    "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": INTROSPECTION_CLIENT_SECRET,
                    "OIDC_GUARD_INTROSPECTION_CACHE_TTL": DEMO_INTROSPECTION_CACHE_TTL,
                })
            if self.legacy:
                self.legacy_issuer = LocalIssuer(host=HOST, port=self.ports.get("legacy", 0),
                                                 token_shape="identityserver3").start()
                config["LEGACY_ISSUER"] = self.legacy_issuer.issuer  # audience: <issuer>/resources
            if self.db_path:
                config["CONTACTS_DB_PATH"] = self.db_path
            config.update(self.api_config)
            # The SPA's origin must be known for CORS before the API starts:
            # bind the SPA's port first with a placeholder app, then fill it in.
            spa_holder = _Holder()
            server, thread = _serve(spa_holder, self.ports["spa"], "single-page app")
            self._servers.append((server, thread))
            spa_port = server.server_port
            self.spa_url = f"http://{HOST}:{spa_port}/"
            spa_origins = [f"http://{HOST}:{spa_port}", f"http://localhost:{spa_port}"]
            config["CORS_ALLOWED_ORIGINS"] = spa_origins
            if self.api == "django":
                # The same API as a Django project with DRF views (one per
                # process: Django's settings are global).
                from contacts_django import create_app as create_django_app

                self.api_app = create_django_app(config)
            else:
                self.api_app = create_app(config)
            server, thread = _serve(self.api_app, self.ports["api"], "contacts API")
            self._servers.append((server, thread))
            self.api_url = f"http://{HOST}:{server.server_port}"

            if self.issuer is not None:
                # The SPA's exact redirect URIs (RFC 6749 3.1.2.2; compared exactly).
                self.issuer.register_client(
                    SPA_CLIENT_ID,
                    redirect_uris=[self.spa_url, f"http://localhost:{spa_port}/"],
                    scopes=SPA_SCOPE,
                    grant_types=("implicit",),
                )
            spa_config = {
                "issuer": self.issuer_url,
                "authorizeUrl": self.authorization_endpoint,
                "apiUrl": self.api_url,
                "clientId": SPA_CLIENT_ID,
                "scope": self.spa_scope,
                "extraAuthParams": {},
            }
            spa_holder.app = SpaServer(SPA_DIR, spa_config, [self.api_url, origin(self.issuer_url)])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server, thread in reversed(self._servers):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None
        if self.legacy_issuer is not None:
            self.legacy_issuer.stop()
            self.legacy_issuer = None

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _Holder:
    """A WSGI app that forwards to ``self.app`` once it is set (503 before)."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
            return [b"starting\n"]
        return self.app(environ, start_response)


# --- the headless check ---------------------------------------------------------


class _FormParser(html.parser.HTMLParser):
    """Collects the first <form>'s action, method and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: Optional[str] = None
        self.method = "get"
        self.fields: Dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = attrs.get("action") or ""
            self.method = (attrs.get("method") or "get").lower()
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Checker:
    """Runs named steps, prints PASS/FAIL for each, remembers the outcome."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.results: List[Tuple[str, bool]] = []

    def step(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, bool(ok)))
        self.say(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(ok for _, ok in self.results)


def _request(method, url, *, headers=None, body=None, timeout=10.0):
    return wte_worker.http_request(method, url, headers=headers, body=body, timeout=timeout)


def _header(headers: Dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def run_check(stack: Stack, say: Callable[[str], None] = print, username: str = "alice", password: str = "alice") -> bool:
    """The whole handoff, as the browser would do it, with plain HTTP."""
    c = Checker(say)
    issuer = stack.issuer
    assert issuer is not None
    spa_origin = origin(stack.spa_url)

    # 1. The SPA is served, with its config.
    status, headers, body = _request("GET", stack.spa_url)
    if not c.step("SPA page served", status == 200 and b'id="signin"' in body, f"HTTP {status}"):
        return False
    status, _, body = _request("GET", stack.spa_url + "config.js")
    c.step("SPA config.js points at the API", status == 200 and stack.api_url.encode() in body, f"HTTP {status}")

    # 2. Authentication request (OIDC Core 3.2.2.1), as app.js builds it.
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    query = urllib.parse.urlencode(
        {
            "response_type": "id_token token",
            "client_id": SPA_CLIENT_ID,
            "redirect_uri": stack.spa_url,
            "scope": SPA_SCOPE,
            "state": state,
            "nonce": nonce,
        },
        quote_via=urllib.parse.quote,
    )
    status, headers, body = _request("GET", issuer.authorization_endpoint + "?" + query)
    form = _FormParser()
    form.feed(body.decode("utf-8", "replace"))
    if not c.step(
        "GET /authorize shows the login page",
        status == 200 and form.action is not None and "password" in form.fields,
        f"HTTP {status}, form fields {sorted(form.fields)}",
    ):
        return False

    # 3. Log in: the provider redirects to the SPA with the tokens in the fragment.
    fields = dict(form.fields, username=username, password=password)
    action = urllib.parse.urljoin(issuer.authorization_endpoint, form.action or "")
    status, headers, _ = _request(
        "POST",
        action,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(fields).encode("ascii"),
    )
    location = _header(headers, "Location")
    target, _, fragment = location.partition("#")
    if not c.step(
        "POST login redirects to the SPA with a fragment",
        status in (302, 303) and target == stack.spa_url and bool(fragment),
        f"HTTP {status} -> {target or '(no Location)'}",
    ):
        return False
    params = dict(urllib.parse.parse_qsl(fragment))
    c.step("state in the fragment is the one sent", params.get("state") == state)
    tokens_ok = (
        bool(params.get("access_token")) and bool(params.get("id_token")) and params.get("token_type", "").lower() == "bearer"
    )
    if not c.step(
        "fragment has access_token, id_token, token_type=Bearer",
        tokens_ok,
        f"expires_in={params.get('expires_in')} scope={params.get('scope')!r}",
    ):
        return False
    access_token, id_token = params["access_token"], params["id_token"]
    api = stack.api_url
    bearer = {"Authorization": "Bearer " + access_token, "Origin": spa_origin, "Accept": "application/json"}
    as_json = dict(bearer, **{"Content-Type": "application/json"})

    # 4. The id_token handoff (at_hash binds it to this access token).
    status, headers, body = _request(
        "POST", api + "/session/handoff", headers=as_json, body=json.dumps({"id_token": id_token, "nonce": nonce}).encode()
    )
    answer = _json(body) or {}
    c.step(
        "POST /session/handoff verifies the id_token",
        status == 200 and (answer.get("user") or {}).get("sub") == username,
        f"HTTP {status} user={answer.get('user')}",
    )
    c.step("API answers the SPA's origin (CORS)", _header(headers, "Access-Control-Allow-Origin") == spa_origin)
    status, _, body = _request(
        "POST",
        api + "/session/handoff",
        headers=as_json,
        body=json.dumps({"id_token": id_token, "nonce": "not-the-nonce"}).encode(),
    )
    c.step("handoff with a wrong nonce is refused", status == 400, f"HTTP {status} {(_json(body) or {}).get('error_description')}")

    # 5. Import contacts and list them.
    mine = [f"friend-{secrets.token_hex(4)}@example.com", f"colleague-{secrets.token_hex(4)}@example.org"]
    status, _, body = _request(
        "POST", api + "/contacts/import", headers=as_json, body=json.dumps({"emails": mine + [mine[0].upper()]}).encode()
    )
    answer = _json(body) or {}
    c.step(
        "POST /contacts/import stores the addresses (duplicates merged)",
        status == 200 and answer.get("added") == 2 and answer.get("duplicates") == 1,
        f"HTTP {status} {answer}",
    )
    status, _, body = _request("GET", api + "/contacts", headers=bearer)
    listed = [item.get("email") for item in (_json(body) or {}).get("contacts", [])]
    c.step("GET /contacts lists them", status == 200 and all(m in listed for m in mine), f"HTTP {status}, {len(listed)} contacts")
    status, _, _ = _request("GET", api + "/coordinate", headers=bearer)
    c.step("GET /coordinate with scope coordinate", status == 200, f"HTTP {status}")
    # Step-up (RFC 9470): deleting needs acr level 2; this sign-in was level 1.
    status, headers, body = _request("DELETE", api + "/contacts/" + urllib.parse.quote(mine[0]), headers=bearer)
    challenge = _header(headers, "WWW-Authenticate")
    c.step(
        "DELETE /contacts/<email> after a plain sign-in: 401 insufficient_user_authentication, acr_values",
        status == 401 and 'error="insufficient_user_authentication"' in challenge
        and 'acr_values="urn:oidc-guard:loa:2"' in challenge,
        f"HTTP {status} {challenge[:160]}",
    )
    status, headers, _ = _request("GET", api + "/contacts")
    c.step(
        "GET /contacts without a token is 401 with a bare challenge",
        status == 401 and _header(headers, "WWW-Authenticate").startswith("Bearer") and "error=" not in _header(headers, "WWW-Authenticate"),
        f"HTTP {status} WWW-Authenticate: {_header(headers, 'WWW-Authenticate')}",
    )

    # 6. The back-end worker: client credentials -> wte OK, contacts 403.
    say("      worker (client credentials):")
    worker_ok = wte_worker.run(issuer.issuer, api, WORKER_CLIENT_ID, WORKER_SECRET, say=lambda line: say("        " + line))
    c.step("worker: wte job accepted, contacts refused with insufficient_scope", worker_ok)

    # 6a. The same worker with a DPoP-bound token (RFC 9449): proof at the
    #     token endpoint, a fresh proof per API call; the token alone is refused.
    say("      worker with DPoP (sender-constrained token):")
    dpop_ok = wte_worker.run(issuer.issuer, api, WORKER_CLIENT_ID, WORKER_SECRET, dpop=True,
                             say=lambda line: say("        " + line))
    c.step("worker --dpop: DPoP-bound token accepted with its proofs, contacts still 403", dpop_ok)

    # 6b. Reference tokens: the same worker with opaque tokens the API
    #     introspects (RFC 7662); revoked at the provider (RFC 7009), refused
    #     once the API's cache entry ends.
    say("      worker with reference tokens (introspection):")
    ref_ok = wte_worker.run(issuer.issuer, api, REFERENCE_WORKER_CLIENT_ID, WORKER_SECRET, reference=True,
                            say=lambda line: say("        " + line))
    c.step("reference token accepted through introspection (wte job), contacts refused", ref_ok)
    try:
        endpoint = wte_worker.discover_token_endpoint(issuer.issuer, timeout=10)
        ref_token = wte_worker.client_credentials_token(endpoint, REFERENCE_WORKER_CLIENT_ID, WORKER_SECRET,
                                                        scope="wte", timeout=10)["access_token"]
    except wte_worker.WorkerError as exc:
        c.step("reference token for the revocation step", False, str(exc))
    else:
        job = json.dumps({"kind": "sync", "payload": {"source": "demo"}}).encode()
        ref_headers = {"Authorization": "Bearer " + ref_token, "Content-Type": "application/json"}
        status, _, _ = _request("POST", api + "/wte/jobs", headers=ref_headers, body=job)
        c.step("a new reference token: POST /wte/jobs", 200 <= status < 300, f"HTTP {status}")
        revoke_url = urllib.parse.urljoin(issuer.issuer + "/", "revoke")
        form = urllib.parse.urlencode({"token": ref_token, "token_type_hint": "access_token",
                                       "client_id": REFERENCE_WORKER_CLIENT_ID,
                                       "client_secret": WORKER_SECRET}).encode()
        status, _, _ = _request("POST", revoke_url, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body=form)
        c.step("the worker revokes it at the provider (RFC 7009)", status == 200, f"HTTP {status}")
        time.sleep(DEMO_INTROSPECTION_CACHE_TTL + 0.2)  # the API's cache entry ends
        status, headers, body = _request("POST", api + "/wte/jobs", headers=ref_headers, body=job)
        c.step("the same token after revocation: 401 invalid_token",
               status == 401 and 'error="invalid_token"' in _header(headers, "WWW-Authenticate"),
               f"HTTP {status} {(_json(body) or {}).get('error_description')}")

    # 7. Migration mode: the old provider's IdentityServer v3-shaped tokens
    #    are accepted next to the new provider's, each by its own issuer.
    legacy = stack.legacy_issuer
    if legacy is not None:
        say(f"      migration mode: old provider {legacy.issuer} (IdentityServer v3 token shape)")
        say("        worker with the old provider (client credentials):")
        old_ok = wte_worker.run(legacy.issuer, api, WORKER_CLIENT_ID, WORKER_SECRET,
                                say=lambda line: say("          " + line))
        c.step("old provider's client token (scope array, aud <issuer>/resources, no sub): wte accepted, "
               "contacts refused", old_ok)
        # A user token as IdentityServer v3's implicit flow issues it.
        old_user = legacy.mint({"auth_time": int(time.time()), "amr": ["pwd"], "idp": "idsrv"},
                               subject=username, scope=["openid", "contacts"], client_id=SPA_CLIENT_ID)
        status, _, body = _request("GET", api + "/contacts", headers={"Authorization": "Bearer " + old_user})
        c.step("old provider's user token: GET /contacts", status == 200, f"HTTP {status}")
        stranger = legacy.mint(issuer="https://retired-idp.example", subject=username)
        status, headers, body = _request("GET", api + "/contacts", headers={"Authorization": "Bearer " + stranger})
        description = (_json(body) or {}).get("error_description", "")
        c.step("a token of an issuer trusted by neither: 401 invalid_token naming it",
               status == 401 and "retired-idp.example" in description, f"HTTP {status} {description}")

    # 8. The same API as a FastAPI app (examples/contacts_fastapi) under uvicorn.
    try:
        from contacts_fastapi.check import run_steps
    except ImportError as exc:
        c.step("FastAPI app importable", False, f"{exc} (pip install -e '.[fastapi,examples]')")
    else:
        run_steps(issuer, c.step, say, worker=lambda url: wte_worker.run(
            issuer.issuer, url, WORKER_CLIENT_ID, WORKER_SECRET, say=lambda line: say("        " + line)))
    return c.ok


def check(timeout: float) -> int:
    """``--check``: ephemeral ports, a throw-away database, a hard time limit;
    every step against the Flask API, then against the Django one."""
    started = time.monotonic()
    # Keep the PASS/FAIL lines readable: no per-request access log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # Django logs each 4xx at WARNING

    def watchdog() -> None:
        print(f"FAIL  --check did not finish within {timeout:.0f} s", flush=True)
        os._exit(2)

    timer = threading.Timer(timeout, watchdog)
    timer.daemon = True
    timer.start()
    tmp = tempfile.mkdtemp(prefix="oidc_guard-demo-check-")
    ok = True
    try:
        for api in ("flask", "django"):
            with Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=os.path.join(tmp, f"{api}.sqlite3"),
                       legacy=True, api=api) as stack:
                assert stack.issuer is not None and stack.legacy_issuer is not None
                print(f"demo --check: provider {stack.issuer.issuer}, old provider {stack.legacy_issuer.issuer} "
                      f"(migration mode), {api} API {stack.api_url}, SPA {stack.spa_url}")
                try:
                    ok = run_check(stack) and ok
                except wte_worker.WorkerError as exc:
                    print(f"FAIL  {exc}")
                    ok = False
    finally:
        timer.cancel()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"demo --check: {'all steps passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def serve(ports: Dict[str, int], api: str = "flask") -> int:
    try:
        stack = Stack(ports=ports, api=api).start()
    except PortBusy as exc:
        print(f"demo: {exc}. Stop the other process or choose another port (--provider-port, --api-port, --spa-port).")
        return 2
    assert stack.issuer is not None
    stop = threading.Event()
    # Ctrl-C (SIGINT) and SIGTERM both stop everything cleanly.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(BANNER)
    print(
        f"""
  Development provider  {stack.issuer.issuer}   (discovery: {stack.issuer.discovery_url})
  Contacts API          {stack.api_url}   ({stack.api}; data: {_db_path(stack)})
  Single-page app       {stack.spa_url}

  Open {stack.spa_url} and sign in as alice / alice (or bob / bob).
  The back-end job:  python examples/wte_worker.py --issuer {stack.issuer.issuer} --api {stack.api_url}

  Ctrl-C stops everything.
""",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\ndemo: stopping...", flush=True)
        stack.stop()
    print("demo: stopped.")
    return 0


def _db_path(stack: Stack) -> str:
    if stack.api == "django":
        from django.conf import settings

        return str(settings.CONTACTS_DB_PATH)
    return str(stack.api_app.config["CONTACTS_DB_PATH"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="oidc_guard demo: dev provider + contacts API + SPA on loopback")
    parser.add_argument("--check", action="store_true", help="run the whole handoff headless and exit (0 = all passed)")
    parser.add_argument("--timeout", type=float, default=60.0, help="--check gives up after this many seconds (default 60)")
    parser.add_argument("--provider-port", type=int, default=DEFAULT_PORTS["provider"])
    parser.add_argument("--api-port", type=int, default=DEFAULT_PORTS["api"])
    parser.add_argument("--spa-port", type=int, default=DEFAULT_PORTS["spa"])
    parser.add_argument("--api", choices=("flask", "django"), default="flask",
                        help="the contacts API to serve: examples/contacts_api (Flask, default) or "
                             "examples/contacts_django (Django REST framework)")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.timeout)
    return serve({"provider": args.provider_port, "api": args.api_port, "spa": args.spa_port}, args.api)


if __name__ == "__main__":
    sys.exit(main())
