"""TokenValidator (oidc_guard.validator): access tokens and ID Tokens.

Every test runs the real fetch path: the issuer is a LocalIssuer serving
discovery and JWKS on 127.0.0.1, and "attacker" URLs (jku, x5u) are real
loopback servers that count their requests.  Times are pinned with the
validator's ``clock=`` and the minting ``now=`` so boundaries are exact.

Specs: RFC 7515 (JWS), RFC 7519 (JWT) 7.2, RFC 8725 (JWT BCP), RFC 9068
(JWT access tokens), OpenID Connect Core 1.0 3.1.3.7 / 3.2.2.11.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oidc_guard import Claims, InvalidToken, OIDCGuardError, ProviderError, TokenValidator
from oidc_guard.testing import OMIT, LocalIssuer, b64url_encode, forge_token, hmac_token, sign_raw
from oidc_guard.errors import ConfigurationError

T0 = 1_900_000_000  # a fixed "now" (2030-03-17T17:46:40Z) for time-exact tests


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


# --- helpers --------------------------------------------------------------------------


def b64json(obj) -> str:
    return b64url_encode(json.dumps(obj).encode())


def valid_claims(iss, **changes):
    now = int(time.time())
    claims = {"iss": iss.issuer, "sub": "alice", "aud": iss.audience, "scope": "contacts",
              "client_id": "spa", "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


def rejected(validator, token, *words, cls=InvalidToken):
    """Assert ``token`` is refused with ``cls`` and a description holding ``words``."""
    with pytest.raises(OIDCGuardError) as info:
        validator.validate_access_token(token)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value.description}"
    for word in words:
        assert word in info.value.description, info.value.description
    return info.value.description


def rejected_id(validator, token, *words, **kwargs):
    kwargs.setdefault("client_id", "spa")
    with pytest.raises(OIDCGuardError) as info:
        validator.validate_id_token(token, **kwargs)
    assert type(info.value) is InvalidToken, f"{type(info.value).__name__}: {info.value.description}"
    for word in words:
        assert word in info.value.description, info.value.description
    return info.value.description


@pytest.fixture(scope="module")
def attacker():
    """The attacker's own keys: fresh material no LocalIssuer in the process shares."""
    return LocalIssuer(algs=("RS256", "ES256"), fresh_keys=True)


@pytest.fixture
def validator(issuer, make_validator):
    return make_validator(issuer)


@pytest.fixture
def multi(make_issuer):
    """An issuer with an RSA and an EC P-256 key."""
    return make_issuer(algs=("RS256", "ES256"))


def kid_of(iss, alg):
    return next(k for k in iss.kids if iss.key_alg(k) == alg)


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS256"], ["HS384"], ["HS512"],
                                        "none", "HS256", ["rs256"], ["ES256K"], ["RSA-OAEP"], []])
def test_construction_refuses_non_allow_listed_algorithms(issuer, algorithms):
    with pytest.raises(ConfigurationError) as info:
        TokenValidator(issuer.issuer, audience="api", algorithms=algorithms)
    assert isinstance(info.value, OIDCGuardError)
    assert isinstance(info.value, ValueError)
    assert "algorithm" in info.value.description


def test_construction_accepts_a_single_algorithm_string(issuer):
    assert TokenValidator(issuer.issuer, audience="api", algorithms="ES256").algorithms == {"ES256"}


@pytest.mark.parametrize("kwargs", [
    {"audience": None},
    {"audience": []},
    {"audience": [""]},
    {"audience": ["api", 5]},
    {"audience": "api", "leeway": -1},
    {"audience": "api", "http_timeout": 0},
    {"audience": "api", "http_timeout": -1},
])
def test_construction_refuses_bad_settings(issuer, kwargs):
    with pytest.raises(ConfigurationError):
        TokenValidator(issuer.issuer, **kwargs)


@pytest.mark.parametrize("bad_issuer", ["", None, 5, "ftp://idp.example.com", "idp.example.com"])
def test_construction_refuses_bad_issuers(bad_issuer):
    with pytest.raises(ConfigurationError):
        TokenValidator(bad_issuer, audience="api")


def test_audience_is_optional_only_with_verify_audience_false(issuer):
    TokenValidator(issuer.issuer, audience=None, verify_audience=False)


def test_validate_id_token_needs_a_client_id(issuer, validator):
    with pytest.raises(ConfigurationError):
        validator.validate_id_token(issuer.mint_id_token("spa"), client_id="")
    with pytest.raises(ConfigurationError):
        validator.validate_id_token(issuer.mint_id_token("spa"), client_id=None)


# --- the happy path -----------------------------------------------------------------------


def test_valid_access_token(issuer, validator):
    token = issuer.mint(scope="contacts wte")
    claims = validator.validate_access_token(token)
    assert isinstance(claims, Claims)
    assert claims.subject == "alice"
    assert claims.client_id == "spa"
    assert claims.scopes == frozenset({"contacts", "wte"})
    assert claims.issuer == issuer.issuer
    assert claims.audiences == ("api://contacts",)
    assert claims.expires_at.tzinfo is not None
    assert claims.header["kid"] == issuer.signing_kid
    assert claims.header["alg"] == "RS256"


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                 "ES256", "ES384", "ES512", "EdDSA"])
def test_every_supported_algorithm(make_issuer, make_validator, alg):
    iss = make_issuer(algs=(alg,))
    claims = make_validator(iss).validate_access_token(iss.mint())
    assert claims.header["alg"] == alg


def test_identityserver3_shaped_access_token(make_issuer, make_validator):
    # Shapes from the seeds: typ JWT, scope array, aud <issuer>/resources, no sub.
    iss = make_issuer(audience="placeholder")
    resources = iss.issuer + "/resources"
    token = iss.mint(audience=resources, subject=None, scope=["profile", "special_access"], typ="JWT",
                     client_id="chw", claims={"client_chw:delete": "access"})
    claims = make_validator(iss, audience=resources).validate_access_token(token)
    assert claims.scopes == frozenset({"profile", "special_access"})
    assert claims.is_client_token
    assert claims.client_id == "chw"
    user = iss.mint(audience=resources, subject="12345", scope=["profile"], typ="JWT", client_id="chw_resource",
                    claims={"amr": "password", "auth_time": int(time.time()) - 5, "idp": "idsrv"})
    claims = make_validator(iss, audience=resources).validate_access_token(user)
    assert not claims.is_client_token
    assert claims["idp"] == "idsrv" and claims["amr"] == "password"


def test_bytes_token_is_accepted_when_ascii(issuer, validator):
    assert validator.validate_access_token(issuer.mint().encode("ascii")).subject == "alice"


# --- alg allow-list (RFC 8725 2.1, 3.1) --------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"anything", "real"])
def test_alg_none_is_refused(issuer, validator, alg, signature):
    claims = valid_claims(issuer)
    if signature == "real":  # keep a real signature segment from the issuer
        signature = base64.urlsafe_b64decode(issuer.mint().split(".")[2] + "==")
    token = forge_token({"alg": alg, "typ": "at+jwt", "kid": issuer.signing_kid}, claims, signature=signature)
    desc = rejected(validator, token)
    assert "unsigned" in desc or "alg none" in desc


def test_alg_none_never_fetches_anything(issuer, validator):
    rejected(validator, forge_token({"alg": "none"}, valid_claims(issuer)))
    rejected(validator, forge_token({"alg": "none"}, valid_claims(issuer), signature=b"x"))
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}


