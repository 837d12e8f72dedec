"""The examples, unchanged but for the issuer URL, against the real provider.

* examples/contacts_api runs as a real HTTP server on 127.0.0.1 (werkzeug),
  configured with the real provider's issuer (and a temporary database so
  runs do not share data);
* the SPA's part is played by plain HTTP: the implicit ``id_token token``
  flow (code + PKCE with oidc-provider 9.x, which has no implicit token
  response) with the SPA's client id and its kind of redirect URI, then the
  same API calls and id_token handoff the page makes;
* examples/wte_worker.py runs as a subprocess with only ``--issuer`` and
  ``--api`` given.
"""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from challenges import parse_challenges

from . import flows
from .flows import SPA, SPA_REDIRECT, SYNC, WORKER, cc_token, code_flow, implicit_flow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def contacts_api(real_op, tmp_path):
    """The example API on a real loopback server; yields its base URL."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from werkzeug.serving import make_server

    from examples.contacts_api.app import create_app

    app = create_app({
        "OIDC_GUARD_ISSUER": real_op.issuer,
        "CONTACTS_DB_PATH": str(tmp_path / "contacts.sqlite3"),
    })
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="contacts-api", daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_port
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def call(method, url, token=None, body=None):
    """(status, headers, json) of one API call; errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with flows.OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        return exc.code, exc.headers, json.loads(raw) if raw else None


def bearer_challenge(headers):
    """The one Bearer challenge among the WWW-Authenticate headers (a DPoP
    challenge stands beside it while the API also accepts DPoP)."""
    fields = headers.get_all("WWW-Authenticate") or []
    found = [raw for scheme, _params, raw in parse_challenges(fields) if scheme == "Bearer"]
    assert len(found) == 1, fields
    return found[0]


def spa_sign_in(real_op, login="alice"):
    """What the example SPA gets from the provider: (tokens, nonce).

    Implicit ``id_token token`` where the release offers it (as the SPA
    does); with 9.x the same client as a public code + PKCE client.
    """
    if real_op.implicit_id_token_token:
        return implicit_flow(real_op, login=login)
    return code_flow(real_op, scope="openid profile contacts wte coordinate", login=login,
                     client=SPA, redirect_uri=SPA_REDIRECT)[:2]


def test_spa_flow_through_the_example_api(real_op, contacts_api):
    answer, nonce = spa_sign_in(real_op)
    token = answer["access_token"]

    status, _, body = call("POST", contacts_api + "/contacts/import", token,
                           {"emails": ["ann@example.com", "Bob@Example.ORG"]})
    assert status == 200, body
    assert body["sub"] == "alice"

    status, _, body = call("GET", contacts_api + "/contacts", token)
    assert status == 200, body
    assert body["sub"] == "alice"
    assert body["count"] == 2
    assert json.dumps(body["contacts"]).count("@example.") == 2

    # The handoff: the API checks the SPA's id_token (nonce, at_hash against
    # this very bearer token) with the provider's keys.
    status, _, body = call("POST", contacts_api + "/session/handoff", token,
                           {"id_token": answer["id_token"], "nonce": nonce})
    if real_op.implicit_id_token_token:
        assert status == 200, body
        assert body["user"]["sub"] == "alice"
        assert body["issuer"] == real_op.issuer
        assert body["client_id"] == "spa"
    else:
        # An ID Token from the token endpoint need not carry at_hash (OIDC
        # Core 3.1.3.6) and 9.x sends none; the example's handoff binds the
        # two tokens through at_hash, so it must refuse rather than skip it.
        assert "at_hash" not in flows.jose_parts(answer["id_token"])[1]
        assert status == 400 and body["error"] == "invalid_id_token", body
        assert "at_hash" in body["error_description"], body

    # Wrong nonce: 400 invalid_id_token, the access token itself stays good.
    status, _, body = call("POST", contacts_api + "/session/handoff", token,
                           {"id_token": answer["id_token"], "nonce": "other-nonce"})
    assert status == 400 and body["error"] == "invalid_id_token", body

    # Another user's access token with alice's id_token: at_hash does not fit.
    bob, _bob_nonce = spa_sign_in(real_op, login="bob")
    status, _, body = call("POST", contacts_api + "/session/handoff", bob["access_token"],
                           {"id_token": answer["id_token"], "nonce": nonce})
    assert status == 400 and body["error"] == "invalid_id_token", body
    # And bob does not see alice's contacts.
    status, _, body = call("GET", contacts_api + "/contacts", bob["access_token"])
    assert status == 200 and body["sub"] == "bob" and body["count"] == 0, body


def test_api_errors_with_real_tokens(real_op, contacts_api):
    status, headers, _ = call("GET", contacts_api + "/contacts")
    assert status == 401
    # One challenge per accepted scheme (RFC 9449 section 7.1), in one field:
    # Bearer first (no token sent), then DPoP.
    fields = headers.get_all("WWW-Authenticate")
    assert len(fields) == 1, fields
    challenges = [raw for _scheme, _params, raw in parse_challenges(fields)]
    assert [c.split(" ", 1)[0] for c in challenges] == ["Bearer", "DPoP"], challenges
    assert all("error=" not in c for c in challenges)  # RFC 6750 3.1: no token, no error code

    other = cc_token(real_op, WORKER, "wte", resource="api://other")
    status, headers, body = call("POST", contacts_api + "/wte/jobs", other, {})
    assert status == 401, body
    assert 'error="invalid_token"' in bearer_challenge(headers)

    worker = cc_token(real_op, WORKER, "wte")
    status, headers, body = call("GET", contacts_api + "/coordinate", worker)
    assert status == 403, body
    assert 'error="insufficient_scope"' in bearer_challenge(headers)
    assert 'scope="coordinate"' in bearer_challenge(headers)

    sync = cc_token(real_op, SYNC, "contacts coordinate")
    status, _, body = call("GET", contacts_api + "/coordinate", sync)
    assert status == 200, body
    assert body["client_id"] == "contacts-sync"
    # A client-credentials token (sub == client_id, RFC 9068) is not a user.
    # (The exact status is the example's choice; it must refuse, and say why.)
    status, _, body = call("GET", contacts_api + "/contacts", sync)
    assert status in (400, 403), body
    assert "client" in body["error_description"], body


def test_wte_worker_against_the_real_provider(real_op, contacts_api):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "wte_worker.py"),
         "--issuer", real_op.issuer, "--api", contacts_api],
        cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=60)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert "PASS  POST /wte/jobs -> 202" in proc.stdout
    assert "PASS  GET /contacts -> 403" in proc.stdout
    assert "worker: OK" in proc.stdout
    # The worker prints the token's shape (unverified): the real provider's RFC 9068 one.
    assert "typ=at+jwt" in proc.stdout
    assert 'sub="wte-worker"' in proc.stdout
