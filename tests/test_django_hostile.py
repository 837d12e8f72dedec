"""The hostile inputs of tests/test_wsgi_hostile.py through the Django stack
(the middleware, a decorated view, a DRF view with OIDCAuthentication +
HasScope): DPoP allowed, certificate binding through a proxy header,
reference tokens introspected with a real Redis as the shared cache.  Odd
headers, proofs, hosts, paths, methods, certificates, cnf values and odd
introspection answers each end as 200/400/401/403/404/503: never an
exception (Django's test client re-raises one) and never a 500."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("rest_framework")

import djangoproj  # noqa: E402

djangoproj.setup()

from django.test import Client, override_settings  # noqa: E402

from hostile_inputs import dpop_authorizations, dpop_proofs  # noqa: E402
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, DPoPKey  # noqa: E402

ALLOWED = {200, 400, 401, 403, 404, 503}
ROUTES = ("/token", "/drf/contacts")


def _wsgi_text(value):
    """A str as a WSGI server would put it in the environ: latin-1
    characters (a lone surrogate is the byte it escapes, any other
    character its UTF-8 bytes)."""
    try:
        return value.encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("latin-1")


@pytest.fixture
def rig(make_issuer, redis_server):
    iss = make_issuer(algs=("RS256",))
    with djangoproj.guard_settings(iss, OIDC_GUARD_INTROSPECTION_CLIENT_ID=INTROSPECTION_CLIENT_ID,
                                   OIDC_GUARD_INTROSPECTION_CLIENT_SECRET=INTROSPECTION_CLIENT_SECRET,
                                   OIDC_GUARD_SHARED_CACHE=redis_server.url,
                                   OIDC_GUARD_CLIENT_CERT_HEADER="X-Client-Cert",
                                   MIDDLEWARE=["oidc_guard.django.BearerMiddleware"]):
        client = Client()

        def call(headers, method="GET", route="/token", path=None):
            environ = {key: _wsgi_text(value) for key, value in headers.items()}
            environ.setdefault("HTTP_HOST", "api.test")
            if path is not None:
                environ["PATH_INFO"] = _wsgi_text(path)
            response = client.generic(_wsgi_text(method) or "GET", route, **environ)
            assert response.status_code in ALLOWED, (headers, response.status_code, response.content[:200])
            if response.status_code in (400, 401, 403, 503):
                assert response.json()["error"], response.content  # the JSON body every refusal has
            return response.status_code

        yield iss, call


def test_hostile_dpop_headers_and_proofs(rig):
    iss, call = rig
    key = DPoPKey("ES256")
    ref = iss.mint(reference=True, claims={"cnf": key.cnf}, scope="contacts")
    for route in ROUTES:
        url = "http://api.test" + route
        assert call({"HTTP_AUTHORIZATION": "DPoP " + ref, "HTTP_DPOP": key.proof("GET", url, ref)},
                    route=route) == 200
        assert call({"HTTP_AUTHORIZATION": "Bearer " + ref}, route=route) == 401  # bound token as Bearer
    url = "http://api.test/drf/contacts"
    auths = dpop_authorizations(ref)
    proofs = dpop_proofs(key, url, ref)
    for auth, proof in itertools.product(auths + ["DPoP " + ref], proofs):
        headers = {"HTTP_AUTHORIZATION": auth}
        if proof is not None:
            headers["HTTP_DPOP"] = proof
        status = call(headers, route="/drf/contacts")
        assert status in (400, 401) or (auth == "DPoP " + ref and status == 200), (auth[:20], (proof or "")[-40:])
    good = {"HTTP_AUTHORIZATION": "DPoP " + ref}
    # Hosts Django refuses (ALLOWED_HOSTS, RFC 1034 syntax): no proof can
    # name them, so 401 (or Django's own 400), never a 500.
    for host in ["a b", "h:99999", "[::1", "\u00e9", "\x00", "h:-1", "x" * 10000, "user@h", "evil.example"]:
        for route in ROUTES:
            proof = key.proof("GET", "http://api.test" + route, ref)
            assert call(dict(good, HTTP_DPOP=proof, HTTP_HOST=host), route=route) in (400, 401)
    for path in ["/\udcff", "/\u00e9", "/" + "a" * 10000, "", "/..//./"]:
        call(dict(good, HTTP_DPOP=key.proof("GET", url, ref)), path=path)
    for method in ["\u00e9", "X" * 1000, "POST"]:
        assert call(dict(good, HTTP_DPOP=key.proof("GET", url, ref)), method=method,
                    route="/drf/contacts") in (401, 405)


def test_hostile_certificates_and_cnf_values_are_401(rig):
    iss, call = rig
    key = DPoPKey("ES256")
    bound = iss.mint(reference=True, claims={"cnf": {"x5t#S256": "abc"}}, scope="contacts")
    for route in ROUTES:
        for cert in ["", "\u00e9", "%zz", "%ff%fe", ":", "::", ":\u00e9:", "a" * 100000, "%" * 5000, "%C3%A9",
                     "-----BEGIN CERTIFICATE-----\u00e9-----END CERTIFICATE-----"]:
            assert call({"HTTP_AUTHORIZATION": "Bearer " + bound, "HTTP_X_CLIENT_CERT": cert}, route=route) == 401
    for cnf in [5, "x", [], {"jkt": 5}, {"jkt": "\u00e9"}, {"x5t#S256": 5}, {"x5t#S256": "\u00e9"},
                {"x5t#S256": ""}]:
        token = iss.mint(reference=True, claims={"cnf": cnf}, scope="contacts")
        for scheme, route in itertools.product(("Bearer ", "DPoP "), ROUTES):
            proof = key.proof("GET", "http://api.test" + route, token)
            assert call({"HTTP_AUTHORIZATION": scheme + token, "HTTP_DPOP": proof, "HTTP_X_CLIENT_CERT": "\u00e9"},
                        route=route) == 401


@pytest.mark.parametrize("body", [
    b'{"active":true,"scope":5}', b'{"active":true,"exp":"x"}', b'{"active":true,"aud":[1]}',
    b'{"active":true,"sub":{}}', b'[]', b'{"active":true,"iss":5}', b'{"active":true,"scope":"a\\u0000b"}',
    b'{"active":true,"exp":1e308}', b'{"active":true, "active":false}',
    b'{"active":true,"token_type":5}', b'{"active":true,"scp":[5]}', b'{"active":true,"cnf":{"jkt":["a"]}}',
    b'{"active":true,"cnf":"x"}', b'{"active":true,"iat":1e400}', b'{"active":' + b'[' * 50000,
])
def test_odd_introspection_answers_are_401_or_503(rig, body):
    iss, call = rig
    key = DPoPKey("ES256")
    iss.set_fault("introspection", body=body)
    token = "opaqueTokenValue"
    for scheme, route in itertools.product(("Bearer ", "DPoP "), ROUTES):
        proof = key.proof("GET", "http://api.test" + route, token)
        assert call({"HTTP_AUTHORIZATION": scheme + token, "HTTP_DPOP": proof}, route=route) in (401, 503)


def test_provider_and_redis_down_are_503(rig, redis_server):
    iss, call = rig
    token = iss.mint(reference=True, scope="contacts")
    iss.stop()
    for route in ROUTES:
        assert call({"HTTP_AUTHORIZATION": "Bearer " + token}, route=route) == 503


def test_form_and_query_tokens_when_enabled(rig):
    iss, call = rig
    with override_settings(OIDC_GUARD_ACCEPT_FORM=True, OIDC_GUARD_ACCEPT_QUERY=True):
        token = iss.mint(scope="contacts")
        client = Client()
        ok = client.post("/token", data="access_token=" + token, content_type="application/x-www-form-urlencoded",
                         HTTP_HOST="api.test")
        assert ok.status_code == 200, ok.content
        twice = client.post("/token?access_token=" + token, data="access_token=" + token,
                            content_type="application/x-www-form-urlencoded", HTTP_HOST="api.test")
        assert twice.status_code == 400
        huge = client.post("/token", data="access_token=" + "a" * (2 * 1024 * 1024),
                           content_type="application/x-www-form-urlencoded", HTTP_HOST="api.test")
        assert huge.status_code in (400, 401)