def _rsa_secrets(iss):
    """Every way an attacker might turn the issuer's RSA public key into an HMAC secret."""
    kid = iss.signing_kid
    pub = iss.public_key(kid)
    jwk = iss.public_jwk(kid)
    return {
        "pem": iss.public_key_pem(kid),
        "pem-pkcs1": pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "der": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "n": base64.urlsafe_b64decode(jwk["n"] + "=="),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("secret_kind", ["pem", "pem-pkcs1", "der", "jwk-json", "jwk-json-compact", "n"])
def test_hmac_signed_with_the_rsa_public_key_is_refused(issuer, validator, alg, secret_kind):
    # The classic key-confusion attack (CVE-2015-9235 and friends).
    secret = _rsa_secrets(issuer)[secret_kind]
    token = hmac_token(valid_claims(issuer), secret, alg=alg, header={"kid": issuer.signing_kid, "typ": "at+jwt"})
    rejected(validator, token, "symmetric alg", "only asymmetric algorithms are accepted")


@pytest.mark.parametrize("alg", ["hs256", "Hs256"])
def test_hmac_case_variants_refused(issuer, validator, alg):
    secret = issuer.public_key_pem()
    token = hmac_token(valid_claims(issuer), secret, header={"alg": alg, "kid": issuer.signing_kid})
    rejected(validator, token)


def test_hmac_with_an_oct_key_in_the_jwks_is_refused(issuer, validator):
    # Even a JWKS that publishes a symmetric key never enables HS*.
    secret = b"shared-secret-that-leaked-into-the-jwks"
    issuer.extra_jwks.append({"kty": "oct", "kid": "hmac", "alg": "HS256",
                              "k": b64url_encode(secret)})
    token = hmac_token(valid_claims(issuer), secret, header={"kid": "hmac"})
    rejected(validator, token, "symmetric")
    validator.validate_access_token(issuer.mint())  # load the JWKS
    assert all(k.kty != "oct" for k in validator.keys.keys)


def test_algorithms_restriction_is_honoured(multi, make_validator):
    es_only = make_validator(multi, algorithms=["ES256"])
    es_only.validate_access_token(multi.mint(alg="ES256"))
    desc = rejected(es_only, multi.mint(alg="RS256"), "alg 'RS256' is not allowed", "['ES256']")
    assert desc
    rsa_only = make_validator(multi, algorithms=["RS256"])
    rejected(rsa_only, multi.mint(alg="ES256"), "not allowed")
    rsa_only.validate_access_token(multi.mint(alg="RS256"))


@pytest.mark.parametrize("alg", [None, 5, ["RS256"], "", "RS1", "ES256K", "RSA-OAEP", "dir"])
def test_missing_or_unknown_alg_refused(issuer, validator, alg):
    header = {"kid": issuer.signing_kid, "typ": "at+jwt"}
    if alg is not None:
        header["alg"] = alg
    rejected(validator, forge_token(header, valid_claims(issuer), signature=b"x" * 256))


def test_header_alg_must_match_the_key_that_signed(issuer, validator):
    # Signed with RS256, header claims PS256 (same RSA key, JWK alg RS256).
    token = issuer.mint(header={"alg": "PS256"})
    rejected(validator, token)


# --- the key must fit the alg (RFC 7518 3.1, RFC 8725 3.1) ------------------------------------------


def test_kid_pointing_at_an_ec_key_with_an_rs256_token(multi, make_validator):
    token = multi.mint(kid=kid_of(multi, "RS256"), header={"kid": kid_of(multi, "ES256")})
    rejected(make_validator(multi), token, "cannot verify RS256")


def test_rsa_key_used_for_es256(multi, make_validator):
    token = multi.mint(kid=kid_of(multi, "ES256"), header={"kid": kid_of(multi, "RS256")})
    rejected(make_validator(multi), token, "cannot verify ES256")


def test_jwk_whose_own_alg_differs_from_the_token(make_issuer, make_validator):
    iss = make_issuer(algs=("PS256",))
    kid = iss.signing_kid
    iss.jwk_overrides[kid] = {"alg": "RS256"}  # published for RS256, token says PS256
    rejected(make_validator(iss), iss.mint(), "cannot verify PS256")


@pytest.mark.parametrize("override", [{"use": "enc"}, {"key_ops": ["encrypt"]}, {"key_ops": ["wrapKey"]},
                                      {"key_ops": []}])
def test_encryption_keys_never_verify(multi, make_validator, override):
    rsa_kid = kid_of(multi, "RS256")
    multi.jwk_overrides[rsa_kid] = override
    validator = make_validator(multi)
    rejected(validator, multi.mint(kid=rsa_kid), "not in the issuer's JWKS")
    validator.validate_access_token(multi.mint(alg="ES256"))  # the other key still works
    assert [k.kid for k in validator.keys.keys] == [kid_of(multi, "ES256")]


def test_key_ops_with_verify_is_used(issuer, validator):
    issuer.jwk_overrides[issuer.signing_kid] = {"key_ops": ["verify"]}
    validator.validate_access_token(issuer.mint())


@pytest.fixture(scope="module")
def small_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_key_below_2048_bits_is_refused(issuer, validator, small_rsa, caplog):
    numbers = small_rsa.public_key().public_numbers()
    issuer.extra_jwks.append({"kty": "RSA", "kid": "small", "alg": "RS256", "use": "sig",
                              "n": b64url_encode(numbers.n.to_bytes(128, "big")), "e": "AQAB"})
    header = json.dumps({"alg": "RS256", "kid": "small", "typ": "at+jwt"}).encode()
    token = sign_raw(small_rsa, "RS256", header, json.dumps(valid_claims(issuer)).encode())
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    rejected(validator, token, "'small' not in the issuer's JWKS")
    assert any("1024 bits" in r.getMessage() for r in caplog.records)


def test_ec_point_not_on_the_curve_is_refused(multi, make_validator):
    ec_kid = kid_of(multi, "ES256")
    jwk = multi.public_jwk(ec_kid)
    y = bytearray(base64.urlsafe_b64decode(jwk["y"] + "=="))
    y[-1] ^= 1
    multi.jwk_overrides[ec_kid] = {"y": b64url_encode(bytes(y))}
    validator = make_validator(multi)
    rejected(validator, multi.mint(kid=ec_kid), "not in the issuer's JWKS")
    validator.validate_access_token(multi.mint(alg="RS256"))


@pytest.mark.parametrize("member", ["d", "p", "dp"])
def test_private_key_material_in_the_jwks_is_refused(multi, make_validator, member, caplog):
    rsa_kid = kid_of(multi, "RS256")
    multi.jwk_overrides[rsa_kid] = {member: "AQAB"}
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    validator = make_validator(multi)
    rejected(validator, multi.mint(kid=rsa_kid), "not in the issuer's JWKS")
    assert any("private" in r.getMessage() for r in caplog.records)


# --- keys from the token itself are never used (RFC 8725 3.10) --------------------------------------


@pytest.mark.parametrize("kid_choice", ["attacker", "victim", "none"])
def test_embedded_jwk_header_is_ignored(issuer, validator, attacker, kid_choice):
    akid = attacker.signing_kid
    header = {"jwk": attacker.public_jwk(akid)}
    if kid_choice == "victim":
        header["kid"] = issuer.signing_kid
    elif kid_choice == "none":
        header["kid"] = OMIT
    token = attacker.sign(valid_claims(issuer), kid=akid, header=header)
    desc = rejected(validator, token)
    if kid_choice == "attacker":
        assert "not in the issuer's JWKS" in desc
    else:
        assert "signature is invalid" in desc


@pytest.fixture
def attacker_server(make_loopback, attacker):
    """The attacker's web server with the attacker's JWKS and certificate."""
    server = make_loopback()
    server.json("/jwks.json", json.dumps({"keys": [attacker.public_jwk(attacker.signing_kid)]}))
    server.routes["/cert.pem"] = (200, {"Content-Type": "application/pem-certificate-chain"}, b"-----BEGIN")
    return server


def _self_signed_cert_b64(attacker):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = attacker.private_key(attacker.signing_kid)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("params", ["jku", "x5u", "x5c", "all"])
@pytest.mark.parametrize("kid_choice", ["attacker", "victim"])
def test_jku_x5u_x5c_are_never_fetched_or_used(issuer, validator, attacker, attacker_server, params, kid_choice):
    header = {}
    if params in ("jku", "all"):
        header["jku"] = attacker_server.url("/jwks.json")
    if params in ("x5u", "all"):
        header["x5u"] = attacker_server.url("/cert.pem")
    if params in ("x5c", "all"):
        header["x5c"] = [_self_signed_cert_b64(attacker)]
    if kid_choice == "victim":
        header["kid"] = issuer.signing_kid
    token = attacker.sign(valid_claims(issuer), kid=attacker.signing_kid, header=header)
    rejected(validator, token)
    assert attacker_server.total == 0


def test_jku_on_a_genuine_token_is_ignored_not_fetched(issuer, validator, attacker_server):
    token = issuer.mint(header={"jku": attacker_server.url("/jwks.json"), "x5u": attacker_server.url("/cert.pem")})
    assert validator.validate_access_token(token).subject == "alice"
    assert attacker_server.total == 0
    assert issuer.fetch_counts == {"discovery": 1, "jwks": 1}


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["http://example.com/x"], [], "b64", None])
def test_crit_header_is_rejected(issuer, validator, crit):
    # RFC 7515 4.1.11: oidc_guard understands no extension, so any crit fails.
    token = issuer.mint(header={"crit": crit, "b64": False, "exp": 1})
    rejected(validator, token, "critical header")


@pytest.mark.parametrize("cty", ["JWT", "jwt", "application/jwt", "Application/JWT"])
def test_nested_jwt_is_rejected(issuer, validator, cty):
    inner = issuer.mint()
    token = issuer.mint({"jwt": inner}, header={"cty": cty})
    rejected(validator, token, "nested JWT")


def test_other_cty_is_not_a_nested_jwt(issuer, validator):
    validator.validate_access_token(issuer.mint(header={"cty": "json"}))


