"""DPoP (RFC 9449) against a real provider: npm oidc-provider 9.13.3 (DPoP is
on by default in 9.x) issues DPoP-bound client-credentials tokens, as JWTs
(``cnf.jkt``) and as opaque tokens (introspection returns ``cnf``), and
BearerMiddleware shows: accepted with a fresh proof; the same proof replayed
refused, also by a second gunicorn worker sharing Redis; a proof for another
URL or method refused; the bound token sent as Bearer refused.

Only the 9.x release: 7.14.3's DPoP is an experimental draft feature.
"""

import base64
import collections
import concurrent.futures
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import webtest

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.testing import DPoPKey

from apps import bound_app
from processes import stop_process

from .conftest import ProviderProcess, free_port

pytestmark = pytest.mark.integration

API = "api://contacts"
PUBLIC = "https://api.example.test"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
RELIABILITY = Path(__file__).resolve().parents[1] / "reliability"
GUNICORN = Path(sys.executable).with_name("gunicorn")


@pytest.fixture(scope="module")
def op9(provider_installed, tmp_path_factory):
    op = ProviderProcess(tmp_path_factory.mktemp("oidc-provider-dpop"), free_port(), "9")
    op.start(new_port_if_taken=True)
    try:
        yield op
    finally:
        op.stop()


def dpop_token(op, key, client="wte-worker", resource=API):
    form = {"grant_type": "client_credentials", "scope": "wte"}
    if resource:
        form["resource"] = resource
    req = urllib.request.Request(op.token_endpoint, data=urllib.parse.urlencode(form).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{client}:wte-secret".encode()).decode())
    req.add_header("DPoP", key.proof("POST", op.token_endpoint))
    with OPENER.open(req, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["token_type"] == "DPoP", body
    return body["access_token"]


app = bound_app  # requires a bound token (tests/apps.py)


def check_bound_token(client, key, token):
    url = PUBLIC + "/jobs"
    proof = key.proof("GET", url, token)
    auth = {"Authorization": "DPoP " + token}
    assert client.get("/jobs", headers=dict(auth, DPoP=proof)).json == {"client_id": "wte-worker" if "." in token
                                                                         else "wte-worker-ref", "binding": "dpop"}
    r = client.get("/jobs", headers=dict(auth, DPoP=proof), status=401)  # replayed
    assert r.json["error"] == "invalid_dpop_proof" and "already used" in r.json["error_description"]
    r = client.get("/jobs", headers=dict(auth, DPoP=key.proof("GET", PUBLIC + "/other", token)), status=401)
    assert "htu" in r.json["error_description"]
    r = client.get("/jobs", headers=dict(auth, DPoP=key.proof("POST", url, token)), status=401)
    assert "htm" in r.json["error_description"]
    r = client.get("/jobs", headers={"Authorization": "Bearer " + token}, status=401)
    assert r.json["error"] == "invalid_token" and "DPoP-bound" in r.json["error_description"]
    r = client.get("/jobs", headers=dict(auth, DPoP=DPoPKey("ES256").proof("GET", url, token)), status=401)
    assert "cnf.jkt" in r.json["error_description"]


def test_dpop_bound_jwt_from_oidc_provider(op9):
    key = DPoPKey("ES256")
    token = dpop_token(op9, key)
    seg = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))["cnf"] == {"jkt": key.jkt}
    v = TokenValidator(op9.issuer, audience=API)
    check_bound_token(webtest.TestApp(BearerMiddleware(app, v, public_url=PUBLIC)), key, token)


def test_dpop_bound_opaque_token_introspected(op9):
    key = DPoPKey("EdDSA")
    token = dpop_token(op9, key, client="wte-worker-ref", resource=None)
    assert "." not in token
    v = TokenValidator(op9.issuer, audience=API, verify_audience=False, introspection_client_id="contacts-api",
                       introspection_client_secret="contacts-api-secret")
    assert v.validate_access_token(token)["cnf"] == {"jkt": key.jkt}
    check_bound_token(webtest.TestApp(BearerMiddleware(app, v, public_url=PUBLIC)), key, token)


