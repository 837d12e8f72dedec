"""examples/contacts_django served by gunicorn on a loopback port, called
over real HTTP:

* with JWT access tokens of the real npm oidc-provider (both pinned
  releases): client-credentials and the SPA's user sign-in, the same answers
  as the Flask example (202 wte job, 403 insufficient_scope with scope=,
  import/list, the id_token handoff);
* with the development provider (oidc_guard.testing.LocalIssuer): a
  reference token the API introspects (RFC 7662), revoked then refused, and
  a DPoP-bound token with its proofs (RFC 9449).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rest_framework")

from challenges import parse_challenges  # noqa: E402
from processes import stop_process  # noqa: E402

from oidc_guard import config  # noqa: E402
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, DPoPKey, LocalIssuer  # noqa: E402

from .conftest import free_port  # noqa: E402
from .flows import SYNC, WORKER, cc_token  # noqa: E402
from .test_examples_real_provider import spa_sign_in  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(config.PREFIX)}  # test switches out
    # The unit tests' Django project (tests/djangoproj) sets this variable in
    # the pytest process; the served example has its own settings.
    env["DJANGO_SETTINGS_MODULE"] = "contacts_django.settings"
    env.update(extra)
    return env


class Served:
    """The example under gunicorn (2 workers) on 127.0.0.1:<free port>."""

    def __init__(self, tmp_path, **env):
        exe = str(GUNICORN) if GUNICORN.exists() else shutil.which("gunicorn")
        if exe is None:
            pytest.skip("gunicorn is not installed (test extra)")
        self.port = free_port()
        self.log = open(tmp_path / "gunicorn-django.log", "w+")
        env.setdefault("CONTACTS_API_DB", str(tmp_path / "contacts.sqlite3"))
        self.proc = subprocess.Popen(
            [exe, "--workers", "2", "--bind", f"127.0.0.1:{self.port}", "--chdir", str(EXAMPLES),
             "--log-level", "warning", "contacts_django.wsgi:application"],
            stdout=self.log, stderr=subprocess.STDOUT, env=_env(**env))
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.call("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("gunicorn did not start:\n" + (tmp_path / "gunicorn-django.log").read_text())
            time.sleep(0.1)

    def call(self, method, path, token=None, body=None, scheme="Bearer", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {"Connection": "close"}
            if token is not None:
                sent["Authorization"] = f"{scheme} {token}"
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            sent.update(headers or {})
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, resp.headers, json.loads(raw) if raw else None
        finally:
            conn.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        stop_process(self.proc)
        self.log.close()


@pytest.fixture
def served(tmp_path):
    started = []

    def start(**env):
        server = Served(tmp_path, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _bearer(headers):
    challenges = parse_challenges(headers.get_all("WWW-Authenticate") or [])
    found = [params for scheme, params, _raw in challenges if scheme == "Bearer"]
    assert len(found) == 1, challenges
    return found[0]


def test_real_provider_jwts(real_op, served):
    api = served(CONTACTS_API_ISSUER=real_op.issuer)
    status, headers, body = api.call("GET", "/contacts")
    assert status == 401 and "error" not in _bearer(headers) and body["error"] == "unauthorized"
    worker = cc_token(real_op, WORKER, "wte")
    status, _, body = api.call("POST", "/wte/jobs", worker, {"kind": "sync"})
    assert status == 202 and body["client_token"] is True and body["job"]["client_id"] == "wte-worker"
    status, headers, body = api.call("GET", "/contacts", worker)
    assert status == 403 and _bearer(headers)["error"] == "insufficient_scope"
    assert _bearer(headers)["scope"] == "contacts" and body["error"] == "insufficient_scope"
    status, _, _ = api.call("GET", "/coordinate", cc_token(real_op, SYNC, "contacts"))
    assert status == 403
    status, headers, _ = api.call("GET", "/contacts", worker + "x")
    assert status == 401 and _bearer(headers)["error"] == "invalid_token"

    tokens, nonce = spa_sign_in(real_op)
    user = tokens["access_token"]
    status, _, body = api.call("POST", "/contacts/import", user, {"emails": ["Ann@Example.COM", "ann@example.com"]})
    assert status == 200 and body["added"] == 1 and body["duplicates"] == 1, body
    status, _, body = api.call("GET", "/contacts", user)
    assert status == 200 and [c["email"] for c in body["contacts"]] == ["Ann@example.com"]
    status, _, body = api.call("POST", "/session/handoff", user, {"id_token": tokens["id_token"], "nonce": nonce})
    if real_op.implicit_id_token_token:
        assert status == 200 and body["user"]["sub"] == "alice", body
    else:
        # 9.x: code flow, an ID Token without at_hash: refused, exactly as
        # the Flask example refuses it (the handoff binds through at_hash).
        assert status == 400 and "at_hash" in body["error_description"], body
    status, _, body = api.call("POST", "/session/handoff", user, {"id_token": tokens["id_token"], "nonce": "other"})
    assert status == 400 and body["error"] == "invalid_id_token"


def test_dev_provider_reference_and_dpop_tokens(served, redis_server):
    with LocalIssuer(audience="api://contacts") as iss:
        # Two workers: the DPoP replay records are shared through Redis.
        api = served(CONTACTS_API_ISSUER=iss.issuer, OIDC_GUARD_SHARED_CACHE=redis_server.url,
                     OIDC_GUARD_INTROSPECTION_CLIENT_ID=INTROSPECTION_CLIENT_ID,
                     OIDC_GUARD_INTROSPECTION_CLIENT_SECRET=INTROSPECTION_CLIENT_SECRET,
                     OIDC_GUARD_INTROSPECTION_CACHE_TTL="0")
        # A reference token: introspected, then revoked at the provider.
        ref = iss.mint(reference=True, subject=None, client_id="wte-worker-ref", scope="wte")
        assert "." not in ref
        status, _, body = api.call("POST", "/wte/jobs", ref)
        assert status == 202 and body["job"]["client_id"] == "wte-worker-ref"
        iss.revoke(ref)
        status, headers, body = api.call("POST", "/wte/jobs", ref)
        assert status == 401 and _bearer(headers)["error"] == "invalid_token" and body["error"] == "invalid_token"
        # A DPoP-bound JWT with a fresh proof per call; alone it is refused.
        key = DPoPKey("ES256")
        token = iss.mint(claims={"cnf": key.cnf}, subject=None, client_id="wte-worker", scope="wte")
        for _ in range(3):
            proof = key.proof("POST", api.url + "/wte/jobs", token)
            status, _, body = api.call("POST", "/wte/jobs", token, scheme="DPoP", headers={"DPoP": proof})
            assert status == 202, body
        status, headers, _ = api.call("POST", "/wte/jobs", token, scheme="DPoP", headers={"DPoP": proof})
        assert status == 401  # the proof replayed (whichever worker gets it)
        assert api.call("POST", "/wte/jobs", token)[0] == 401  # a bound token as a bearer token
        # the provider down: 503 with Retry-After for a token not seen yet
        fresh = iss.mint(reference=True, scope="wte")
        iss.stop()
        status, headers, body = api.call("POST", "/wte/jobs", fresh)
        assert status == 503 and int(headers["Retry-After"]) >= 1 and body["error"] == "temporarily_unavailable"