@pytest.mark.parametrize("token", [
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe"
    "ipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5X"
    "nZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQ"
    "r66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oM"
    "o4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ",
    "a.b.c.d.e",
])
def test_jwe_is_rejected(issuer, validator, token):
    rejected(validator, token, "encrypted JWT (JWE)")


# --- typ (RFC 8725 3.11, RFC 9068 2.1) -----------------------------------------------------------------


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "application/jwt"])
def test_access_token_typ_accepted(issuer, validator, typ):
    validator.validate_access_token(issuer.mint(typ=typ))


@pytest.mark.parametrize("typ", ["id_token+jwt", "logout+jwt", "secevent+jwt", "JOSE", "JOSE+JSON", "dpop+jwt",
                                 "", "application/id_token+jwt", "at+jwt ", 5, ["JWT"]])
def test_access_token_other_typ_rejected(issuer, validator, typ):
    rejected(validator, issuer.mint(typ=typ), "typ")


def test_at_jwt_rejected_as_id_token(issuer, validator):
    token = issuer.mint_id_token("spa", header={"typ": "at+jwt"})
    rejected_id(validator, token, "typ 'at+jwt'")
    # ...and an RFC 9068 access token is never taken for an ID Token.
    rejected_id(validator, issuer.mint(audience="spa"), "typ")


def test_id_token_typ_jwt_or_absent_accepted(issuer, validator):
    validator.validate_id_token(issuer.mint_id_token("spa"), client_id="spa")
    validator.validate_id_token(issuer.mint_id_token("spa", header={"typ": OMIT}), client_id="spa")


# --- garbage and size limits ------------------------------------------------------------------------------


def test_one_megabyte_token_rejected_fast_without_parsing(issuer, validator):
    big = "eyJhbGciOiJSUzI1NiJ9." + "A" * (1024 * 1024) + ".c2ln"
    started = time.perf_counter()
    rejected(validator, big, "the limit is 16384")
    rejected(validator, "%" * (1024 * 1024), "the limit is 16384")  # not even base64
    assert time.perf_counter() - started < 0.1
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}


