"""The development provider opens discovery, JWKS and the token endpoint to
browser clients of any origin (CORS without credentials), as providers do
for public clients such as Swagger UI's authorization code + PKCE; its
other endpoints stay closed to cross-origin reads."""

from __future__ import annotations

import urllib.error
import urllib.request


def fetch(url, method="GET", headers=None, data=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def test_cors_on_discovery_jwks_and_token_only(issuer):
    origin = {"Origin": "http://127.0.0.1:8000"}
    for path in ("/.well-known/openid-configuration", "/jwks"):
        status, headers = fetch(issuer.issuer + path, headers=origin)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in headers
    status, headers = fetch(issuer.issuer + "/token", "POST", origin, b"grant_type=x")
    assert status in (400, 401) and headers["Access-Control-Allow-Origin"] == "*"  # errors readable too
    status, headers = fetch(issuer.issuer + "/token", "OPTIONS",
                            {**origin, "Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "content-type, x-requested-with"})
    assert status == 204 and headers["Access-Control-Allow-Methods"] == "POST"
    assert "X-Requested-With" in headers["Access-Control-Allow-Headers"]
    # introspection and userinfo: no CORS, no preflight answer
    status, headers = fetch(issuer.issuer + "/introspect", "POST", origin, b"token=x")
    assert "Access-Control-Allow-Origin" not in headers
    status, _ = fetch(issuer.issuer + "/introspect", "OPTIONS", {**origin, "Access-Control-Request-Method": "POST"})
    assert status == 404
