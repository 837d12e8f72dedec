"""Tests for oidc_guard.testing: the LocalIssuer test/dev OpenID Provider.

Everything goes over real HTTP (urllib) to the issuer's loopback server, and
every signature is checked with PyJWT against the JWKS the server publishes,
so the issuer is verified by code that is not its own.
"""

import base64
import hashlib
import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest

from oidc_guard.testing import (
    OMIT,
    SUPPORTED_ALGS,
    LocalIssuer,
    forge_token,
    hmac_token,
    sign_raw,
    token_hash,
)

SPA_REDIRECT = "http://127.0.0.1:8080/"

# An IdentityServer v3 implicit-flow access token from the project's seed
# notes (long expired; only its bytes matter) and the at_hash that
# IdentityServer put in the id_token issued with it (RS256).
IDSRV3_ACCESS_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImQ2MmJhM2Y5MzJmZjQzNDNmNjI1ZDExNzk2YTIwZThhIiwidHlwIjoiSldUIn0.eyJu"
    "YmYiOjE1MDY1Mjk4MDcsImV4cCI6MTUwNjUzMzQwNywiaXNzIjoiaHR0cHM6Ly9wb2NzaWRzdnIuYXp1cmV3ZWJzaXRlcy5u"
    "ZXQiLCJhdWQiOlsiaHR0cHM6Ly9wb2NzaWRzdnIuYXp1cmV3ZWJzaXRlcy5uZXQvcmVzb3VyY2VzIiwiY29udGFjdHMiLCJ3"
    "dGUiLCJjb29yZGluYXRlIl0sImNsaWVudF9pZCI6IkNvb3JkaW5hdGUiLCJzdWIiOiIxMCIsImF1dGhfdGltZSI6MTUwNjUy"
    "OTgwNywiaWRwIjoibG9jYWwiLCJzY29wZSI6WyJwcm9maWxlIiwib3BlbmlkIiwiY29udGFjdHMiLCJ3dGUiLCJjb29yZGlu"
    "YXRlIl0sImFtciI6WyJwd2QiXX0.egj20ztZ1RKRR52el9nF1lTNcexuE6uu_YWC6OF6roulhhxh0DZvKP4TZlVu8dXirPCu"
    "AMNEkIWx2Hm5JFxzzR7RHoRkMwu0QhP04D9rqUNnKjYPigrrxxBj9NrjX3EpW70SmvO1We0TkDjkqN1O5qK2c62WXZWk6aN3"
    "NaFpZ1uXmwCuSpDpUGQY19LN_ey6c2RS_9Cb2WYDCU9hz6ZBAsVaPfUERVFxpNNAbprUL7o--WH7Xjzd25PheKrzspO184Qe"
    "VGCGk5Lg1N7ERMlFfu1anwJ3Xet8qn9m2ufWMW3RZJzwKI3JRVtaao6dVb2mrdM5-ZieVAiWGfnYHdIdqQ"
)
IDSRV3_AT_HASH = "HweVfNnoyiQGRm_SbzMzwg"


# ---------------------------------------------------------------- helpers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # surface 3xx to the test instead of following it


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method, url, *, form=None, headers=None, timeout=5):
    """(status, headers, body bytes) of one real HTTP request."""
    data = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode("ascii")
        all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_header(token):
    """The JOSE header, decoded here (PyJWT refuses unknown crit)."""
    return json.loads(b64decode(token.split(".")[0]))


def get_json(url):
    status, headers, body = http("GET", url)
    assert status == 200, body
    return json.loads(body), headers


def served_key(issuer, kid):
    """The public key for kid, taken from the JWKS fetched over HTTP."""
    jwks, _ = get_json(issuer.jwks_uri)
    matches = [k for k in jwks["keys"] if k["kid"] == kid]
    assert len(matches) == 1, jwks
    return jwt.PyJWK(matches[0])


def verify(issuer, token, **kwargs):
    """Verify with PyJWT against the served JWKS; returns the payload."""
    header = jwt.get_unverified_header(token)
    key = served_key(issuer, header["kid"])
    kwargs.setdefault("audience", "api://contacts")
    return jwt.decode(token, key.key, algorithms=[header["alg"]], issuer=issuer.issuer, **kwargs)