def test_token_size_limit_boundary(issuer, make_validator):
    validator = make_validator(issuer, max_token_bytes=4000)
    token = issuer.mint({"pad": ""})
    pad = 4000 - len(token)
    fits = issuer.mint({"pad": "x" * (pad * 3 // 4)})  # base64 grows by 4/3
    while len(fits) < 4000:
        fits = issuer.mint({"pad": "x" * (len(json.loads(base64.urlsafe_b64decode(fits.split(".")[1] + "=="))["pad"]) + 1)})
    # Trim to exactly at / just over the limit.
    while len(fits) > 4000:
        claims = json.loads(base64.urlsafe_b64decode(fits.split(".")[1] + "=="))
        fits = issuer.mint({"pad": claims["pad"][:-1]})
    assert len(fits) <= 4000
    validator.validate_access_token(fits)
    over = issuer.mint({"pad": "x" * 4000})
    rejected(validator, over, f"is {len(over)} bytes; the limit is 4000")


def test_big_tokens_accepted_when_the_limit_is_raised(issuer, make_validator):
    token = issuer.mint({"groups": ["g%d" % i for i in range(3000)]})
    assert len(token) > 16384
    rejected(make_validator(issuer), token, "limit")
    assert make_validator(issuer, max_token_bytes=200_000).validate_access_token(token)["groups"][0] == "g0"


@pytest.mark.parametrize("token, words", [
    ("", "is empty"),
    ("abc", "1 segment(s)"),
    ("abc.def", "2 segment(s)"),
    ("a.b.c.d", "4 segment(s)"),
    ("a.b.c.d.e.f", "6 segment(s)"),
    ("..", "access token"),
    ("...", "4 segment(s)"),
    (".b.c", "empty segment"),
    ("a..c", "empty segment"),
    ("eyJhbGciOiJSUzI1NiJ9.e30.", "no signature"),
    ("a+b.c/d.e", "base64url alphabet"),
    ("a=.b.c", "base64url alphabet"),
    ("eyJh bGci.e30.c2ln", "base64url alphabet"),
    ("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n", "base64url alphabet"),
    (" eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "base64url alphabet"),
    ("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "base64url alphabet"),
    ("\u00e9yJhbGciOiJSUzI1NiJ9.e30.c2ln", "base64url alphabet"),
    ("a.b.c", "not valid base64url"),  # a length of 1 mod 4 cannot be base64
    ("eyJhbGciOiJSUzI1NiJ9x.e30.c2ln", "not valid base64url"),
])
def test_garbage_strings(issuer, validator, token, words):
    rejected(validator, token, words)
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}  # garbage never costs the provider a request


@pytest.mark.parametrize("header, words", [
    (b"not json", "header is not valid JSON"),
    (b"", "empty segment"),
    (b'["alg", "RS256"]', "header is not a JSON object"),
    (b'"RS256"', "header is not a JSON object"),
    (b"null", "header is not a JSON object"),
    (b'{"alg": "RS256", "alg": "none"}', "header has a duplicate member 'alg'"),
    (b'{"alg": "RS256", "kid": "a", "kid": "b"}', "duplicate member 'kid'"),
    (b"\xff\xfe{}", "header is not UTF-8"),
    (b"[" * 3000 + b"]" * 3000, "header"),
    (b'{"alg": "RS256"', "header is not valid JSON"),
])
def test_bad_headers(issuer, validator, header, words):
    token = b64url_encode(header) + "." + b64json(valid_claims(issuer)) + ".c2lnbmF0dXJl"
    rejected(validator, token, words)


@pytest.mark.parametrize("payload, words", [
    (b"not json", "payload is not valid JSON"),
    (b"[1, 2, 3]", "payload is not a JSON object"),
    (b'["iss", "sub"]', "payload is not a JSON object"),
    (b'"alice"', "payload is not a JSON object"),
    (b"42", "payload is not a JSON object"),
    (b"\xff", "payload is not UTF-8"),
    # issue 9: a RecursionError must never escape the parser
    (b"[" * 5000, "payload is nested too deeply"),
    (b'{"a":' * 1500 + b"1" + b"}" * 1500, "payload is nested too deeply"),
    (b'{"iss": ' + b"[" * 4000 + b"]" * 4000 + b"}", "payload is nested too deeply"),
])
def test_bad_payloads_signed_by_the_issuer(issuer, validator, payload, words):
    header = json.dumps({"alg": "RS256", "kid": issuer.signing_kid, "typ": "at+jwt"}).encode()
    token = sign_raw(issuer.private_key(issuer.signing_kid), "RS256", header, payload)
    rejected(validator, token, words)


# The payload parser calls the JSON scanner directly when the segment is one
# value with nothing around it, and falls back to JSONDecoder.decode
# otherwise: both must accept and refuse exactly what decode() alone does,
# with the cache on (the sharing decoder) and off (cache_size=0).
@pytest.mark.parametrize("cache_size", [10000, 0])
@pytest.mark.parametrize("before, after, accepted", [
    (b"", b"", True),
    (b" \t\r\n", b"", True),        # JSON whitespace before the object: decode() allows it
    (b"", b" \n", True),              # ... and after it
    (b"", b" x", False),               # "Extra data"
    (b"", b"{}", False),               # a second value
    (b"", b",", False),
    (b"\x0b", b"", False),             # VT is not JSON whitespace
    (b"", b"\x00", False),
])
def test_payload_with_text_around_the_object(issuer, make_validator, cache_size, before, after, accepted):
    validator = make_validator(issuer, cache_size=cache_size)
    header = json.dumps({"alg": "RS256", "kid": issuer.signing_kid, "typ": "at+jwt"}).encode()
    body = before + json.dumps(valid_claims(issuer)).encode() + after
    token = sign_raw(issuer.private_key(issuer.signing_kid), "RS256", header, body)
    if accepted:
        assert validator.validate_access_token(token)["sub"] == "alice"
    else:
        rejected(validator, token, "payload is not valid JSON")


def test_alphabet_check_is_exactly_the_compact_jws_regex(issuer, validator):
    # _verify_signature checks the alphabet with one bytes.translate; for
    # every ASCII byte, in each segment, it must refuse exactly what
    # _COMPACT_JWS refuses (and never with a 500-style exception).
    from oidc_guard.validator import _COMPACT_JWS

    good = issuer.mint()
    h, p, s = good.split(".")
    for byte in range(128):
        char = chr(byte)
        for token in (f"{h[:5]}{char}{h[5:]}.{p}.{s}", f"{h}.{p[:7]}{char}{p[7:]}.{s}", f"{h}.{p}.{s}{char}"):
            with pytest.raises(InvalidToken) as info:
                validator.validate_access_token(token)
            shape_ok = _COMPACT_JWS.fullmatch(token) is not None
            shape_refusal = "segment" in info.value.description and "base64url" not in info.value.description \
                or "alphabet" in info.value.description
            if shape_ok:  # an alphabet character: the token is well-formed, refused later (signature, base64)
                assert "alphabet" not in info.value.description, (byte, info.value.description)
            else:
                assert shape_refusal, (byte, info.value.description)
    assert validator.validate_access_token(good)["sub"] == "alice"


@pytest.mark.parametrize("dup", ["sub", "aud", "exp", "iss"])
def test_duplicate_claims_signed_by_the_issuer_are_rejected(issuer, validator, dup):
    # Parsers disagree on duplicates (first vs last wins): refuse them.
    claims = valid_claims(issuer)
    body = json.dumps(claims)[:-1] + f', "{dup}": ' + json.dumps({"sub": "admin", "aud": "other", "exp": 1,
                                                                 "iss": "https://evil"}[dup]) + "}"
    header = json.dumps({"alg": "RS256", "kid": issuer.signing_kid, "typ": "at+jwt"}).encode()
    token = sign_raw(issuer.private_key(issuer.signing_kid), "RS256", header, body.encode())
    rejected(validator, token, f"payload has a duplicate member '{dup}'")


@pytest.mark.parametrize("value, words", [
    (None, "must be a string, not NoneType"),
    (12345, "must be a string, not int"),
    (1.5, "not float"),
    (["a.b.c"], "not list"),
    ({"token": "x"}, "not dict"),
    (b"\xff\xfe.a.b", "is not ASCII"),
    ("caf\u00e9".encode("utf-8"), "is not ASCII"),
    (bytearray(b"a.b.c"), "not bytearray"),
])
def test_non_string_input(issuer, validator, value, words):
    rejected(validator, value, words)
    with pytest.raises(InvalidToken):
        validator.validate_id_token(value, client_id="spa")


def test_tampered_payload_fails_the_signature(issuer, validator):
    h, p, s = issuer.mint().split(".")
    forged = b64json(dict(valid_claims(issuer), sub="admin"))
    rejected(validator, f"{h}.{forged}.{s}", "signature is invalid")


def test_signature_of_another_token_fails(issuer, validator):
    h1, p1, _s1 = issuer.mint(subject="alice").split(".")
    _h2, _p2, s2 = issuer.mint(subject="bob").split(".")
    rejected(validator, f"{h1}.{p1}.{s2}", "signature is invalid")


def test_truncated_signature_fails(multi, make_validator):
    validator = make_validator(multi)
    for alg in ("RS256", "ES256"):
        h, p, s = multi.mint(alg=alg).split(".")
        # cut to a multiple of 4 characters so the shorter segment is still canonical base64url
        cut = s[: len(s) - len(s) % 4 - 4]
        rejected(validator, f"{h}.{p}.{cut}", "signature is invalid")


def test_signature_by_the_attacker_with_the_victims_kid_fails(issuer, validator, attacker):
    token = attacker.sign(valid_claims(issuer), kid=attacker.signing_kid, header={"kid": issuer.signing_kid})
    rejected(validator, token, "signature is invalid", issuer.signing_kid)


# --- registered claims ---------------------------------------------------------------------------------------


@pytest.fixture
def clocked(issuer, make_validator):
    """A validator whose time is T0 (settable), and the issuer to mint at T0."""
    clock = Clock()
    return make_validator(issuer, clock=clock), clock


@pytest.mark.parametrize("iss_value, words", [
    ("{issuer}/", "not by the trusted issuer"),  # trailing slash differs: rejected
    ("{issuer}/other", "not by the trusted issuer"),
    ("HTTP://127.0.0.1", "not by the trusted issuer"),
    ("https://evil.example.com", "issued by 'https://evil.example.com', not by the trusted issuer"),
    (5, "not by the trusted issuer"),
    (["{issuer}"], "not by the trusted issuer"),
    (OMIT, "token has no iss claim"),
])
def test_issuer_must_match_exactly(issuer, validator, iss_value, words):
    if isinstance(iss_value, str):
        iss_value = iss_value.format(issuer=issuer.issuer)
    elif isinstance(iss_value, list):
        iss_value = [issuer.issuer]
    rejected(validator, issuer.mint({"iss": iss_value}), words)


def test_issuer_case_and_slash_are_significant(issuer, validator):
    rejected(validator, issuer.mint(issuer=issuer.issuer.upper()), "not by the trusted issuer")
    rejected(validator, issuer.mint(issuer=issuer.issuer + "/"), "not by the trusted issuer")


@pytest.mark.parametrize("token_aud, configured", [
    ("api://contacts", "api://contacts"),
    (["api://contacts"], "api://contacts"),
    (["other", "api://contacts"], "api://contacts"),
    ("api://b", ["api://a", "api://b"]),
    (["x", "api://b", "y"], ["api://a", "api://b"]),
])
def test_audience_accepted(issuer, make_validator, token_aud, configured):
    make_validator(issuer, audience=configured).validate_access_token(issuer.mint(audience=token_aud))


@pytest.mark.parametrize("token_aud, words", [
    ("api://other", "audience 'api://other' not accepted; expected one of ['api://contacts']"),
    (["a", "b"], "'a', 'b'"),
    (["a", "b"], "not accepted; expected one of ['api://contacts']"),
    ("API://CONTACTS", "not accepted"),
    ("api://contacts/", "not accepted"),
    ([], "token has no aud claim"),
    (None, "token has no aud claim"),
    (5, "aud is neither a string nor an array of strings"),
    ({"aud": "api://contacts"}, "neither a string nor an array"),
    (["api://contacts", 5], "neither a string nor an array"),
])
def test_audience_rejected(issuer, validator, token_aud, words):
    if token_aud is None:
        token = issuer.mint(audience=None)
    else:
        token = issuer.mint({"aud": token_aud})
    rejected(validator, token, words)


def test_verify_audience_false_accepts_any_audience(issuer):
    validator = TokenValidator(issuer.issuer, audience=None, verify_audience=False)
    assert validator.validate_access_token(issuer.mint(audience="another-api")).audiences == ("another-api",)
    validator.validate_access_token(issuer.mint(audience=None))
    # ...but everything else is still checked.
    rejected(validator, issuer.mint(issuer="https://evil.example.com"), "not by the trusted issuer")


def test_exp_is_required(issuer, validator):
    rejected(validator, issuer.mint(expires_in=None), "token has no exp claim")
    rejected(validator, issuer.mint({"exp": None}), "token has no exp claim")


def test_expired_token(issuer, clocked):
    validator, clock = clocked
    token = issuer.mint(now=T0 - 3600, expires_in=1800)  # expired at T0 - 1800
    desc = rejected(validator, token, "token expired at 2030-03-17T17:16:40Z")
    assert desc == "token expired at 2030-03-17T17:16:40Z"


def test_exp_leeway_boundary(issuer, clocked):
    validator, clock = clocked
    token = issuer.mint(now=T0 - 100, expires_in=100)  # exp == T0
    clock.now = T0 + 60  # exactly at exp + leeway: still valid
    validator.validate_access_token(token)
    validator.clear_cache()
    clock.now = T0 + 60.001
    rejected(validator, token, "expired at")


def test_leeway_setting_is_used(issuer, make_validator):
    clock = Clock(T0 + 10)
    token = issuer.mint(now=T0 - 100, expires_in=100)  # exp == T0
    rejected(make_validator(issuer, clock=clock, leeway=0), token, "expired")
    make_validator(issuer, clock=clock, leeway=11).validate_access_token(token)


@pytest.mark.parametrize("exp", ["1900000000", True, False, [T0 + 60], {"t": 1}, float("nan")])
def test_non_numeric_exp(issuer, validator, exp):
    rejected(validator, issuer.mint({"exp": exp}), "exp is not a number")


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [1e20, 2 ** 63, float("inf"), float("-inf"), -1e20, 253402300800])
def test_numeric_dates_outside_the_datetime_range_are_rejected(issuer, validator, claim, value):
    # Python's json accepts Infinity and huge numbers; a signed token carrying
    # them must be refused, not crash Claims.expires_at in the application.
    rejected(validator, issuer.mint({claim: value}), f"{claim} is not a number")


def test_float_exp_accepted(issuer, validator):
    validator.validate_access_token(issuer.mint({"exp": time.time() + 600.5}))


def test_nbf_in_the_future(issuer, clocked):
    validator, clock = clocked
    token = issuer.mint(now=T0, claims={"nbf": T0 + 61})
    rejected(validator, token, "token not valid before 2030-03-17T17:47:41Z")
    ok = issuer.mint(now=T0, claims={"nbf": T0 + 60})  # within the leeway
    validator.validate_access_token(ok)
    clock.now = T0 + 1
    validator.validate_access_token(token)


@pytest.mark.parametrize("nbf", ["0", True, [0]])
def test_non_numeric_nbf(issuer, validator, nbf):
    rejected(validator, issuer.mint({"nbf": nbf}), "nbf is not a number")


def test_iat_in_the_future(issuer, clocked):
    validator, clock = clocked
    rejected(validator, issuer.mint(now=T0, claims={"iat": T0 + 61, "nbf": OMIT}), "issued in the future")
    validator.validate_access_token(issuer.mint(now=T0, claims={"iat": T0 + 60, "nbf": OMIT}))


@pytest.mark.parametrize("iat", ["now", True, None])
def test_non_numeric_iat(issuer, validator, iat):
    token = issuer.mint({"iat": iat})
    if iat is None:
        validator.validate_access_token(token)  # iat is optional for access tokens
    else:
        rejected(validator, token, "iat is not a number")


def test_access_token_without_iat_or_nbf_is_fine(issuer, validator):
    validator.validate_access_token(issuer.mint(omit=("iat", "nbf", "jti", "client_id", "scope", "sub")))


# --- descriptions: informative, and never the token --------------------------------------------------------------


def _failing_tokens(iss, attacker):
    """(name, token) pairs that each fail for a different reason."""
    claims = valid_claims(iss)
    now = int(time.time())
    return [
        ("expired", iss.mint(now=now - 7200, expires_in=60)),
        ("wrong aud", iss.mint(audience="api://other")),
        ("wrong iss", iss.mint(issuer="https://evil.example.com")),
        ("no exp", iss.mint(expires_in=None)),
        ("nbf future", iss.mint({"nbf": now + 3600})),
        ("iat future", iss.mint({"iat": now + 3600})),
        ("bad typ", iss.mint(typ="id_token+jwt")),
        ("crit", iss.mint(header={"crit": ["x"]})),
        ("nested", iss.mint(header={"cty": "JWT"})),
        ("unknown kid", iss.mint(header={"kid": "kid-that-does-not-exist"})),
        ("bad signature", attacker.sign(claims, kid=attacker.signing_kid, header={"kid": iss.signing_kid})),
        ("alg none", forge_token({"alg": "none"}, claims)),
        ("alg none sig", forge_token({"alg": "none"}, claims, signature=b"s" * 64)),
        ("hs256", hmac_token(claims, iss.public_key_pem(), header={"kid": iss.signing_kid})),
        ("es256 on rsa", forge_token({"alg": "ES256", "kid": iss.signing_kid}, claims, signature=b"s" * 64)),
        ("tampered", ".".join([iss.mint().split(".")[0], b64json(dict(claims, sub="root")),
                               iss.mint().split(".")[2]])),
        ("jwe", iss.mint() + "." + "QUJDREVGR0hJSktMTU5PUA" + ".c2VjcmV0"),
        ("4 segments", iss.mint() + ".ZXh0cmE"),
        ("bad base64", iss.mint().replace(".", ".%", 1)),
        ("dup header", b64url_encode(b'{"alg":"RS256","alg":"none","kid":"k"}') + "." + b64json(claims) + ".c2ln"),
        ("too big", iss.mint({"pad": "x" * 20000})),
        ("no sig", ".".join(iss.mint().split(".")[:2]) + "."),
        ("trailing newline", iss.mint() + "\n"),
        ("aud type", iss.mint({"aud": 5})),
        ("exp type", iss.mint({"exp": "tomorrow"})),
    ]


def test_descriptions_never_contain_the_token_or_its_segments(issuer, validator, attacker, caplog):
    caplog.set_level(logging.DEBUG)
    seen = set()
    for name, token in _failing_tokens(issuer, attacker):
        with pytest.raises(OIDCGuardError) as info:
            validator.validate_access_token(token)
        exc = info.value
        seen.add(type(exc))
        texts = [exc.description, str(exc), repr(exc)]
        for text in texts:
            assert token.strip() not in text, name
            for segment in token.strip().split("."):
                if len(segment) >= 8:
                    assert segment not in text, f"{name}: segment echoed in {text!r}"
        assert 10 < len(exc.description) < 300, (name, exc.description)
    assert seen == {InvalidToken}
    # Nor in anything the library logged meanwhile.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for _name, token in _failing_tokens(issuer, attacker):
        for segment in token.split("."):
            if len(segment) >= 20:
                assert segment not in logged


def test_id_token_descriptions_never_contain_the_tokens(issuer, validator):
    access = issuer.mint()
    code = "SplxlOBeZQQYbYS6WxSbIA-code-value"
    token = issuer.mint_id_token("spa", nonce="n-0S6_WzA2Mj", access_token="other", code="other-code")
    for kwargs in ({"nonce": "different-nonce-value"}, {"access_token": access}, {"code": code},
                   {"client_id": "other-client"}):
        kwargs.setdefault("client_id", "spa")
        with pytest.raises(InvalidToken) as info:
            validator.validate_id_token(token, **kwargs)
        desc = info.value.description
        for secret in [token, access, code, "different-nonce-value", "n-0S6_WzA2Mj"] + token.split(".") + access.split("."):
            assert secret not in desc


@pytest.mark.parametrize("make, words", [
    (lambda iss: iss.mint(now=int(time.time()) - 7200, expires_in=60), ["token expired at ", "Z"]),
    (lambda iss: iss.mint(audience="api://x"), ["audience 'api://x' not accepted; expected one of ['api://contacts']"]),
    (lambda iss: iss.mint(header={"kid": "nope"}), ["kid 'nope' not in the issuer's JWKS after refresh"]),
    (lambda iss: iss.mint(issuer="https://evil"), ["issued by 'https://evil', not by the trusted issuer 'http://127.0.0.1:"]),
    (lambda iss: iss.mint(expires_in=None), ["token has no exp claim"]),
    (lambda iss: forge_token({"alg": "none"}, {"sub": "a"}, signature=b"x"), ["unsigned", "never accepted"]),
])
def test_descriptions_are_informative(issuer, validator, make, words):
    rejected(validator, make(issuer), *words)


def test_hostile_kid_and_claims_are_shown_bounded(issuer, validator):
    desc = rejected(validator, issuer.mint(header={"kid": "k" * 5000}))
    assert len(desc) < 200
    desc = rejected(validator, issuer.mint(audience="a" * 5000))
    assert len(desc) < 300
    desc = rejected(validator, issuer.mint(issuer="https://" + "e" * 5000))
    assert len(desc) < 300


def test_only_guard_errors_for_random_garbage(issuer, validator):
    """A small deterministic fuzz: whatever the string, only InvalidToken."""
    import random

    rnd = random.Random(1234)
    genuine = issuer.mint()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i in range(300):
        kind = i % 3
        if kind == 0:
            token = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 120)))
        elif kind == 1:  # mutate one character of a genuine token
            pos = rnd.randrange(len(genuine))
            token = genuine[:pos] + rnd.choice(alphabet) + genuine[pos + 1:]
            if token == genuine:
                continue
        else:  # random JSON-ish header with the genuine rest
            header = {"alg": rnd.choice(["RS256", "none", "HS256", 5, None, "ES256"]),
                      "kid": rnd.choice([issuer.signing_kid, "x", 5, None, [1]]),
                      "typ": rnd.choice(["at+jwt", "JWT", 7, None])}
            token = b64json(header) + "." + ".".join(genuine.split(".")[1:])
        try:
            validator.validate_access_token(token)
        except InvalidToken:
            continue
        except Exception as exc:  # pragma: no cover - this is the failure being hunted
            pytest.fail(f"{type(exc).__name__} for a garbage token (case {i}): {exc}")
        else:
            # The only acceptable success is the genuine token itself (base64 padding bits).
            claims = validator.validate_access_token(token)
            assert dict(claims) == dict(validator.validate_access_token(genuine)), token


