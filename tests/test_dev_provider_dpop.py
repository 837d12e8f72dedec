"""The development provider (oidc_guard.testing) issues sender-constrained
tokens: DPoP-bound (RFC 9449 section 5) when the token request carries a
proof, certificate-bound (RFC 8705) when it carries a client certificate in
the test-only header; and the middleware accepts them only with their proof
or certificate, JWTs and reference tokens (introspection returns cnf) alike."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import quote

import pytest
import webtest

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.testing import DPoPKey, LocalIssuer
from oidc_guard.testing.provider import DEV_CLIENT_CERT_HEADER

from apps import bound_app
from certs import make_cert, pem, x5t

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
API = "http://api.test"


def token_request(iss, client_id="wte-worker", headers=None):
    basic = base64.b64encode(f"{client_id}:wte-secret".encode()).decode()
    req = urllib.request.Request(iss.token_endpoint, data=b"grant_type=client_credentials", method="POST",
                                 headers=dict({"Authorization": "Basic " + basic,
                                               "Content-Type": "application/x-www-form-urlencoded"}, **(headers or {})))
    try:
        with OPENER.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def payload(jwt):
    seg = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


app = bound_app  # requires a bound token (tests/apps.py)


@pytest.fixture(scope="module")
def iss():
    with LocalIssuer(algs=("RS256",)) as issuer:
        yield issuer


def api(iss):
    v = TokenValidator(iss.issuer, audience=iss.audience)
    return webtest.TestApp(BearerMiddleware(app, v, public_url=API))


def test_dpop_bound_jwt_from_the_token_endpoint(iss):
    key = DPoPKey("ES256")
    status, body = token_request(iss, headers={"DPoP": key.proof("POST", iss.token_endpoint)})
    assert status == 200 and body["token_type"] == "DPoP"
    token = body["access_token"]
    assert payload(token)["cnf"] == {"jkt": key.jkt}
    client = api(iss)
    r = client.get("/x", headers={"Authorization": "DPoP " + token, "DPoP": key.proof("GET", API + "/x", token)})
    assert r.json == {"client_id": "wte-worker", "binding": "dpop"}
    client.get("/x", headers={"Authorization": "Bearer " + token}, status=401)


def test_no_proof_gives_a_bearer_token(iss):
    status, body = token_request(iss)
    assert status == 200 and body["token_type"] == "Bearer" and "cnf" not in payload(body["access_token"])


@pytest.mark.parametrize("case", ["replayed", "other url", "garbage", "two"])
def test_bad_token_request_proof_is_400_invalid_dpop_proof(iss, case):
    key = DPoPKey("EdDSA")
    proof = key.proof("POST", iss.token_endpoint)
    if case == "replayed":
        assert token_request(iss, headers={"DPoP": proof})[0] == 200
    elif case == "other url":
        proof = key.proof("POST", iss.issuer + "/other")
    elif case == "garbage":
        proof = "x.y.z"
    else:
        proof = proof + "," + key.proof("POST", iss.token_endpoint)
    status, body = token_request(iss, headers={"DPoP": proof})
    assert status == 400 and body["error"] == "invalid_dpop_proof", body


def test_reference_token_bound_by_introspection_cnf(iss):
    key = DPoPKey("ES256")
    status, body = token_request(iss, "wte-worker-ref", headers={"DPoP": key.proof("POST", iss.token_endpoint)})
    assert status == 200 and body["token_type"] == "DPoP" and "." not in body["access_token"]
    token = body["access_token"]
    from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET

    v = TokenValidator(iss.issuer, audience=iss.audience, introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    assert v.validate_access_token(token)["cnf"] == {"jkt": key.jkt}
    client = webtest.TestApp(BearerMiddleware(app, v, public_url=API))
    r = client.get("/x", headers={"Authorization": "DPoP " + token, "DPoP": key.proof("GET", API + "/x", token)})
    assert r.json["binding"] == "dpop"
    r = client.get("/x", headers={"Authorization": "Bearer " + token}, status=401)
    assert "DPoP-bound" in r.json["error_description"]


def test_certificate_bound_token(iss):
    cert, other = make_cert("wte-worker"), make_cert("wte-worker")
    status, body = token_request(iss, headers={DEV_CLIENT_CERT_HEADER: quote(pem(cert), safe="")})
    assert status == 200 and body["token_type"] == "Bearer"
    token = body["access_token"]
    assert payload(token)["cnf"] == {"x5t#S256": x5t(cert)}
    client = webtest.TestApp(BearerMiddleware(app, TokenValidator(iss.issuer, audience=iss.audience),
                                              client_cert_header="X-Proxy-Cert"))
    auth = {"Authorization": "Bearer " + token}
    r = client.get("/x", headers=dict(auth, **{"X-Proxy-Cert": quote(pem(cert), safe="")}))
    assert r.json["binding"] == "mtls"
    client.get("/x", headers=dict(auth, **{"X-Proxy-Cert": quote(pem(other), safe="")}), status=401)
    client.get("/x", headers=auth, status=401)