def independent_half_hash(value, alg):
    """at_hash/c_hash computed here, without oidc_guard.testing."""
    name = {"256": "sha256", "384": "sha384", "512": "sha512"}.get(alg[-3:], "sha512")  # EdDSA: SHA-512
    digest = getattr(hashlib, name)(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def fragment_of(location):
    parts = urllib.parse.urlsplit(location)
    return dict(urllib.parse.parse_qsl(parts.fragment, keep_blank_values=True))


def authorize_params(**changes):
    params = {
        "response_type": "id_token token",
        "client_id": "spa",
        "redirect_uri": SPA_REDIRECT,
        "scope": "openid profile contacts",
        "state": "st-123",
        "nonce": "n-456",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


@pytest.fixture
def issuer():
    with LocalIssuer() as iss:
        yield iss


# --------------------------------------------------------- construction


def test_refuses_non_loopback_hosts():
    for host in ("0.0.0.0", "10.1.2.3", "example.com", "", "::"):
        with pytest.raises(ValueError, match="loopback"):
            LocalIssuer(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com", "", "127.1", 2130706433])
def test_start_refuses_a_non_loopback_host_set_after_construction(host):
    # The constructor checks host, but it is a plain attribute: start()
    # must check it again, or ``iss.host = "0.0.0.0"`` listens on every
    # interface.
    iss = LocalIssuer()
    iss.host = host
    with pytest.raises(ValueError, match="loopback"):
        iss.start()
    assert not iss.running


def test_every_start_warns_that_it_is_a_development_provider(caplog):
    iss = LocalIssuer()
    with caplog.at_level(logging.WARNING, logger="oidc_guard.testing"):
        iss.start()
        iss.stop()
        iss.start()
        iss.stop()
    warnings = [r for r in caplog.records if r.name == "oidc_guard.testing" and r.levelno == logging.WARNING]
    assert len(warnings) == 2
    for record in warnings:
        text = record.getMessage()
        assert "development provider" in text and "never for production" in text and iss.issuer in text


def test_not_collected_by_pytest():
    assert LocalIssuer.__test__ is False


def test_import_is_cheap_and_flask_free():
    code = (
        "import sys, oidc_guard.testing as t\n"
        "assert 'flask' not in sys.modules, 'flask imported'\n"
        "assert 'pytest' not in sys.modules, 'pytest imported'\n"
        "assert t._KEY_POOL == {}, 'keys generated at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_issuer_url_before_start_is_an_error():
    iss = LocalIssuer()
    with pytest.raises(RuntimeError):
        iss.issuer


def test_issuer_path():
    with LocalIssuer(issuer_path="/tenant-a") as iss:
        assert iss.issuer.endswith("/tenant-a")
        doc, _ = get_json(iss.discovery_url)
        assert doc["issuer"] == iss.issuer
        assert doc["jwks_uri"] == iss.issuer + "/jwks"
        status, _, _ = http("GET", iss.issuer.rsplit("/", 1)[0] + "/jwks")
        assert status == 404


# ---------------------------------------------------- discovery and JWKS


def test_discovery_document(issuer):
    doc, headers = get_json(issuer.discovery_url)
    assert headers["Content-Type"] == "application/json"
    assert doc["issuer"] == issuer.issuer
    assert issuer.issuer.startswith("http://127.0.0.1:")
    assert doc["jwks_uri"] == issuer.jwks_uri
    assert doc["authorization_endpoint"] == issuer.issuer + "/authorize"
    assert doc["token_endpoint"] == issuer.issuer + "/token"
    for rt in ("id_token token", "id_token", "code"):
        assert rt in doc["response_types_supported"]
    assert "client_credentials" in doc["grant_types_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "contacts", "wte", "coordinate"} <= set(doc["scopes_supported"])
    assert doc["subject_types_supported"] == ["public"]
    assert issuer.fetch_counts["discovery"] == 1


def test_discovery_overrides_merge_and_omit(issuer):
    issuer.discovery_overrides["issuer"] = "https://evil.example"
    issuer.discovery_overrides["jwks_uri"] = OMIT
    issuer.discovery_overrides["x_extra"] = [1, 2]
    doc, _ = get_json(issuer.discovery_url)
    assert doc["issuer"] == "https://evil.example"
    assert "jwks_uri" not in doc
    assert doc["x_extra"] == [1, 2]
    assert doc["token_endpoint"] == issuer.token_endpoint


def test_jwks_document_and_cache_control():
    with LocalIssuer(algs=SUPPORTED_ALGS) as iss:
        jwks, headers = get_json(iss.jwks_uri)
        assert headers["Cache-Control"] == "max-age=3600"
        by_alg = {k["alg"]: k for k in jwks["keys"]}
        assert set(by_alg) == set(SUPPORTED_ALGS)
        assert {k["kid"] for k in jwks["keys"]} == set(iss.kids)
        for alg, jwk in by_alg.items():
            assert jwk["use"] == "sig"
            assert "d" not in jwk and "p" not in jwk, "private key material published"
        assert by_alg["RS256"]["kty"] == "RSA" and by_alg["PS512"]["kty"] == "RSA"
        assert (by_alg["ES256"]["kty"], by_alg["ES256"]["crv"]) == ("EC", "P-256")
        assert by_alg["ES384"]["crv"] == "P-384"
        assert by_alg["ES512"]["crv"] == "P-521"
        assert len(base64.urlsafe_b64decode(by_alg["ES512"]["x"] + "==")) == 66  # RFC 7518 6.2.1.2
        assert (by_alg["EdDSA"]["kty"], by_alg["EdDSA"]["crv"]) == ("OKP", "Ed25519")

        iss.jwks_max_age = 120
        _, headers = get_json(iss.jwks_uri)
        assert headers["Cache-Control"] == "max-age=120"
        iss.jwks_max_age = None
        _, headers = get_json(iss.jwks_uri)
        assert headers.get("Cache-Control") is None
        assert iss.fetch_counts["jwks"] == 3


def test_jwk_overrides_and_extra_keys(issuer):
    kid = issuer.signing_kid
    issuer.jwk_overrides[kid] = {"use": "enc", "alg": OMIT}
    issuer.extra_jwks.append({"kty": "oct", "kid": "junk", "k": "AAAA"})
    jwks, _ = get_json(issuer.jwks_uri)
    mine = [k for k in jwks["keys"] if k["kid"] == kid][0]
    assert mine["use"] == "enc" and "alg" not in mine
    assert {"kty": "oct", "kid": "junk", "k": "AAAA"} in jwks["keys"]


def test_unknown_path_and_wrong_method(issuer):
    assert http("GET", issuer.url("/nope"))[0] == 404
    assert http("POST", issuer.jwks_uri, form={})[0] == 405


def test_routing_table_methods_counters_and_head(issuer):
    """The ENDPOINTS table: discovery/JWKS refuse POST with 405 + Allow and
    do not count it; other endpoints answer a method they do not serve with
    404; HEAD is GET without a body and is recorded as GET."""
    issuer.reset_counts()
    status, headers, _ = http("POST", issuer.discovery_url, form={})
    assert (status, headers["Allow"]) == (405, "GET")
    assert http("GET", issuer.token_endpoint)[0] == 404
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}
    status, headers, body = http("HEAD", issuer.jwks_uri)
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert issuer.fetch_counts["jwks"] == 1
    assert list(issuer.requests)[-1] == ("GET", "/jwks")
    assert http("POST", issuer.userinfo_endpoint, form={})[0] == 401
    assert issuer.fetch_counts["userinfo"] == 1


# ------------------------------------------------------ fault injection


def test_fault_status_and_default_error_body(issuer):
    issuer.set_fault("jwks", status=503)
    status, headers, body = http("GET", issuer.jwks_uri)
    assert status == 503
    assert json.loads(body) == {"error": "server_error"}
    # the other endpoint is unaffected
    assert http("GET", issuer.discovery_url)[0] == 200
    issuer.clear_faults()
    assert http("GET", issuer.jwks_uri)[0] == 200
    assert issuer.fetch_counts == {"discovery": 1, "jwks": 2}


def test_fault_raw_body_content_type_and_headers(issuer):
    issuer.set_fault("discovery", body=b"<html>not json", content_type="text/html",
                     headers={"Retry-After": "7"})
    status, headers, body = http("GET", issuer.discovery_url)
    assert (status, body) == (200, b"<html>not json")
    assert headers["Content-Type"] == "text/html"
    assert headers["Retry-After"] == "7"
    issuer.set_fault("discovery", status=200, body={"issuer": "x"})
    assert json.loads(http("GET", issuer.discovery_url)[2]) == {"issuer": "x"}
    issuer.clear_faults("discovery")
    assert json.loads(http("GET", issuer.discovery_url)[2])["issuer"] == issuer.issuer


def test_fault_delay_slows_the_normal_answer(issuer):
    issuer.set_fault("jwks", delay=0.4)
    started = time.monotonic()
    jwks, _ = get_json(issuer.jwks_uri)
    assert time.monotonic() - started >= 0.4
    assert jwks["keys"][0]["kid"] == issuer.signing_kid
    issuer.clear_faults()
    started = time.monotonic()
    get_json(issuer.jwks_uri)
    assert time.monotonic() - started < 0.4


def test_fault_delay_triggers_client_timeout(issuer):
    issuer.set_fault("discovery", delay=2)
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        http("GET", issuer.discovery_url, timeout=0.2)


def test_fetch_counts_are_thread_safe(issuer):
    import threading

    def fetch_five():
        for _ in range(5):
            assert http("GET", issuer.jwks_uri)[0] == 200

    threads = [threading.Thread(target=fetch_five) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert issuer.fetch_counts["jwks"] == 50
    issuer.reset_counts()
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}


def test_fault_kind_is_checked(issuer):
    with pytest.raises(ValueError):
        issuer.set_fault("token", status=500)


def test_stop_refuses_connections_and_start_reuses_the_port(issuer):
    url = issuer.jwks_uri
    assert http("GET", url)[0] == 200
    issuer.stop()
    assert not issuer.running
    with pytest.raises(urllib.error.URLError) as info:
        http("GET", url)
    assert isinstance(info.value.reason, ConnectionRefusedError)
    issuer.start()
    assert issuer.jwks_uri == url
    assert http("GET", url)[0] == 200
    # and once more, for outage-and-recovery loops
    issuer.stop()
    issuer.start()
    assert http("GET", issuer.discovery_url)[0] == 200


def test_stop_during_a_delayed_answer_drops_it(issuer):
    import threading

    issuer.set_fault("jwks", delay=10)
    outcome = {}

    def fetch():
        try:
            outcome["result"] = http("GET", issuer.jwks_uri, timeout=8)
        except Exception as exc:  # the connection is closed without an answer
            outcome["error"] = exc

    thread = threading.Thread(target=fetch)
    thread.start()
    deadline = time.monotonic() + 5
    while issuer.fetch_counts["jwks"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    issuer.stop()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert "error" in outcome, outcome


# -------------------------------------------------------------- minting


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_minted_tokens_verify_against_served_jwks(alg):
    with LocalIssuer(algs=(alg,)) as iss:
        token = iss.mint()
        header = jwt.get_unverified_header(token)
        assert header == {"alg": alg, "kid": iss.signing_kid, "typ": "at+jwt"}
        claims = verify(iss, token)
        assert claims["iss"] == iss.issuer
        assert claims["sub"] == "alice"
        assert claims["aud"] == "api://contacts"
        assert claims["scope"] == "contacts"
        assert claims["client_id"] == "spa"
        assert claims["iat"] == claims["nbf"]
        assert claims["exp"] - claims["iat"] == 3600
        assert len(claims["jti"]) >= 16
        # negative control: the same check rejects a tampered payload
        head, _, sig = token.split(".")
        forged_payload = base64.urlsafe_b64encode(
            json.dumps(dict(claims, sub="mallory")).encode()).rstrip(b"=").decode()
        with pytest.raises(jwt.InvalidSignatureError):
            verify(iss, f"{head}.{forged_payload}.{sig}")


def test_jti_is_unique(issuer):
    jtis = {jwt.decode(issuer.mint(), options={"verify_signature": False})["jti"] for _ in range(20)}
    assert len(jtis) == 20


def test_mint_options(issuer):
    token = issuer.mint(
        {"extra": 1, "client_id": "other"},
        scope=["profile", "contacts"],
        audience=["a", "b"],
        omit=("jti", "nbf"),
        expires_in=60,
        now=1_000_000,
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == ["profile", "contacts"]  # IdentityServer v3 shape
    assert claims["aud"] == ["a", "b"]
    assert claims["extra"] == 1 and claims["client_id"] == "other"
    assert "jti" not in claims and "nbf" not in claims
    assert (claims["iat"], claims["exp"]) == (1_000_000, 1_000_060)

    client = jwt.decode(issuer.mint(subject=None, scope=None, claims={"iss": OMIT}),
                        options={"verify_signature": False})
    assert "sub" not in client and "scope" not in client and "iss" not in client
    assert "exp" not in jwt.decode(issuer.mint(expires_in=None), options={"verify_signature": False})
    wrong_iss = jwt.decode(issuer.mint(issuer="https://other"), options={"verify_signature": False})
    assert wrong_iss["iss"] == "https://other"


def test_mint_header_overrides_for_attacks(issuer):
    attacker_jwk = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
    token = issuer.mint(header={"jwk": attacker_jwk, "kid": OMIT, "crit": ["x-unknown"]}, typ=None)
    assert raw_header(token) == {"alg": "RS256", "jwk": attacker_jwk, "crit": ["x-unknown"]}
    # Only the header differs: the signature is still the issuer's real key.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = served_key(issuer, issuer.signing_kid)
    signing_input, _, signature = token.rpartition(".")
    key.key.verify(b64decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(Exception):
        key.key.verify(b64decode(signature), signing_input.encode() + b"x", padding.PKCS1v15(), hashes.SHA256())


def test_header_alg_lies_but_signature_uses_the_keys_alg(issuer):
    token = issuer.mint(header={"alg": "RS512"})
    assert jwt.get_unverified_header(token)["alg"] == "RS512"
    key = served_key(issuer, issuer.signing_kid)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, key.key, algorithms=["RS512"], audience="api://contacts")


def test_forge_and_hmac_helpers(issuer):
    claims = {"iss": issuer.issuer, "sub": "x"}
    none_token = forge_token({"alg": "none"}, claims)
    assert none_token.endswith(".")
    assert jwt.decode(none_token, options={"verify_signature": False}) == claims
    pem = issuer.public_key_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    hs = hmac_token(claims, pem, header={"kid": issuer.signing_kid})
    assert jwt.get_unverified_header(hs) == {"alg": "HS256", "typ": "JWT", "kid": issuer.signing_kid}
    signing_input, _, sig = hs.rpartition(".")
    import hmac as _hmac

    expected = _hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == sig


def test_kid_and_alg_choose_the_key():
    with LocalIssuer(algs=("RS256", "ES256")) as iss:
        rs_kid, es_kid = iss.kids
        assert iss.signing_kid == rs_kid
        assert jwt.get_unverified_header(iss.mint(kid=es_kid))["alg"] == "ES256"
        assert jwt.get_unverified_header(iss.mint(alg="ES256"))["kid"] == es_kid
        # alg= adds (and publishes) a key when there is none for that alg
        token = iss.mint(alg="EdDSA")
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "EdDSA" and header["kid"] not in (rs_kid, es_kid)
        assert verify(iss, token)["sub"] == "alice"
        with pytest.raises(ValueError):
            iss.mint(kid=rs_kid, alg="ES256")
        with pytest.raises(KeyError):
            iss.mint(kid="nope")
        with pytest.raises(ValueError):
            iss.add_key("HS256")


def test_rotate_and_remove(issuer):
    old = issuer.signing_kid
    new = issuer.rotate()
    assert new != old and issuer.signing_kid == new
    jwks, _ = get_json(issuer.jwks_uri)
    assert {k["kid"] for k in jwks["keys"]} == {old, new}
    assert jwt.get_unverified_header(issuer.mint())["kid"] == new
    # keys within one issuer are distinct material, not only distinct kids
    assert issuer.public_jwk(old)["n"] != issuer.public_jwk(new)["n"]
    issuer.remove_key(old)
    jwks, _ = get_json(issuer.jwks_uri)
    assert [k["kid"] for k in jwks["keys"]] == [new]
    issuer.remove_key(new)
    assert issuer.signing_kid is None
    assert get_json(issuer.jwks_uri)[0] == {"keys": []}


def test_unpublished_key_signs_but_is_not_served(issuer):
    hidden = issuer.add_key("RS256", kid="hidden", publish=False)
    assert hidden == "hidden"
    assert issuer.signing_kid != hidden
    jwks, _ = get_json(issuer.jwks_uri)
    assert "hidden" not in {k["kid"] for k in jwks["keys"]}
    assert jwt.get_unverified_header(issuer.mint(kid="hidden"))["kid"] == "hidden"
    issuer.publish("hidden")
    assert verify(issuer, issuer.mint(kid="hidden"))["sub"] == "alice"
    with pytest.raises(ValueError):
        issuer.add_key("RS256", kid="hidden")


def test_unpublished_key_still_signs_but_its_tokens_are_refused(issuer):
    from oidc_guard import InvalidToken, TokenValidator

    kid = issuer.add_key("RS256", kid="retiring")
    token = issuer.mint(kid=kid)
    v = TokenValidator(issuer.issuer, audience="api://contacts")
    assert v.validate_access_token(token).subject == "alice"
    issuer.unpublish(kid)
    jwks, _ = get_json(issuer.jwks_uri)
    assert kid not in {k["kid"] for k in jwks["keys"]}
    assert jwt.get_unverified_header(issuer.mint(kid=kid))["kid"] == kid  # still signs
    # A validator that fetches the JWKS now does not know the kid.
    with pytest.raises(InvalidToken, match="kid 'retiring' not in the issuer's JWKS"):
        TokenValidator(issuer.issuer, audience="api://contacts").validate_access_token(issuer.mint(kid=kid))
    # The first validator learns it at its next JWKS fetch (a new kid makes
    # it refetch): the verified-token cache entry dies with the key.
    assert v.validate_access_token(issuer.mint(kid=issuer.rotate())).subject == "alice"
    with pytest.raises(InvalidToken, match="kid 'retiring' not in the issuer's JWKS"):
        v.validate_access_token(token)
    issuer.publish(kid)  # and back
    assert verify(issuer, token)["sub"] == "alice"


def test_key_pool_is_shared_between_issuers_unless_fresh_keys():
    a, b, c = LocalIssuer(), LocalIssuer(), LocalIssuer(fresh_keys=True)
    assert a.signing_kid != b.signing_kid
    assert a.public_jwk(a.signing_kid)["n"] == b.public_jwk(b.signing_kid)["n"]  # documented sharing
    assert c.public_jwk(c.signing_kid)["n"] != a.public_jwk(a.signing_kid)["n"]


# ------------------------------------------------------------- id_tokens


def test_token_hash_matches_identityserver_v3():
    assert token_hash(IDSRV3_ACCESS_TOKEN, "RS256") == IDSRV3_AT_HASH


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES512", "EdDSA"])
def test_id_token_hashes(alg):
    with LocalIssuer(algs=(alg,)) as iss:
        access_token = iss.mint()
        code = "SplxlOBeZQQYbYS6WxSbIA"
        id_token = iss.mint_id_token("spa", nonce="n-1", access_token=access_token, code=code,
                                     auth_time=1234, extra={"azp": "spa"})
        assert jwt.get_unverified_header(id_token)["typ"] == "JWT"
        claims = verify(iss, id_token, audience="spa")
        assert claims["at_hash"] == independent_half_hash(access_token, alg)
        assert claims["c_hash"] == independent_half_hash(code, alg)
        assert claims["at_hash"] != independent_half_hash(access_token + "x", alg)
        assert (claims["nonce"], claims["sub"], claims["auth_time"], claims["azp"]) == ("n-1", "alice", 1234, "spa")
        assert claims["exp"] > claims["iat"]


def test_id_token_without_optional_claims(issuer):
    claims = jwt.decode(issuer.mint_id_token("spa", extra={"sub": OMIT}), options={"verify_signature": False})
    for name in ("nonce", "at_hash", "c_hash", "auth_time", "sub"):
        assert name not in claims
    assert claims["aud"] == "spa"


def test_id_token_hash_uses_alg_of_chosen_key():
    with LocalIssuer(algs=("RS256", "ES384")) as iss:
        at = iss.mint()
        claims = jwt.decode(iss.mint_id_token("spa", access_token=at, alg="ES384"),
                            options={"verify_signature": False})
        assert claims["at_hash"] == independent_half_hash(at, "ES384")
        assert len(base64.urlsafe_b64decode(claims["at_hash"] + "==")) == 24


# ----------------------------------------------------------- pytest plugin


def test_plugin_fixture(oidc_issuer):
    assert isinstance(oidc_issuer, LocalIssuer)
    assert oidc_issuer.running
    doc, _ = get_json(oidc_issuer.discovery_url)
    assert doc["issuer"] == oidc_issuer.issuer


@pytest.mark.oidc_issuer(algs=("ES256",), audience="api://other")
def test_plugin_fixture_marker(oidc_issuer):
    assert oidc_issuer.key_alg(oidc_issuer.signing_kid) == "ES256"
    assert verify(oidc_issuer, oidc_issuer.mint(), audience="api://other")["aud"] == "api://other"


def test_plugin_factory(oidc_issuer_factory):
    first = oidc_issuer_factory()
    second = oidc_issuer_factory(algs=("EdDSA",))
    assert first.issuer != second.issuer
    assert http("GET", second.jwks_uri)[0] == 200


def test_plugin_is_loaded_by_entry_point_and_stops_the_issuer(tmp_path):
    """A separate pytest run (entry-point loading, no conftest) proves the
    fixture is registered and that its issuer is stopped after the test."""
    (tmp_path / "test_inner.py").write_text(
        "import urllib.request, urllib.error, pytest\n"
        "seen = {}\n"
        "def test_one(oidc_issuer):\n"
        "    seen['url'] = oidc_issuer.jwks_uri\n"
        "    assert urllib.request.urlopen(seen['url']).status == 200\n"
        "def test_two():\n"
        "    with pytest.raises(urllib.error.URLError):\n"
        "        urllib.request.urlopen(seen['url'], timeout=2)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


# ---------------------------------------------- dev provider: /authorize


def test_authorize_get_shows_dev_login_form(issuer):
    params = authorize_params(state='"><script>alert(1)</script>')
    status, headers, body = http("GET", issuer.authorization_endpoint + "?" + urllib.parse.urlencode(params))
    page = body.decode("utf-8")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "Development only, not for production" in page
    assert 'name="username"' in page and 'name="password"' in page
    assert "<script>" not in page
    assert "&quot;&gt;&lt;script&gt;" in page
    assert headers.get("Location") is None
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def login(issuer, params, username="alice", password="alice"):
    form = dict(params, username=username, password=password)
    return http("POST", issuer.authorization_endpoint, form=form)


def test_authorize_implicit_login_redirects_with_valid_tokens(issuer):
    params = authorize_params(scope="openid profile contacts admin")  # admin is not allowed for spa
    status, headers, body = login(issuer, params)
    assert status == 302, body
    location = headers["Location"]
    assert location.startswith(SPA_REDIRECT + "#")
    frag = fragment_of(location)
    assert frag["state"] == "st-123"
    assert frag["token_type"] == "Bearer"
    assert int(frag["expires_in"]) == 3600
    assert frag["scope"] == "openid profile contacts"

    id_claims = verify(issuer, frag["id_token"], audience="spa")
    assert id_claims["nonce"] == "n-456"
    assert id_claims["sub"] == "alice"
    assert id_claims["at_hash"] == independent_half_hash(frag["access_token"], "RS256")
    assert abs(id_claims["auth_time"] - time.time()) < 60

    at_claims = verify(issuer, frag["access_token"], audience="api://contacts")
    assert at_claims["sub"] == "alice"
    assert at_claims["client_id"] == "spa"
    assert at_claims["scope"] == "openid profile contacts"
    assert jwt.get_unverified_header(frag["access_token"])["typ"] == "at+jwt"


def test_authorize_bob_and_id_token_only(issuer):
    status, headers, _ = login(issuer, authorize_params(response_type="id_token", state=None), "bob", "bob")
    assert status == 302
    frag = fragment_of(headers["Location"])
    assert set(frag) == {"id_token"}
    claims = verify(issuer, frag["id_token"], audience="spa")
    assert claims["sub"] == "bob" and "at_hash" not in claims


def test_authorize_wrong_password_does_not_redirect(issuer):
    status, headers, body = login(issuer, authorize_params(), password="wrong")
    assert status == 200
    assert headers.get("Location") is None
    assert b"Wrong username or password" in body
    assert b"eyJ" not in body  # no token anywhere
    status, headers, _ = login(issuer, authorize_params(), username="mallory", password="")
    assert status == 200 and headers.get("Location") is None


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("changes", [
    {"redirect_uri": "http://127.0.0.1:8080/evil"},
    {"redirect_uri": "http://127.0.0.1:8080"},  # exact match: no trailing-slash leniency
    {"redirect_uri": "https://attacker.example/"},
    {"redirect_uri": None},
    {"client_id": "nobody"},
    {"client_id": None},
])
def test_authorize_bad_client_or_redirect_uri_shows_error_page(issuer, method, changes):
    params = authorize_params(**changes)
    if method == "GET":
        status, headers, body = http("GET", issuer.authorization_endpoint + "?" + urllib.parse.urlencode(params))
    else:
        status, headers, body = login(issuer, params)
    assert status == 400
    assert headers.get("Location") is None
    assert b"eyJ" not in body
    assert b"not registered" in body or b"Unknown client" in body


def test_authorize_error_page_escapes_what_it_echoes(issuer):
    params = authorize_params(client_id="<img src=x onerror=alert(1)>")
    status, _, body = http("GET", issuer.authorization_endpoint + "?" + urllib.parse.urlencode(params))
    assert status == 400
    assert b"<img" not in body
    assert b"&lt;img src=x onerror=alert(1)&gt;" in body


def test_authorize_errors_are_redirected_to_a_registered_uri(issuer):
    cases = [
        ({"nonce": None}, "invalid_request"),  # OIDC Core 3.2.2.1: nonce required
        ({"scope": "contacts"}, "invalid_scope"),  # no openid
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none"}, "login_required"),
    ]
    for changes, error in cases:
        status, headers, body = login(issuer, authorize_params(**changes))
        assert status == 302, (changes, body)
        frag = fragment_of(headers["Location"])
        assert frag["error"] == error, (changes, frag)
        assert frag["state"] == "st-123"
        assert "access_token" not in frag and "id_token" not in frag


def test_authorize_rejects_repeated_parameters(issuer):
    query = urllib.parse.urlencode(authorize_params()) + "&redirect_uri=https%3A%2F%2Fattacker.example%2F"
    status, headers, body = http("GET", issuer.authorization_endpoint + "?" + query)
    assert status == 400 and headers.get("Location") is None


def test_register_client_refuses_fragment(issuer):
    with pytest.raises(ValueError):
        issuer.register_client("x", redirect_uris=["http://127.0.0.1/#frag"])


def test_authorization_code_with_pkce(issuer):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = authorize_params(response_type="code", code_challenge=challenge, code_challenge_method="S256")
    status, headers, _ = login(issuer, params)
    assert status == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert query["state"] == "st-123" and "access_token" not in query
    exchange = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": SPA_REDIRECT,
                "client_id": "spa", "code_verifier": verifier}
    status, _, body = http("POST", issuer.token_endpoint, form=dict(exchange, code_verifier="w" * 50))
    assert (status, json.loads(body)["error"]) == (400, "invalid_grant")
    # the failed attempt consumed the code (single use)
    status, _, body = http("POST", issuer.token_endpoint, form=exchange)
    assert (status, json.loads(body)["error"]) == (400, "invalid_grant")

    status, headers, _ = login(issuer, params)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))["code"]
    status, _, body = http("POST", issuer.token_endpoint, form=dict(exchange, code=code))
    assert status == 200, body
    tokens = json.loads(body)
    id_claims = verify(issuer, tokens["id_token"], audience="spa")
    assert id_claims["nonce"] == "n-456"
    assert verify(issuer, tokens["access_token"])["sub"] == "alice"
    # replay
    status, _, body = http("POST", issuer.token_endpoint, form=dict(exchange, code=code))
    assert status == 400


def test_code_flow_requires_pkce_for_public_client(issuer):
    status, headers, _ = login(issuer, authorize_params(response_type="code"))
    assert status == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert query["error"] == "invalid_request" and "code" not in query


# ---------------------------------------------------- dev provider: /token


def basic(client_id, secret):
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_token_client_credentials_basic(issuer):
    status, headers, body = http("POST", issuer.token_endpoint,
                                 form={"grant_type": "client_credentials", "scope": "wte"},
                                 headers=basic("wte-worker", "wte-secret"))
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store"
    tokens = json.loads(body)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "wte"
    claims = verify(issuer, tokens["access_token"])
    assert "sub" not in claims  # like IdentityServer v3
    assert claims["client_id"] == "wte-worker"
    assert claims["scope"] == "wte"


def test_token_client_credentials_post_and_default_scope(issuer):
    status, _, body = http("POST", issuer.token_endpoint, form={
        "grant_type": "client_credentials", "client_id": "wte-worker", "client_secret": "wte-secret"})
    assert status == 200, body
    assert verify(issuer, json.loads(body)["access_token"])["scope"] == "wte"


def test_token_options_sub_and_scope_list():
    with LocalIssuer(client_token_sub=True, scope_format="list") as iss:
        status, _, body = http("POST", iss.token_endpoint, form={"grant_type": "client_credentials"},
                               headers=basic("wte-worker", "wte-secret"))
        claims = verify(iss, json.loads(body)["access_token"])
        assert claims["sub"] == "wte-worker"
        assert claims["scope"] == ["wte"]


@pytest.mark.parametrize("form,headers,status,error", [
    ({"grant_type": "client_credentials"}, basic("wte-worker", "wrong"), 401, "invalid_client"),
    ({"grant_type": "client_credentials", "client_id": "wte-worker", "client_secret": "wrong"}, {}, 401,
     "invalid_client"),
    ({"grant_type": "client_credentials"}, basic("nobody", "x"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!!"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Bearer abc"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials", "scope": "wte contacts"}, basic("wte-worker", "wte-secret"), 400,
     "invalid_scope"),
    ({"grant_type": "password", "username": "alice", "password": "alice"}, basic("wte-worker", "wte-secret"),
     400, "unsupported_grant_type"),
    ({}, basic("wte-worker", "wte-secret"), 400, "invalid_request"),
    ({"grant_type": "client_credentials", "client_secret": "wte-secret"}, basic("wte-worker", "wte-secret"), 400,
     "invalid_request"),  # two authentication methods at once (RFC 6749 2.3)
    ({"grant_type": "client_credentials", "client_id": "spa"}, {}, 400, "unauthorized_client"),
])
def test_token_errors(issuer, form, headers, status, error):
    got_status, got_headers, body = http("POST", issuer.token_endpoint, form=form, headers=headers)
    document = json.loads(body)
    assert (got_status, document["error"]) == (status, error)
    assert document["error_description"]
    assert "access_token" not in document
    if status == 401:
        assert got_headers["WWW-Authenticate"].startswith("Basic ")


def test_token_endpoint_requires_form_encoding(issuer):
    status, _, body = http("POST", issuer.token_endpoint, headers={"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["error"] == "invalid_request"
    assert issuer.fetch_counts["token"] == 1


# ------------------------------------------------- dev provider: /userinfo


def test_userinfo(issuer):
    status, headers, _ = login(issuer, authorize_params())
    access_token = fragment_of(headers["Location"])["access_token"]
    status, _, body = http("GET", issuer.userinfo_endpoint, headers={"Authorization": "Bearer " + access_token})
    assert status == 200, body
    assert json.loads(body) == {"sub": "alice", "name": "Alice Example"}  # scope profile, not email

    forged = access_token[:-4] + ("AAAA" if not access_token.endswith("AAAA") else "BBBB")
    cases = {
        "none": {},
        "forged": {"Authorization": "Bearer " + forged},
        "expired": {"Authorization": "Bearer " + issuer.mint(expires_in=-60)},
        "client token": {"Authorization": "Bearer " + issuer.mint(subject=None)},
        "other audience": {"Authorization": "Bearer " + issuer.mint(audience="api://x")},
        "alg none": {"Authorization": "Bearer " + forge_token({"alg": "none", "kid": issuer.signing_kid},
                                                              {"sub": "alice", "iss": issuer.issuer})},
    }
    for name, auth in cases.items():
        status, headers, body = http("GET", issuer.userinfo_endpoint, headers=auth)
        assert status == 401, name
        assert headers["WWW-Authenticate"].startswith("Bearer "), name
        assert "sub" not in json.loads(body), name


def test_identityserver3_token_shape():
    import json as _json

    from oidc_guard.testing import b64url_decode

    with LocalIssuer(token_shape="identityserver3") as old:
        token = old.mint(subject=None, scope=["wte"], client_id="wte-worker")
        header, payload = (_json.loads(b64url_decode(part)) for part in token.split(".")[:2])
        assert header["typ"] == "JWT"
        assert payload["aud"] == old.issuer + "/resources" and payload["scope"] == ["wte"]
        assert "sub" not in payload
        # the dev provider's own tokens have the same shape
        assert old.scope_format == "list" and old.client_token_sub is False
        assert old.access_token_typ == "JWT"
        old.audience = "urn:x"
        assert _json.loads(b64url_decode(old.mint().split(".")[1]))["aud"] == "urn:x"
    with LocalIssuer() as new:
        assert new.audience == "api://contacts" and new.access_token_typ == "at+jwt"
    with pytest.raises(ValueError):
        LocalIssuer(token_shape="idsrv4")


# ------------------------------------------- PyJWT signs the issuer's tokens


@pytest.fixture
def pyjwt_calls(monkeypatch):
    """Every PyJWT JWS signature made during the test, as (alg, header)."""
    calls = []
    real_encode = jwt.PyJWS.encode

    def spy(self, payload, key, algorithm=None, headers=None, **kwargs):
        calls.append((algorithm, dict(headers or {})))
        return real_encode(self, payload, key, algorithm=algorithm, headers=headers, **kwargs)

    monkeypatch.setattr(jwt.PyJWS, "encode", spy)
    return calls


def test_minted_tokens_are_signed_by_pyjwt_for_every_alg(pyjwt_calls):
    """LocalIssuer signs with PyJWT, an independent JOSE implementation, so
    the library's verifier is always checked against a second signer."""
    from oidc_guard import TokenValidator

    with LocalIssuer(algs=SUPPORTED_ALGS) as iss:
        validator = TokenValidator(iss.issuer, audience="api://contacts", algorithms=SUPPORTED_ALGS, cache_size=0)
        for alg in SUPPORTED_ALGS:
            del pyjwt_calls[:]
            token = iss.mint(alg=alg, header={"x5t": "a3rMUgMFv9tPclLa6yF3zAkfquE"})
            assert [call[0] for call in pyjwt_calls] == [alg]
            assert validator.validate_access_token(token)["iss"] == iss.issuer
            del pyjwt_calls[:]
            iss.mint_id_token("spa", alg=alg, nonce="n", access_token=token)
            assert [call[0] for call in pyjwt_calls] == [alg]


@pytest.mark.parametrize("alg", ["RS256", "RS512", "EdDSA"])  # deterministic signatures
def test_pyjwt_path_gives_the_same_bytes_as_the_cryptography_signer(issuer, pyjwt_calls, alg):
    claims = {"iss": issuer.issuer, "sub": "alice", "n": 1}
    token = issuer.sign(claims, alg=alg, typ="at+jwt")
    assert pyjwt_calls and pyjwt_calls[-1][0] == alg
    head, payload, _sig = token.split(".")
    kid = raw_header(token)["kid"]
    assert token == sign_raw(issuer.private_key(kid), alg, b64decode(head), b64decode(payload))
    assert b64decode(head) == json.dumps({"alg": alg, "kid": kid, "typ": "at+jwt"}, separators=(",", ":")).encode()


@pytest.mark.parametrize("header", [
    {"alg": "HS256"},                      # an alg other than the key's: PyJWT would switch algorithms
    {"alg": "none"},
    {"crit": ["exp"]},
    {"b64": False},                        # PyJWT would write an RFC 7797 unencoded payload
    {"kid": 7},                            # PyJWT refuses a non-string kid
    {"typ": ""},                           # PyJWT drops an empty typ
    {"jwk": {"kty": "oct"}},
    {"x5c": ["MIIB"]},                     # not a member this issuer writes
])
def test_attack_headers_are_signed_over_exactly_the_bytes_asked_for(issuer, pyjwt_calls, header):
    kid = issuer.signing_kid
    token = issuer.sign({"sub": "x"}, header=header)
    assert pyjwt_calls == []
    expected = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    expected.update(header)
    assert raw_header(token) == expected
    assert list(raw_header(token)) == list(expected)
    # the signature is still the key's own RS256 signature over those bytes
    h, p, _ = token.split(".")
    assert token == sign_raw(issuer.private_key(kid), "RS256", b64decode(h), b64decode(p))


_WITHOUT_PYJWT = """
import sys
sys.modules["jwt"] = None  # PyJWT not installed
import oidc_guard, oidc_guard.wsgi, oidc_guard.flask
from oidc_guard import TokenValidator
issuer_url, token = sys.argv[1], sys.argv[2]
claims = TokenValidator(issuer_url, audience="api://contacts").validate_access_token(token)
assert claims["sub"] == "alice", claims
import oidc_guard.testing as t
assert t.forge_token({"alg": "none"}, {"sub": "x"}).endswith(".")
try:
    t.LocalIssuer()
except ImportError as exc:
    print(exc)
else:
    raise SystemExit("LocalIssuer started without PyJWT")
"""


def test_the_library_needs_no_pyjwt_and_the_test_issuer_names_the_extra(issuer):
    token = issuer.mint()
    out = subprocess.run([sys.executable, "-c", _WITHOUT_PYJWT, issuer.issuer, token],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'oidc_guard[testing]'" in out.stdout
    assert "PyJWT" in out.stdout