# --- ID Tokens (OIDC Core 3.1.3.7 / 3.2.2.11) ---------------------------------------------------------------------


def test_valid_id_token(issuer, validator):
    token = issuer.mint_id_token("spa", nonce="n-0S6", auth_time=int(time.time()) - 10)
    claims = validator.validate_id_token(token, client_id="spa", nonce="n-0S6", max_age=3600)
    assert claims.subject == "alice"
    assert claims["nonce"] == "n-0S6"
    assert claims.audiences == ("spa",)


def test_id_token_audience_must_contain_client_id(issuer, validator):
    rejected_id(validator, issuer.mint_id_token("other-app"), "does not contain client_id 'spa'")
    # The API's own audience setting does not matter for ID Tokens: client_id does.
    rejected_id(validator, issuer.mint_id_token("api://contacts"), "client_id")


def test_id_token_several_audiences_need_azp(issuer, validator):
    token = issuer.mint_id_token("spa", extra={"aud": ["spa", "other"]})
    rejected_id(validator, token, "several audiences but no azp")
    ok = issuer.mint_id_token("spa", extra={"aud": ["spa", "other"], "azp": "spa"})
    validator.validate_id_token(ok, client_id="spa")


@pytest.mark.parametrize("aud", ["spa", ["spa", "other"]])
def test_id_token_azp_must_be_the_client(issuer, validator, aud):
    token = issuer.mint_id_token("spa", extra={"aud": aud, "azp": "other"})
    rejected_id(validator, token, "azp 'other' is not client_id 'spa'")


