"""The order and layout of the WWW-Authenticate challenges with the default
``dpop="allowed"`` (RFC 6750 section 3, RFC 9449 section 7.1).

The challenge of the scheme the request used comes first and carries the
error (no token: Bearer first); both challenges travel in one field
(RFC 9110 section 11.6.1), so every way of reading the header agrees:
Flask's test client (werkzeug ``headers[...]``: the first field), webtest
(``headers.get``: the last field), requests (repeated fields joined) and a
real DPoP client library, requests_oauth2client, which retries on
``use_dpop_nonce`` only when the challenge it reads starts with ``DPoP``.
"""

from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
import webtest
from flask import Flask
from requests_oauth2client import BearerToken, DPoPKey as ClientDPoPKey

from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.flask import OIDCGuard, current_claims, require_token as flask_require_token
from oidc_guard.testing import DPoPKey, LocalIssuer
from oidc_guard.wsgi import require_token

from challenges import parse_challenges

REALM = "contacts-api"
HOST = "api.test"


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer(algs=("RS256",)) as iss:
        yield iss


@pytest.fixture(scope="module")
def key():
    return DPoPKey("ES256")


@require_token
def whoami(environ, start_response):
    claims = environ["oidc_guard.claims"]
    body = json.dumps({"sub": claims.subject, "binding": claims.binding}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def flask_client(issuer):
    app = Flask("challenge_order")
    app.config.update(OIDC_GUARD_ISSUER=issuer.issuer, OIDC_GUARD_AUDIENCE=issuer.audience, OIDC_GUARD_REALM=REALM,
                      OIDC_GUARD_PUBLIC_URL=f"http://{HOST}")
    OIDCGuard(app)

    @app.get("/me")
    @flask_require_token
    def me():
        return {"sub": current_claims.subject}

    return app.test_client()


def webtest_client(issuer):
    mw = BearerMiddleware(whoami, TokenValidator(issuer.issuer, audience=issuer.audience), realm=REALM,
                          public_url=f"http://{HOST}")
    return webtest.TestApp(mw)


def schemes(value):
    return [scheme for scheme, _params, _raw in parse_challenges([value])]


def first(value):
    """(scheme, params) of the first challenge of a field value."""
    scheme, params, _raw = parse_challenges([value])[0]
    return scheme, params


# --- Flask's test client: headers["WWW-Authenticate"] is the first field -------------


def test_flask_no_token_leads_with_a_bare_bearer_challenge(issuer):
    r = flask_client(issuer).get("/me")
    assert r.status_code == 401
    assert r.headers.getlist("WWW-Authenticate") == [r.headers["WWW-Authenticate"]]  # one field
    assert schemes(r.headers["WWW-Authenticate"]) == ["Bearer", "DPoP"]
    assert first(r.headers["WWW-Authenticate"]) == ("Bearer", {"realm": REALM})


def test_flask_bad_bearer_token_leads_with_bearer_invalid_token(issuer):
    r = flask_client(issuer).get("/me", headers={"Authorization": "Bearer " + issuer.mint(expires_in=-600)})
    assert r.status_code == 401
    scheme, params = first(r.headers["WWW-Authenticate"])
    assert scheme == "Bearer" and params["error"] == "invalid_token" and "expired" in params["error_description"]
    # the DPoP challenge follows, bare
    (_s, dpop, _raw) = parse_challenges([r.headers["WWW-Authenticate"]])[1]
    assert "error" not in dpop and dpop["algs"]


def test_flask_bad_dpop_proof_leads_with_dpop(issuer, key):
    token = issuer.mint(claims={"cnf": key.cnf})
    r = flask_client(issuer).get("/me", headers={"Authorization": "DPoP " + token, "DPoP": "not-a-proof"})
    assert r.status_code == 401
    scheme, params = first(r.headers["WWW-Authenticate"])
    assert scheme == "DPoP" and params["error"] == "invalid_dpop_proof" and params["algs"]
    assert schemes(r.headers["WWW-Authenticate"]) == ["DPoP", "Bearer"]


# --- webtest: headers.get is the last field --------------------------------------------


def test_webtest_reads_the_same_leading_challenge(issuer, key):
    api = webtest_client(issuer)
    r = api.get("/me", status=401)
    assert first(r.headers.get("WWW-Authenticate")) == ("Bearer", {"realm": REALM})
    r = api.get("/me", headers={"Authorization": "Bearer not.a.jwt"}, status=401)
    assert first(r.headers.get("WWW-Authenticate"))[1]["error"] == "invalid_token"
    assert r.headers.getall("WWW-Authenticate") == [r.headers.get("WWW-Authenticate")]
    token = issuer.mint(claims={"cnf": key.cnf})
    r = api.get("/me", headers={"Authorization": "DPoP " + token,
                                "DPoP": key.proof("GET", f"http://{HOST}/other", token)}, status=401)
    scheme, params = first(r.headers.get("WWW-Authenticate"))
    assert (scheme, params["error"]) == ("DPoP", "invalid_dpop_proof")


# --- a real server and real clients -------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(issuer):
    """whoami behind the middleware with DPoP server nonces (RFC 9449
    section 9) on a loopback wsgiref server; yields its base URL."""
    mw = BearerMiddleware(whoami, TokenValidator(issuer.issuer, audience=issuer.audience), realm=REALM,
                          dpop_nonce=True, dpop_nonce_secret="n" * 32)
    httpd = make_server("127.0.0.1", 0, mw, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_requests_oauth2client_dpop_token_retries_on_use_dpop_nonce(issuer, server):
    # requests_oauth2client's DPoPToken retries a 401 with the server's nonce
    # only when response.headers["WWW-Authenticate"] starts with "DPoP": the
    # DPoP challenge must lead for a DPoP request.
    client_key = ClientDPoPKey.generate(alg="ES256")
    token = issuer.mint(claims={"cnf": {"jkt": client_key.dpop_jkt}})
    auth = client_key.dpop_token_class(token, _dpop_key=client_key)
    r = requests.get(server + "/jobs", auth=auth, timeout=10)
    assert r.status_code == 200, (r.status_code, r.headers)
    assert r.json() == {"sub": "alice", "binding": "dpop"}
    assert client_key.rs_nonce  # it read the DPoP-Nonce of the use_dpop_nonce answer


def test_requests_bearer_client_reads_the_bearer_error_first(issuer, server):
    r = requests.get(server + "/jobs", auth=BearerToken(issuer.mint(audience="api://other")), timeout=10)
    assert r.status_code == 401
    scheme, params = first(r.headers["WWW-Authenticate"])
    assert scheme == "Bearer" and params["error"] == "invalid_token"
    ok = requests.get(server + "/jobs", auth=BearerToken(issuer.mint()), timeout=10)
    assert ok.status_code == 200 and ok.json()["binding"] is None