def _get(port, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/jobs", headers=dict(headers, Connection="close"))
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Worker-Pid")
    finally:
        conn.close()


def test_replay_refused_by_another_gunicorn_worker_sharing_redis(op9, redis_server, tmp_path):
    if not GUNICORN.exists() and shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (test extra)")
    exe = str(GUNICORN) if GUNICORN.exists() else shutil.which("gunicorn")
    port = free_port()
    env = dict(os.environ, DPOP_ISSUER=op9.issuer, DPOP_REDIS=redis_server.url, DPOP_PUBLIC_URL=PUBLIC,
               PYTHONPATH=str(RELIABILITY))
    log = open(tmp_path / "gunicorn.log", "w+")
    proc = subprocess.Popen([exe, "--workers", "2", "--bind", f"127.0.0.1:{port}", "--chdir", str(RELIABILITY),
                             "--log-level", "warning", "dpop_app:app"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, {})[0] == 401:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail("gunicorn did not start:\n" + log.read())
                time.sleep(0.1)
        key = DPoPKey("ES256")
        token = dpop_token(op9, key)
        for _ in range(6):  # both workers have the provider's keys
            assert _get(port, {"Authorization": "DPoP " + token, "DPoP": key.proof("GET", PUBLIC + "/jobs", token)})[0] == 200
        proof = key.proof("GET", PUBLIC + "/jobs", token)
        # Sequential requests on a loaded machine often all reach the one idle
        # worker (whichever sits in accept()), so the replays go 8 at a time,
        # in rounds of 40 until both workers have refused one (at most 10
        # rounds); exactly one request of them all may succeed.
        answers = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _round in range(10):
                answers += pool.map(lambda _: _get(port, {"Authorization": "DPoP " + token, "DPoP": proof}), range(40))
                if len({pid for status, pid in answers if status == 401}) >= 2:
                    break
        statuses = collections.Counter(status for status, _pid in answers)
        assert statuses == {200: 1, 401: len(answers) - 1}, statuses
        assert len({pid for status, pid in answers if status == 401}) == 2, "the replays did not reach both workers"
    finally:
        stop_process(proc)
        log.close()


# --- RFC 8705: certificate-bound tokens from oidc-provider's mTLS feature ----------------


def _ca_and_client():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def client(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        return (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))

    return ca, client("wte-worker-mtls"), client("someone else")


def test_certificate_bound_token_from_oidc_provider(op9):
    from urllib.parse import quote

    from cryptography.hazmat.primitives import serialization

    _ca, cert, other = _ca_and_client()
    pem = quote(cert.public_bytes(serialization.Encoding.PEM).decode(), safe="")
    other_pem = quote(other.public_bytes(serialization.Encoding.PEM).decode(), safe="")
    form = {"grant_type": "client_credentials", "scope": "wte", "resource": API}
    req = urllib.request.Request(op9.token_endpoint, data=urllib.parse.urlencode(form).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"wte-worker-mtls:wte-secret").decode())
    req.add_header("X-Client-Cert", pem)  # what the TLS-terminating proxy would pass
    with OPENER.open(req, timeout=10) as resp:
        body = json.loads(resp.read())
    token = body["access_token"]
    seg = token.split(".")[1]
    der = cert.public_bytes(serialization.Encoding.DER)
    import hashlib

    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))["cnf"] == {"x5t#S256": expected}

    v = TokenValidator(op9.issuer, audience=API)
    client = webtest.TestApp(BearerMiddleware(app, v, client_cert_header="X-Client-Cert"))
    auth = {"Authorization": "Bearer " + token}
    assert client.get("/jobs", headers=dict(auth, **{"X-Client-Cert": pem})).json["binding"] == "mtls"
    r = client.get("/jobs", headers=dict(auth, **{"X-Client-Cert": other_pem}), status=401)
    assert "another client certificate" in r.json["error_description"]
    r = client.get("/jobs", headers=auth, status=401)
    assert "has none" in r.json["error_description"]