def test_id_token_azp_equal_to_client_is_fine_with_one_audience(issuer, validator):
    validator.validate_id_token(issuer.mint_id_token("spa", extra={"azp": "spa"}), client_id="spa")


@pytest.mark.parametrize("sub", [OMIT, "", None, 5])
def test_id_token_sub_required(issuer, validator, sub):
    rejected_id(validator, issuer.mint_id_token("spa", extra={"sub": sub}), "no sub claim")


def test_id_token_iat_required(issuer, validator):
    rejected_id(validator, issuer.mint_id_token("spa", extra={"iat": OMIT}), "no iat claim")


def test_id_token_exp_required_and_checked(issuer, validator):
    rejected_id(validator, issuer.mint_id_token("spa", extra={"exp": OMIT}), "no exp claim")
    old = issuer.mint_id_token("spa", now=int(time.time()) - 7200, expires_in=60)
    rejected_id(validator, old, "expired at")


def test_id_token_issuer_checked(issuer, validator):
    rejected_id(validator, issuer.mint_id_token("spa", extra={"iss": issuer.issuer + "/"}), "not by the trusted issuer")


def test_id_token_nonce(issuer, validator):
    token = issuer.mint_id_token("spa", nonce="n-0S6_WzA2Mj")
    validator.validate_id_token(token, client_id="spa", nonce="n-0S6_WzA2Mj")
    rejected_id(validator, token, "nonce does not match", nonce="n-0S6_WzA2Mk")
    rejected_id(validator, token, "nonce does not match", nonce="")
    rejected_id(validator, issuer.mint_id_token("spa"), "has no nonce", nonce="n-0S6_WzA2Mj")
    rejected_id(validator, issuer.mint_id_token("spa", extra={"nonce": 5}), "has no nonce", nonce="5")
    # No nonce asked for: not checked (code flow without nonce).
    validator.validate_id_token(token, client_id="spa")


def test_id_token_at_hash(issuer, validator):
    access = issuer.mint()
    token = issuer.mint_id_token("spa", access_token=access)
    validator.validate_id_token(token, client_id="spa", access_token=access)
    rejected_id(validator, token, "at_hash does not match the access token", access_token=issuer.mint())
    rejected_id(validator, issuer.mint_id_token("spa"), "no at_hash", access_token=access)
    wrong = issuer.mint_id_token("spa", extra={"at_hash": "aW52YWxpZA"})
    rejected_id(validator, wrong, "at_hash does not match", access_token=access)
    # Not asked for: not checked.
    validator.validate_id_token(wrong, client_id="spa")


def test_id_token_c_hash(issuer, validator):
    code = "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
    token = issuer.mint_id_token("spa", code=code)
    validator.validate_id_token(token, client_id="spa", code=code)
    rejected_id(validator, token, "c_hash does not match the code", code=code + "x")
    rejected_id(validator, issuer.mint_id_token("spa"), "no c_hash", code=code)
    # at_hash for the code (or the reverse) must not pass.
    swapped = issuer.mint_id_token("spa", extra={"c_hash": OMIT, "at_hash": "x"}, code=code)
    rejected_id(validator, swapped, "no c_hash", code=code)


