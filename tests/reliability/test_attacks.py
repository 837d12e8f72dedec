"""Known JWT attacks, one test each, against a real loopback issuer.

Every forged token must be refused with ``InvalidToken`` by the validator,
and with 401 ``invalid_token`` by the middleware: never accepted, never a
500, never a fetch of a URL the token names.

References: RFC 8725 (JWT BCP) sections 2 and 3; CVE-2015-9235 (alg none /
HS-RS confusion in node-jsonwebtoken); CVE-2022-21449 ("psychic
signatures", ECDSA r = s = 0); CVE-2018-0114 (embedded jwk); the jku/x5u
SSRF and kid-injection classes described in RFC 8725 section 2.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
from typing import Any, Dict

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from oidc_guard import InvalidToken, TokenValidator
from oidc_guard.testing import OMIT, LocalIssuer, sign_raw
from oidc_guard.validator import ConfigurationError

from .conftest import AUDIENCE, call_wsgi, protected_app, validator_for

pytestmark = pytest.mark.reliability

# P-256 group order (SEC 2, section 2.4.2)
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims_for(iss: LocalIssuer, **extra: Any) -> Dict[str, Any]:
    now = int(time.time())
    body = {"iss": iss.issuer, "sub": "alice", "aud": AUDIENCE, "scope": "contacts",
            "iat": now, "nbf": now, "exp": now + 600}
    body.update(extra)
    return body


def assert_rejected(v: TokenValidator, token: str) -> InvalidToken:
    """The validator raises InvalidToken; the middleware answers 401
    invalid_token; nothing echoes the token."""
    with pytest.raises(InvalidToken) as info:
        v.validate_access_token(token)
    exc = info.value
    assert token not in exc.description
    assert len(exc.description) < 600
    r = call_wsgi(protected_app(v, required=True), authorization="Bearer " + token)
    assert r.status == 401, r
    challenge = r.challenge("Bearer")
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert "\r" not in challenge and "\n" not in challenge
    assert token not in r.body.decode()
    return exc


@pytest.fixture
def rsa_issuer(issuers) -> LocalIssuer:
    return issuers(algs=("RS256",))


@pytest.fixture
def attacker(issuers) -> LocalIssuer:
    """The attacker's own "provider": its keys are not the victim's, and its
    server records every request, so a fetch of its URLs would show."""
    return issuers(algs=("RS256",), fresh_keys=True)


def test_sanity_a_genuine_token_passes(rsa_issuer):
    v = validator_for(rsa_issuer)
    assert v.validate_access_token(rsa_issuer.mint()).subject == "alice"
    r = call_wsgi(protected_app(v, required=True), authorization="Bearer " + rsa_issuer.mint())
    assert r.status == 200


# --- alg none (RFC 8725 2.1, CVE-2015-9235) -------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "NoNe"])
@pytest.mark.parametrize("signature", ["empty", "garbage", "real-rs256"])
def test_alg_none_and_case_variants(rsa_issuer, alg, signature):
    v = validator_for(rsa_issuer)
    kid = rsa_issuer.signing_kid
    header = {"alg": alg, "kid": kid, "typ": "at+jwt"}
    body = claims_for(rsa_issuer)
    if signature == "real-rs256":
        # a real signature by the issuer's key over the alg-none header:
        # the header's alg decides nothing, the allow-list does
        token = rsa_issuer.sign(body, kid=kid, header={"alg": alg}, typ="at+jwt")
    else:
        segs = [b64u(json.dumps(header).encode()), b64u(json.dumps(body).encode())]
        token = ".".join(segs) + "." + ("" if signature == "empty" else b64u(b"\x00" * 256))
    exc = assert_rejected(v, token)
    assert "none" in exc.description.lower() or "unsigned" in exc.description


@pytest.mark.parametrize("header", [{}, {"alg": None}, {"alg": ["RS256"]}, {"alg": ""}, {"alg": "RS256 "}])
def test_missing_or_malformed_alg(rsa_issuer, header):
    v = validator_for(rsa_issuer)
    token = rsa_issuer.sign(claims_for(rsa_issuer), header=dict({"alg": OMIT}, **header))
    assert_rejected(v, token)


# --- HS/RS key confusion (RFC 8725 2.1 / 3.1) -------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256"])
@pytest.mark.parametrize("secret_form", ["pem", "der", "jwk-json", "modulus"])
def test_hmac_signed_with_the_rsa_public_key(rsa_issuer, alg, secret_form):
    """The attacker HMACs the token with the issuer's *public* key; a
    library that hands "the key" to whatever alg the header names accepts
    it.  Every usual serialization of the public key is tried."""
    v = validator_for(rsa_issuer)
    kid = rsa_issuer.signing_kid
    public = rsa_issuer.public_key(kid)
    jwk = rsa_issuer.public_jwk(kid)
    secret = {
        "pem": rsa_issuer.public_key_pem(kid),
        "der": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(jwk).encode(),
        "modulus": base64.urlsafe_b64decode(jwk["n"] + "=="),
    }[secret_form]
    header = {"alg": alg, "kid": kid, "typ": "at+jwt"}
    signing_input = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims_for(rsa_issuer)).encode())
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[2:]]
    token = signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), digest).digest())
    assert_rejected(v, token)


@pytest.mark.parametrize("alg", ["HS256", "none", "RS1", "ES256K"])
def test_symmetric_or_unknown_algorithms_cannot_be_configured(rsa_issuer, alg):
    with pytest.raises(ConfigurationError):
        TokenValidator(rsa_issuer.issuer, audience=AUDIENCE, algorithms=[alg])


# --- key type does not fit the alg (RFC 8725 3.1, RFC 7518 3.1) -------------------


def test_ed25519_key_with_an_rs_alg(issuers):
    """An RS256 token naming the kid of the issuer's Ed25519 key (published
    without ``alg``, so only kty/crv can stop it), validly signed by the
    issuer's RSA key: the key lookup must refuse to use an OKP key for RS256,
    whatever the signature says.  And the mirror image."""
    iss = issuers(algs=("EdDSA", "RS256"))
    ed_kid, rsa_kid = iss.kids
    iss.jwk_overrides[ed_kid] = {"alg": OMIT}
    iss.jwk_overrides[rsa_kid] = {"alg": OMIT}
    v = validator_for(iss)
    assert v.validate_access_token(iss.mint(kid=ed_kid))  # the genuine EdDSA token
    assert v.validate_access_token(iss.mint(kid=rsa_kid))

    rs_on_ed = iss.mint(kid=rsa_kid, header={"kid": ed_kid})
    assert "cannot verify" in assert_rejected(v, rs_on_ed).description
    ed_on_rsa = iss.mint(kid=ed_kid, header={"kid": rsa_kid})
    assert_rejected(v, ed_on_rsa)
    es_on_rsa = iss.mint(kid=ed_kid, header={"kid": rsa_kid, "alg": "ES256"})
    assert_rejected(v, es_on_rsa)


# --- psychic ECDSA signatures (CVE-2022-21449) ------------------------------------


@pytest.mark.parametrize("r,s", [(0, 0), (P256_N, P256_N), (0, 1), (1, 0), (P256_N, 1)],
                         ids=["r=s=0", "r=s=n", "r=0", "s=0", "r=n"])
def test_psychic_ecdsa_signature(issuers, r, s):
    iss = issuers(algs=("ES256",))
    v = validator_for(iss)
    genuine = iss.mint()
    assert v.validate_access_token(genuine)
    signing_input = genuine.rsplit(".", 1)[0]
    forged = signing_input + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    exc = assert_rejected(v, forged)
    assert "signature" in exc.description


# --- keys from the token itself: jwk, jku, x5u, x5c (RFC 8725 3.10) ---------------


@pytest.mark.parametrize("kid_choice", ["victim-kid", "attacker-kid", "no-kid"])
def test_embedded_jwk(rsa_issuer, attacker, kid_choice):
    """CVE-2018-0114: the token carries the attacker's public key in ``jwk``
    and is signed with the matching private key."""
    v = validator_for(rsa_issuer)
    v.validate_access_token(rsa_issuer.mint())
    evil_kid = attacker.signing_kid
    kid = {"victim-kid": rsa_issuer.signing_kid, "attacker-kid": evil_kid, "no-kid": OMIT}[kid_choice]
    token = attacker.sign(claims_for(rsa_issuer), kid=evil_kid, typ="at+jwt",
                          header={"kid": kid, "jwk": attacker.public_jwk(evil_kid)})
    assert_rejected(v, token)


def _self_signed_cert(private_key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private_key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .sign(private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kid_choice", ["victim-kid", "attacker-kid"])
def test_jku_x5u_x5c_ssrf(rsa_issuer, attacker, raw_servers, kid_choice):
    """The token names key URLs (jku, x5u) on the attacker's server and on an
    "internal" one, and carries a certificate (x5c) for the attacker's key.
    None of it may be used, and neither server may see a single request."""
    internal = raw_servers()
    v = validator_for(rsa_issuer)
    v.validate_access_token(rsa_issuer.mint())
    attacker.reset_counts()
    attacker.requests.clear()
    evil_kid = attacker.signing_kid
    kid = rsa_issuer.signing_kid if kid_choice == "victim-kid" else evil_kid
    headers = [
        {"jku": attacker.jwks_uri},
        {"x5u": attacker.url("/cert.pem")},
        {"jku": internal.url("/admin/keys")},
        {"x5u": internal.url("/metadata")},
        {"x5c": [base64.b64encode(_self_signed_cert(attacker.private_key(evil_kid))).decode()]},
        {"jku": attacker.jwks_uri, "x5u": internal.url("/x"), "jwk": attacker.public_jwk(evil_kid)},
    ]
    for extra in headers:
        token = attacker.sign(claims_for(rsa_issuer), kid=evil_kid, typ="at+jwt", header=dict(extra, kid=kid))
        assert_rejected(v, token)
    time.sleep(0.1)  # a stray fetch would have arrived by now
    assert list(attacker.requests) == []
    assert attacker.fetch_counts["jwks"] == 0
    assert internal.hits == []


# --- kid injection ---------------------------------------------------------------


@pytest.mark.parametrize("kid", [
    "../../dev/null",
    "../../../../../../etc/passwd",
    "/dev/null",
    "' OR '1'='1",
    "x'; DROP TABLE keys; --",
    "${jndi:ldap://127.0.0.1:1/a}",
    "kid\r\nX-Injected: yes",
    "kid\x00.pem",
    "%2e%2e%2f%2e%2e%2fdev%2fnull",
    "",
    "k" * 10000,
], ids=["traversal", "traversal-passwd", "absolute-path", "sql-or", "sql-drop", "jndi", "crlf", "nul",
        "url-encoded", "empty", "10k-chars"])
def test_kid_injection(rsa_issuer, kid):
    """The kid is only ever a dictionary key into the fetched JWKS: no file,
    no query, no URL.  Signed by the real key, so only the kid is wrong."""
    v = validator_for(rsa_issuer)
    v.validate_access_token(rsa_issuer.mint())
    before = rsa_issuer.fetch_counts["jwks"]
    token = rsa_issuer.mint(header={"kid": kid})
    exc = assert_rejected(v, token)
    assert len(exc.description) < 300  # a 10 kB kid is not echoed
    assert "\r" not in exc.description and "\n" not in exc.description and "\x00" not in exc.description
    # a handful of injected kids cost at most one refetch (cooldown)
    for _ in range(5):
        assert_rejected(v, token)
    assert rsa_issuer.fetch_counts["jwks"] - before <= 1


@pytest.mark.parametrize("kid", [123, 1.5, True, ["k"], {"$ne": None}], ids=["int", "float", "bool", "list", "object"])
def test_non_string_kid(rsa_issuer, kid):
    v = validator_for(rsa_issuer)
    token = rsa_issuer.mint(header={"kid": kid})
    assert_rejected(v, token)


# --- crit (RFC 7515 4.1.11) -------------------------------------------------------


@pytest.mark.parametrize("extra", [
    {"crit": ["exp"], "exp": 1},
    {"crit": ["b64"], "b64": False},  # RFC 7797: unencoded payload
    {"crit": ["http://example.com/ext"]},
    {"crit": []},
    {"crit": "b64"},
], ids=["exp", "b64", "unknown-uri", "empty-list", "not-a-list"])
def test_crit_header(rsa_issuer, extra):
    v = validator_for(rsa_issuer)
    token = rsa_issuer.mint(header=extra)
    assert_rejected(v, token)


# --- nested JWT (RFC 7519 5.2 cty, RFC 8725 2.8) ----------------------------------


@pytest.mark.parametrize("cty", ["JWT", "jwt", "application/jwt", "Application/JWT"])
def test_nested_jwt(rsa_issuer, cty):
    """An outer token signed by the issuer whose payload says "I contain a
    JWT": oidc_guard does not unwrap tokens, so an inner token's claims can
    never be confused with verified ones."""
    v = validator_for(rsa_issuer)
    inner = rsa_issuer.mint(subject="admin")
    token = rsa_issuer.mint(header={"cty": cty})
    assert_rejected(v, token)
    # the payload *is* the inner compact JWT (a JSON string, not an object)
    kid = rsa_issuer.signing_kid
    header = json.dumps({"alg": "RS256", "kid": kid, "cty": "JWT"}).encode()
    wrapped = sign_raw(rsa_issuer.private_key(kid), "RS256", header, json.dumps(inner).encode())
    assert_rejected(v, wrapped)
    raw_wrapped = sign_raw(rsa_issuer.private_key(kid), "RS256",
                           json.dumps({"alg": "RS256", "kid": kid}).encode(), inner.encode())
    assert_rejected(v, raw_wrapped)


# --- oversized and hostile headers ------------------------------------------------


@pytest.mark.parametrize("size", [16 * 1024 + 1, 1024 * 1024, 8 * 1024 * 1024])
def test_oversized_header(rsa_issuer, size):
    """Rejected by length before any decoding: fast, no JWKS fetch."""
    v = validator_for(rsa_issuer)
    v.validate_access_token(rsa_issuer.mint())
    before = rsa_issuer.fetch_counts["jwks"]
    token = rsa_issuer.mint(header={"pad": "A" * size})
    t0 = time.perf_counter()
    with pytest.raises(InvalidToken, match="limit"):
        v.validate_access_token(token)
    assert time.perf_counter() - t0 < 0.1
    assert rsa_issuer.fetch_counts["jwks"] == before
    assert_rejected(v, token)


@pytest.mark.parametrize("header", [
    b"[" * 6000 + b"]" * 6000,                     # nesting: RecursionError must not escape
    b'{"alg":"RS256","x":' + b"[" * 6000 + b"]" * 6000 + b"}",
    b'{"alg":"RS256","kid":' + b"9" * 5000 + b"}",  # int > sys.int_info.str_digits_check_threshold
    b'{"alg":"RS256","kid":1e999999}',
    b'{"alg":"RS256","kid":NaN}',
    b'{"alg":"RS256" "kid":"x"}',
    b'\xef\xbb\xbf{"alg":"RS256"}',                 # BOM
    b'{"alg":"RS\xff256"}',                         # not UTF-8
    b'{"alg":"RS256\\ud800"}',                      # lone surrogate
], ids=["deep-array", "deep-member", "huge-int", "huge-float", "nan", "missing-comma", "bom", "latin1",
        "surrogate"])
def test_hostile_header_json(rsa_issuer, header):
    v = validator_for(rsa_issuer)
    token = b64u(header) + "." + b64u(json.dumps(claims_for(rsa_issuer)).encode()) + "." + b64u(b"\x01" * 256)
    t0 = time.perf_counter()
    assert_rejected(v, token)
    assert time.perf_counter() - t0 < 1.0


# --- duplicate JSON member names (RFC 7515 section 4, RFC 7519 section 4) -----------


def test_duplicate_keys_in_header(rsa_issuer):
    """Parsers disagree on which duplicate wins (first or last); a token
    that means different things to different parsers must be refused."""
    v = validator_for(rsa_issuer)
    kid = rsa_issuer.signing_kid
    payload = json.dumps(claims_for(rsa_issuer)).encode()
    for header in (
        f'{{"alg":"RS256","kid":"{kid}","alg":"none"}}',
        f'{{"alg":"none","alg":"RS256","kid":"{kid}"}}',
        f'{{"alg":"RS256","kid":"{kid}","kid":"../../dev/null"}}',
        f'{{"alg":"RS256","kid":"{kid}","typ":"at+jwt","typ":"JWT"}}',
    ):
        token = sign_raw(rsa_issuer.private_key(kid), "RS256", header.encode(), payload)
        assert "duplicate" in assert_rejected(v, token).description


@pytest.mark.parametrize("member,first,second", [
    ("sub", '"alice"', '"admin"'),
    ("aud", '"api://other"', f'"{AUDIENCE}"'),
    ("exp", "1", str(int(time.time()) + 600)),
    ("scope", '"read"', '"admin contacts"'),
    ("iss", '"https://evil.example"', None),
])
def test_duplicate_keys_in_payload(rsa_issuer, member, first, second):
    v = validator_for(rsa_issuer)
    kid = rsa_issuer.signing_kid
    body = claims_for(rsa_issuer)
    if second is None:
        second = json.dumps(body["iss"])
    body.pop(member, None)
    text = json.dumps(body)[:-1] + f', "{member}": {first}, "{member}": {second}}}'
    header = json.dumps({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).encode()
    token = sign_raw(rsa_issuer.private_key(kid), "RS256", header, text.encode())
    assert "duplicate" in assert_rejected(v, token).description


# --- odds and ends of the same family -------------------------------------------


def test_signature_stripping_and_jwe(rsa_issuer):
    v = validator_for(rsa_issuer)
    genuine = rsa_issuer.mint()
    h, p, _s = genuine.split(".")
    for token in (f"{h}.{p}.", f"{h}.{p}", f"{h}.{p}.{_s}.{_s}.{_s}", f"{h}..{_s}", f".{p}.{_s}"):
        with pytest.raises(InvalidToken):
            v.validate_access_token(token)


def test_signature_from_another_issuer_with_the_victims_kid(rsa_issuer, attacker):
    """The attacker copies the victim's kid into a token signed with its own
    key (and names the victim as iss)."""
    v = validator_for(rsa_issuer)
    token = attacker.sign(claims_for(rsa_issuer), typ="at+jwt", header={"kid": rsa_issuer.signing_kid})
    assert "signature" in assert_rejected(v, token).description
