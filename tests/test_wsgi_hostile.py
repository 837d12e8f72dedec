"""Hostile requests against BearerMiddleware with everything on at once:
DPoP (allowed), certificate binding through a proxy header, introspection of
reference tokens with a real Redis as the shared cache.  Odd headers,
oversized and duplicate values, non-ASCII, odd introspection JSON and
garbage in Redis must each end as 200/400/401/403/503 -- never an exception
and never a 500 -- and a provider or cache problem is 503, a token problem
401."""

from __future__ import annotations

import io
import itertools

import pytest

from hostile_inputs import dpop_authorizations, dpop_proofs
from oidc_guard import BearerMiddleware, TokenValidator
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, DPoPKey
from oidc_guard.wsgi import require_token

URL = "http://api.test/x"
ALLOWED = ("200", "400", "401", "403", "503")


@require_token()
def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def rig(make_issuer, redis_server):
    iss = make_issuer(algs=("RS256",))
    v = TokenValidator(iss.issuer, audience=iss.audience, http_timeout=2,
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET, shared_cache=redis_server.url)
    mw = BearerMiddleware(_app, v, dpop="allowed", client_cert_header="X-Client-Cert")

    def call(headers, method="GET", path="/x", extra=None):
        env = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "SERVER_NAME": "api.test",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "HTTP_HOST": "api.test",
               "wsgi.input": io.BytesIO(b""), "QUERY_STRING": ""}
        env.update(headers)
        env.update(extra or {})
        out = {}

        def start_response(status, response_headers, exc_info=None):
            out["status"] = status

        body = b"".join(mw(env, start_response))  # an exception here fails the test
        assert out["status"][:3] in ALLOWED, (headers, out["status"], body[:200])
        return out["status"][:3]

    return iss, v, call


def test_hostile_headers_never_500(rig):
    iss, _v, call = rig
    key = DPoPKey("ES256")
    ref = iss.mint(reference=True, claims={"cnf": key.cnf})
    assert call({"HTTP_AUTHORIZATION": "DPoP " + ref, "HTTP_DPOP": key.proof("GET", URL, ref)}) == "200"
    assert call({"HTTP_AUTHORIZATION": "Bearer " + ref}) == "401"  # bound token as Bearer
    auths = dpop_authorizations(ref)
    proofs = dpop_proofs(key, URL, ref)
    for auth, proof in itertools.product(auths + ["DPoP " + ref], proofs):
        headers = {"HTTP_AUTHORIZATION": auth}
        if proof is not None:
            headers["HTTP_DPOP"] = proof
        call(headers)
    good = {"HTTP_AUTHORIZATION": "DPoP " + ref}
    for host in ["a b", "h:99999", "[::1", "\u00e9", "\x00", "h:-1", "x" * 10000, "user@h"]:
        assert call(dict(good, HTTP_DPOP=key.proof("GET", URL, ref)), extra={"HTTP_HOST": host}) == "401"
    for path in ["/\udcff", "/\u00e9", "/" + "a" * 10000, "", "/..//./"]:
        call(dict(good, HTTP_DPOP=key.proof("GET", URL, ref)), path=path)
    for method in ["", "\u00e9", "get", "X" * 1000]:
        assert call(dict(good, HTTP_DPOP=key.proof("GET", URL, ref)), method=method) == "401"


def test_hostile_certificates_and_cnf_values_are_401(rig):
    iss, _v, call = rig
    key = DPoPKey("ES256")
    bound = iss.mint(reference=True, claims={"cnf": {"x5t#S256": "abc"}})
    for cert in ["", "\u00e9", "%zz", "%ff%fe", ":", "::", ":\u00e9:", "a" * 100000, "%" * 5000, "%C3%A9",
                 "-----BEGIN CERTIFICATE-----\u00e9-----END CERTIFICATE-----"]:
        assert call({"HTTP_AUTHORIZATION": "Bearer " + bound, "HTTP_X_CLIENT_CERT": cert}) == "401"
    for cnf in [5, "x", [], {"jkt": 5}, {"jkt": "\u00e9"}, {"x5t#S256": 5}, {"x5t#S256": "\u00e9"},
                {"x5t#S256": ""}]:
        token = iss.mint(reference=True, claims={"cnf": cnf})
        for scheme in ("Bearer ", "DPoP "):
            assert call({"HTTP_AUTHORIZATION": scheme + token, "HTTP_DPOP": key.proof("GET", URL, token)},
                        extra={"HTTP_X_CLIENT_CERT": "\u00e9"}) == "401"


@pytest.mark.parametrize("body", [
    b'{"active":true,"scope":5}', b'{"active":true,"exp":"x"}', b'{"active":true,"aud":[1]}',
    b'{"active":true,"sub":{}}', b'[]', b'{"active":true,"iss":5}', b'{"active":true,"scope":"a\\u0000b"}',
    b'{"active":true,"exp":1e308}', b'{"active":true, "active":false}',
    b'{"active":true,"token_type":5}', b'{"active":true,"scp":[5]}', b'{"active":true,"cnf":{"jkt":["a"]}}',
    b'{"active":true,"cnf":"x"}', b'{"active":true,"iat":1e400}', b'{"active":' + b'[' * 50000,
])
def test_odd_introspection_answers_are_401_or_503(rig, body):
    iss, _v, call = rig
    key = DPoPKey("ES256")
    iss.set_fault("introspection", body=body)
    token = "opaqueTokenValue"
    for scheme in ("Bearer ", "DPoP "):
        status = call({"HTTP_AUTHORIZATION": scheme + token, "HTTP_DPOP": key.proof("GET", URL, token)})
        assert status in ("401", "503")


def test_garbage_in_redis_is_never_believed_nor_a_500(rig, redis_server):
    import redis

    iss, v, call = rig
    token = iss.mint(reference=True)
    assert call({"HTTP_AUTHORIZATION": "Bearer " + token}) == "200"
    raw = redis.Redis.from_url(redis_server.url)
    keys = raw.keys("*")
    assert keys
    iss.revoke(token)
    for key in keys:
        for junk in [b"\x00", b"x." * 40000, b"{}", b'a.{"v":1}', b"\xff" * 100]:
            raw.set(key, junk)
            v.introspector.clear_cache()
            # the entry is ignored and the endpoint asked: the token is revoked
            assert call({"HTTP_AUTHORIZATION": "Bearer " + token}) == "401"
    raw.close()