def _half_hash(value: str, algo: str) -> str:
    digest = hashlib.new(algo, value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


@pytest.mark.parametrize("alg, algo, wrong", [
    ("RS256", "sha256", "sha384"),
    ("PS384", "sha384", "sha256"),
    ("ES384", "sha384", "sha256"),
    ("ES512", "sha512", "sha256"),
    ("EdDSA", "sha512", "sha256"),  # Ed25519: SHA-512
])
def test_at_hash_and_c_hash_use_the_hash_of_the_alg(make_issuer, make_validator, alg, algo, wrong):
    iss = make_issuer(algs=(alg,))
    validator = make_validator(iss)
    access, code = "access-token-value", "the-code"
    right = iss.mint_id_token("spa", extra={"at_hash": _half_hash(access, algo), "c_hash": _half_hash(code, algo)})
    validator.validate_id_token(right, client_id="spa", access_token=access, code=code)
    bad = iss.mint_id_token("spa", extra={"at_hash": _half_hash(access, wrong), "c_hash": _half_hash(code, wrong)})
    rejected_id(validator, bad, "at_hash", access_token=access)
    rejected_id(validator, bad, "c_hash", code=code)


def test_at_hash_example_from_oidc_core(make_issuer, make_validator):
    # OIDC Core A.3/A.4 style check against an independently computed value:
    # SHA-256 of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", left half, base64url.
    iss = make_issuer(algs=("RS256",))
    access = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    token = iss.mint_id_token("spa", extra={"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"})
    make_validator(iss).validate_id_token(token, client_id="spa", access_token=access)


def test_max_age_with_auth_time(issuer, make_validator):
    clock = Clock()
    validator = make_validator(issuer, clock=clock)
    fresh = issuer.mint_id_token("spa", now=T0, auth_time=T0 - 100)
    validator.validate_id_token(fresh, client_id="spa", max_age=3600)
    old = issuer.mint_id_token("spa", now=T0, auth_time=T0 - 3600 - 61)
    rejected_id(validator, old, "older than max_age 3600 s", max_age=3600)
    boundary = issuer.mint_id_token("spa", now=T0, auth_time=T0 - 3600 - 60)  # within leeway
    validator.validate_id_token(boundary, client_id="spa", max_age=3600)
    missing = issuer.mint_id_token("spa", now=T0)
    rejected_id(validator, missing, "no auth_time, but max_age was requested", max_age=3600)
    rejected_id(validator, issuer.mint_id_token("spa", now=T0, extra={"auth_time": "yesterday"}),
                "no auth_time", max_age=3600)
    # max_age not requested: auth_time not needed.
    validator.validate_id_token(missing, client_id="spa")
    validator.validate_id_token(old, client_id="spa")
    # max_age=0: authentication must be "now" (within leeway).
    validator.validate_id_token(issuer.mint_id_token("spa", now=T0, auth_time=T0), client_id="spa", max_age=0)


def test_id_token_signature_and_alg_rules_apply(issuer, validator, attacker):
    claims = {"iss": issuer.issuer, "sub": "alice", "aud": "spa", "iat": int(time.time()),
              "exp": int(time.time()) + 600}
    rejected_id(validator, forge_token({"alg": "none"}, claims))
    rejected_id(validator, hmac_token(claims, issuer.public_key_pem(), header={"kid": issuer.signing_kid}),
                "symmetric")
    forged = attacker.sign(claims, kid=attacker.signing_kid, header={"kid": issuer.signing_kid}, typ="JWT")
    rejected_id(validator, forged, "signature is invalid")


# --- the key set behind the validator, over real HTTP ----------------------------------------------------------------


class Timer:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _with_timer(validator):
    """Drive the validator's key set with a fake monotonic timer (white-box)."""
    timer = Timer()
    validator.keys._timer = timer
    return timer


@pytest.mark.parametrize("max_age, fresh_for", [(600, 600), (5, 60), (None, 3600), (10 ** 9, 86400)])
def test_jwks_cache_control_max_age_honoured_and_clamped(issuer, make_validator, max_age, fresh_for):
    issuer.jwks_max_age = max_age
    validator = make_validator(issuer, cache_size=0)
    timer = _with_timer(validator)
    token = issuer.mint()
    validator.validate_access_token(token)
    timer.now += fresh_for - 1
    validator.validate_access_token(token)
    assert issuer.fetch_counts["jwks"] == 1
    timer.now += 2
    validator.validate_access_token(token)
    assert issuer.fetch_counts["jwks"] == 2


def test_rotation_new_kid_is_picked_up_at_once(issuer, validator):
    validator.validate_access_token(issuer.mint())
    new_kid = issuer.rotate()
    claims = validator.validate_access_token(issuer.mint())
    assert claims.header["kid"] == new_kid
    assert issuer.fetch_counts["jwks"] == 2
    # Tokens signed with the old (still published) key keep working without a fetch.
    old_kid = issuer.kids[0]
    validator.validate_access_token(issuer.mint(kid=old_kid))
    assert issuer.fetch_counts["jwks"] == 2


def test_unknown_kid_refetch_at_most_once_per_cooldown(issuer, validator):
    validator.validate_access_token(issuer.mint())
    for i in range(30):
        rejected(validator, issuer.mint(header={"kid": f"forged-{i}"}), "not in the issuer's JWKS")
    assert issuer.fetch_counts["jwks"] == 2
    # A key published during the cooldown is not found until it ends (default 30 s).
    hidden = issuer.add_key("RS256", publish=False)
    issuer.publish(hidden)
    rejected(validator, issuer.mint(kid=hidden), "cooldown")
    assert issuer.fetch_counts["jwks"] == 2


def test_unknown_kid_refetch_again_after_the_cooldown(issuer, make_validator):
    validator = make_validator(issuer, jwks_cooldown=0.3)
    validator.validate_access_token(issuer.mint())
    rejected(validator, issuer.mint(header={"kid": "forged-1"}))
    assert issuer.fetch_counts["jwks"] == 2
    new_kid = issuer.rotate()
    rejected(validator, issuer.mint(), "cooldown")
    time.sleep(0.35)
    assert validator.validate_access_token(issuer.mint()).header["kid"] == new_kid
    assert issuer.fetch_counts["jwks"] == 3


def test_first_fetch_does_not_start_the_cooldown(issuer, validator):
    old = issuer.mint()
    validator.validate_access_token(old)  # cold: the first fetch
    issuer.rotate()
    validator.validate_access_token(issuer.mint())  # immediately: refetch allowed
    assert issuer.fetch_counts["jwks"] == 2


def test_last_known_good_keys_while_the_jwks_answers_500(issuer, make_validator, caplog):
    validator = make_validator(issuer, cache_size=0)
    timer = _with_timer(validator)
    token = issuer.mint()
    validator.validate_access_token(token)
    issuer.set_fault("jwks", status=500)
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    timer.now += 3601  # the cached JWKS is stale: every use tries to refresh
    for _ in range(3):
        assert validator.validate_access_token(token).subject == "alice"
        assert validator.validate_access_token(issuer.mint()).subject == "alice"
        timer.now += 6  # past the retry interval
    assert issuer.fetch_counts["jwks"] == 4  # it did try, and failed
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "last-known-good" in warnings[0] and "HTTP 500" in warnings[0]
    # An unknown kid while the provider fails is the provider's problem: 503, not 401.
    rejected(validator, issuer.mint(header={"kid": "new-kid"}), "HTTP 500", cls=ProviderError)


def test_no_keys_at_all_is_a_provider_error(issuer, validator):
    token = issuer.mint()
    for kid in issuer.kids:
        issuer.remove_key(kid)
    rejected(validator, token, "no usable signing keys", cls=ProviderError)


def test_jwks_with_only_unusable_keys_is_a_provider_error(issuer, validator):
    token = issuer.mint()
    issuer.jwk_overrides[issuer.signing_kid] = {"use": "enc"}
    rejected(validator, token, "no usable signing keys", cls=ProviderError)


def test_token_without_kid_and_exactly_one_key(issuer, validator):
    assert validator.validate_access_token(issuer.mint(header={"kid": OMIT})).subject == "alice"


def test_token_without_kid_and_one_fitting_key_among_others(multi, make_validator):
    validator = make_validator(multi)
    validator.validate_access_token(multi.mint(alg="ES256", header={"kid": OMIT}))
    validator.validate_access_token(multi.mint(alg="RS256", header={"kid": OMIT}))


def test_token_without_kid_and_two_fitting_keys_fails(issuer, validator):
    issuer.add_key("RS256")
    rejected(validator, issuer.mint(header={"kid": OMIT}), "has no kid", "2 keys for RS256")


@pytest.mark.parametrize("kid", [5, ["a"], {"k": 1}, True])
def test_non_string_kid_rejected(issuer, validator, kid):
    rejected(validator, issuer.mint(header={"kid": kid}), "kid is not a string")


def test_jwks_fault_responses_are_provider_errors(issuer, make_validator):
    for fault in ({"status": 500}, {"body": "<html/>", "content_type": "text/html"}, {"body": "[]"},
                  {"body": {"keys": "x"}}):
        issuer.set_fault("jwks", **fault)
        rejected(make_validator(issuer), issuer.mint(), cls=ProviderError)


def test_slow_jwks_is_bounded_by_http_timeout(issuer, make_validator):
    issuer.set_fault("jwks", delay=5)
    validator = make_validator(issuer, http_timeout=0.5)
    started = time.monotonic()
    rejected(validator, issuer.mint(), "timed out", cls=ProviderError)
    assert time.monotonic() - started < 1.5


# --- threads --------------------------------------------------------------------------------------------------------------


def _in_threads(n, work):
    barrier = threading.Barrier(n)
    outcomes = [None] * n

    def run(i):
        barrier.wait()
        try:
            outcomes[i] = work(i)
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_ten_threads_on_a_cold_validator_fetch_the_jwks_at_most_twice(issuer, make_validator):
    issuer.set_fault("jwks", delay=0.3)  # keep the first fetch in flight while the others arrive
    validator = make_validator(issuer)
    tokens = [issuer.mint(subject=f"user{i}") for i in range(10)]
    outcomes = _in_threads(10, lambda i: validator.validate_access_token(tokens[i]))
    assert [getattr(o, "subject", o) for o in outcomes] == [f"user{i}" for i in range(10)]
    assert issuer.fetch_counts["jwks"] <= 2
    assert issuer.fetch_counts["discovery"] <= 2


def test_burst_of_200_unknown_kid_tokens_fetches_at_most_twice(issuer, make_validator):
    issuer.set_fault("jwks", delay=0.1)
    validator = make_validator(issuer)
    tokens = [issuer.mint(header={"kid": f"forged-{i}"}) for i in range(200)]

    def work(t):
        results = []
        for token in tokens[t::20]:
            try:
                validator.validate_access_token(token)
                results.append("accepted")
            except OIDCGuardError as exc:
                results.append(type(exc).__name__)
        return results

    outcomes = _in_threads(20, work)
    flat = [r for chunk in outcomes for r in chunk]
    assert len(flat) == 200
    assert set(flat) == {"InvalidToken"}
    assert issuer.fetch_counts["jwks"] <= 2


def test_threads_during_an_outage_all_get_provider_errors(issuer, make_validator):
    issuer.set_fault("jwks", status=503, delay=0.2)
    validator = make_validator(issuer)
    token = issuer.mint()
    outcomes = _in_threads(10, lambda i: validator.validate_access_token(token))
    assert all(isinstance(o, ProviderError) for o in outcomes), outcomes
    assert issuer.fetch_counts["jwks"] <= 2


# --- the verified-token cache ------------------------------------------------------------------------------------------------


def test_cache_hit_returns_the_same_claims_without_work(issuer, validator):
    token = issuer.mint()
    first = validator.validate_access_token(token)
    counts = issuer.fetch_counts
    assert validator.validate_access_token(token) is first
    assert issuer.fetch_counts == counts


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_one_character_altered_token_is_not_served_from_the_cache(issuer, validator, segment):
    token = issuer.mint()
    validator.validate_access_token(token)
    parts = token.split(".")
    middle = len(parts[segment]) // 2
    ch = parts[segment][middle]
    parts[segment] = parts[segment][:middle] + ("A" if ch != "A" else "B") + parts[segment][middle + 1:]
    with pytest.raises(InvalidToken):
        validator.validate_access_token(".".join(parts))
    # And the genuine token is still fine.
    validator.validate_access_token(token)


def test_cached_token_expires_at_exp(issuer, make_validator):
    clock = Clock()
    validator = make_validator(issuer, clock=clock)
    token = issuer.mint(now=T0, expires_in=100)
    first = validator.validate_access_token(token)
    clock.now = T0 + 100 + 60  # exp + leeway: still valid, from the cache
    assert validator.validate_access_token(token) is first
    clock.now = T0 + 100 + 60.5
    rejected(validator, token, "expired at")
    # Expired stays expired (the entry is gone, not resurrected).
    rejected(validator, token, "expired at")


def test_cached_token_not_served_before_nbf(issuer, make_validator):
    clock = Clock()
    validator = make_validator(issuer, clock=clock)
    token = issuer.mint(now=T0, claims={"nbf": T0 + 30})
    validator.validate_access_token(token)
    clock.now = T0 - 100  # a clock that went backwards must not bypass nbf via the cache
    rejected(validator, token, "not valid before")


def test_cache_size_zero_works(issuer, make_validator):
    validator = make_validator(issuer, cache_size=0)
    token = issuer.mint()
    a = validator.validate_access_token(token)
    b = validator.validate_access_token(token)
    assert a is not b and dict(a) == dict(b)
    rejected(validator, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_cache_entry_dropped_when_its_key_leaves_the_jwks(issuer, make_validator):
    validator = make_validator(issuer, jwks_cooldown=0.1)
    old_kid = issuer.signing_kid
    old_token = issuer.mint()
    validator.validate_access_token(old_token)
    new_kid = issuer.rotate()
    issuer.remove_key(old_kid)
    # A token with the new kid makes the validator refetch; the old key is gone.
    validator.validate_access_token(issuer.mint(kid=new_kid))
    assert len(validator._cache) == 1
    rejected(validator, old_token, "not in the issuer's JWKS")


def test_cache_is_not_shared_between_validators_with_different_audiences(issuer, make_validator):
    token = issuer.mint(audience="api://contacts")
    make_validator(issuer, audience="api://contacts").validate_access_token(token)
    rejected(make_validator(issuer, audience="api://other"), token, "not accepted")


def test_cache_hit_requires_the_key_to_be_live(issuer, validator):
    # Race guard: an entry stored just after its key left the JWKS (and after
    # the purge) must still not be served.  White-box: drop the key from the
    # live set without the purge, then check the entry is re-verified.
    token = issuer.mint()
    first = validator.validate_access_token(token)
    assert validator.validate_access_token(token) is first
    validator.keys.live = frozenset()
    assert validator.validate_access_token(token) is not first


# --- canonical base64url (RFC 4648 section 3.5) -------------------------------------------

_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _flip_pad_bit(segment):
    """Change only the unused low bit of the last character (same bytes when decoded loosely)."""
    return segment[:-1] + _ALPHA[_ALPHA.index(segment[-1]) ^ 1]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_non_canonical_spelling_of_a_valid_token_is_refused(issuer, validator, which):
    parts = None
    for n in range(40):  # find a token whose chosen segment has pad bits (length not a multiple of 4)
        token = issuer.mint({"jti": "pad-%d" % n}, header={"x-pad": "a" * n})
        parts = token.split(".")
        if len(parts[which]) % 4:
            break
    else:
        pytest.skip("no token with pad bits in that segment")
    validator.validate_access_token(token)  # the canonical spelling is fine
    parts[which] = _flip_pad_bit(parts[which])
    rejected(validator, ".".join(parts), "not valid base64url")


# --- a token from another issuer: refused before any key lookup (issue 9) -------------


def test_foreign_issuer_refused_without_any_network_request(issuer, make_validator):
    """docs/multi-issuer.md, "How the issuer is chosen": no JWKS refetch, and for a
    fresh validator not even the first discovery/JWKS fetch."""
    with LocalIssuer() as other:
        foreign = other.mint(audience=issuer.audience)  # other key, other kid, other iss
    validator = make_validator(issuer)
    issuer.reset_counts()
    for _ in range(5):
        rejected(validator, foreign, f"access token issued by {other.issuer!r}, not by the trusted issuer "
                                     f"{issuer.issuer!r}")
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}
    validator.validate_access_token(issuer.mint())  # warm
    issuer.reset_counts()
    for _ in range(5):
        rejected(validator, foreign, "not by the trusted issuer")
    assert issuer.fetch_counts == {"discovery": 0, "jwks": 0}  # no unknown-kid refetch


def test_foreign_issuer_value_is_quoted_and_bounded(issuer, validator):
    hostile = 'https://x/\r\nX-Evil: 1"' + "a" * 5000
    token = issuer.mint(issuer=hostile)
    with pytest.raises(InvalidToken) as info:
        validator.validate_access_token(token)
    desc = info.value.description
    assert len(desc) < 300 and "\r" not in desc and "\n" not in desc
    assert token not in desc and token.split(".")[1] not in desc
    rejected(validator, issuer.mint(issuer=5), "issued by 5, not by the trusted issuer")


def test_unverified_iss_never_accepts(issuer, validator):
    """The right iss does not help a token that is not signed by our key:
    the signature is verified as before."""
    good = issuer.mint()
    h, p, s = good.split(".")
    tampered = ".".join([h, p, s[:-4] + ("AAAA" if s[-4:] != "AAAA" else "BBBB")])
    rejected(validator, tampered, "signature is invalid")
    with LocalIssuer() as other:
        # another key claiming our iss, with a kid our JWKS does not have
        rejected(validator, other.mint(issuer=issuer.issuer), "not in the issuer's JWKS")


def test_missing_iss_goes_the_normal_path(issuer, validator):
    # signature first (it is valid here), then the iss rule: no iss claim
    rejected(validator, issuer.mint(omit=("iss",)), "token has no iss claim")
    with LocalIssuer() as other:
        # not our key and no iss: the key lookup decides, as before
        rejected(validator, other.mint(omit=("iss",)), "not in the issuer's JWKS")


def test_foreign_issuer_id_token(issuer, validator):
    with LocalIssuer() as other:
        token = other.mint_id_token("spa")
    issuer.reset_counts()
    rejected_id(validator, token, f"ID Token issued by {other.issuer!r}, not by the trusted issuer")
    assert issuer.fetch_counts["jwks"] == 0


# --- verify_audience=False and ID Tokens (issue 9; RFC 9068 section 4) ----------------


@pytest.mark.parametrize("claim", ["nonce", "at_hash", "c_hash"])
def test_without_audience_check_an_id_token_is_not_an_access_token(issuer, claim):
    validator = TokenValidator(issuer.issuer, audience=None, verify_audience=False, http_timeout=2)
    rejected(validator, issuer.mint({claim: "x"}),
             f"this looks like an ID Token (it has {claim!r}); an ID Token is not an access token (RFC 9068 section 4)")


def test_without_audience_check_a_real_id_token_is_refused(issuer):
    validator = TokenValidator(issuer.issuer, audience=None, verify_audience=False, http_timeout=2)
    id_token = issuer.mint_id_token("spa", nonce="n-0S6_WzA2Mj", access_token=issuer.mint())
    rejected(validator, id_token, "this looks like an ID Token")
    # the same ID Token is fine where an ID Token is expected
    validator.validate_id_token(id_token, client_id="spa", nonce="n-0S6_WzA2Mj")


def test_without_audience_check_at_jwt_access_tokens_still_pass(issuer):
    validator = TokenValidator(issuer.issuer, audience=None, verify_audience=False, http_timeout=2)
    assert validator.validate_access_token(issuer.mint(typ="at+jwt")).subject == "alice"
    assert validator.validate_access_token(issuer.mint(typ="JWT")).subject == "alice"
    assert validator.validate_access_token(issuer.mint(typ=None)).subject == "alice"


@pytest.mark.parametrize("typ", ["id_token+jwt", "application/id_token+jwt", "logout+jwt"])
def test_an_id_token_typ_is_refused_in_every_mode(issuer, validator, typ):
    loose = TokenValidator(issuer.issuer, audience=None, verify_audience=False, http_timeout=2)
    for v in (validator, loose):
        rejected(v, issuer.mint(typ=typ), "has typ")


def test_with_audience_check_nonce_in_an_access_token_is_allowed(issuer, validator):
    # The audience already tells the kinds apart; some providers put a nonce
    # in access tokens, and nothing is gained by refusing them here.
    assert validator.validate_access_token(issuer.mint({"nonce": "n"})).subject == "alice"


@pytest.mark.parametrize("raw", [
    b'{"a":1,"b":[1,{"c":null}],"d":"x"}', b' {"a":1}', b'{"a":1} ', b'{"a":1}\n', b'\t{"a":1}\r\n',
    b'{}', b'{"a":1}x', b'{"a":1}{}', b'{"a": x}', b'{"a":[1,}', b'{', b'{"a":1', b'{"a":1,"a":2}',
    b' {"a":{"b":1,"b":2}} ', b'{"a":NaN}', b"[1]", b'"s"', b"", b"  ", b'{"a":"\\ud800"}',
])
def test_json_segment_parse_is_json_decoder_decode(raw):
    # _parse_json_object parses a segment starting with "{" with the C scanner
    # alone and falls back to JSONDecoder.decode for anything else: it must
    # accept, return and refuse exactly what decode() does.
    from oidc_guard.errors import InvalidToken
    from oidc_guard.validator import _json_decoder, _parse_json_object

    try:
        expected = _json_decoder.decode(raw.decode("utf-8"))
    except ValueError as exc:
        words = "duplicate member" if str(exc).startswith("duplicate member") else "is not valid JSON"
        with pytest.raises(InvalidToken, match=words):
            _parse_json_object(raw, "payload")
        return
    if not isinstance(expected, dict):
        with pytest.raises(InvalidToken, match="is not a JSON object"):
            _parse_json_object(raw, "payload")
        return
    got = _parse_json_object(raw, "payload")
    assert got == expected and type(got) is dict
