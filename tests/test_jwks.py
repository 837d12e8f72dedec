"""The key set (oidc_guard.jwks): JWK parsing, key/alg fit, signature
verification, and KeySet's cache policy (TTL, rotation, cooldown,
single-flight, last-known-good).

KeySet is driven here with an in-memory fetch function and a fake timer so
time-based rules are tested exactly; the same rules over real HTTP are in
test_validator.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from oidc_guard.errors import InvalidToken, ProviderError
from oidc_guard.jwks import SUPPORTED_ALGORITHMS, KeySet, _max_age, parse_jwk, parse_jwks
from oidc_guard.testing import LocalIssuer, b64url_decode, b64url_encode

# --- key material (LocalIssuer's key pool: no key generation per test) ------------


@pytest.fixture(scope="module")
def kit():
    """An unstarted LocalIssuer used only as a key ring and signer."""
    iss = LocalIssuer(algs=("RS256", "ES256", "ES384", "ES512", "EdDSA"))
    iss.rsa2 = iss.add_key("RS256")  # a second, distinct RSA key
    return iss


def kid_for(kit, alg):
    return next(k for k in kit.kids if kit.key_alg(k) == alg)


def bare_jwk(kit, key_alg, **changes):
    """The public JWK of the kit's key for ``key_alg`` without alg/use/kid unless given."""
    jwk = dict(kit.public_jwk(kid_for(kit, key_alg)))
    for name in ("alg", "use", "kid"):
        jwk.pop(name)
    jwk.update(changes)
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.fixture(scope="module")
def small_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _int_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def split(token):
    h, p, s = token.split(".")
    return (h + "." + p).encode("ascii"), b64url_decode(s)


# --- parse_jwk: what is loaded ---------------------------------------------------


@pytest.mark.parametrize("alg, kty, crv", [
    ("RS256", "RSA", None), ("ES256", "EC", "P-256"), ("ES384", "EC", "P-384"),
    ("ES512", "EC", "P-521"), ("EdDSA", "OKP", "Ed25519"),
])
def test_parse_supported_keys(kit, alg, kty, crv):
    jwk = kit.public_jwk(kid_for(kit, alg))
    key = parse_jwk(jwk)
    assert (key.kid, key.kty, key.crv, key.alg) == (jwk["kid"], kty, crv, alg)
    assert key.fits(alg)
    assert len(key.fingerprint) == 43  # base64url SHA-256 (RFC 7638)


def test_rfc7638_thumbprint_of_the_rfc_example():
    # RFC 7638 section 3.1 example key and its published thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
         "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7"
         "d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-"
         "csFCur-kEgU8awapJzKnqDKgw")
    key = parse_jwk({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    assert key.fingerprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_fingerprint_identifies_key_material_not_kid(kit):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    assert parse_jwk(dict(jwk, kid="other")).fingerprint == parse_jwk(jwk).fingerprint
    assert parse_jwk(kit.public_jwk(kit.rsa2)).fingerprint != parse_jwk(jwk).fingerprint


def test_keys_without_alg_use_kid_are_accepted(kit):
    key = parse_jwk(bare_jwk(kit, "RS256"))
    assert key.kid is None and key.alg is None


@pytest.mark.parametrize("ops", [["verify"], ["sign", "verify"]])
def test_key_ops_with_verify_accepted(kit, ops):
    assert parse_jwk(bare_jwk(kit, "ES256", key_ops=ops)).fits("ES256")


# --- parse_jwk: what is refused --------------------------------------------------


def refused(jwk, *words):
    with pytest.raises(ValueError) as info:
        parse_jwk(jwk)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("use", ["enc", "SIG", ""])
def test_use_other_than_sig_refused(kit, use):
    refused(bare_jwk(kit, "RS256", use=use), "use")


@pytest.mark.parametrize("ops", [["encrypt"], ["sign"], [], "verify", {"verify": True}])
def test_key_ops_without_verify_refused(kit, ops):
    refused(bare_jwk(kit, "RS256", key_ops=ops), "key_ops")


@pytest.mark.parametrize("alg", ["HS256", "none", "RSA-OAEP", "ES256K", "rs256"])
def test_jwk_alg_outside_the_allow_list_refused(kit, alg):
    refused(bare_jwk(kit, "RS256", alg=alg), "alg")


@pytest.mark.parametrize("key_alg, jwk_alg", [("RS256", "ES256"), ("ES256", "RS256"), ("ES256", "ES384"),
                                              ("EdDSA", "ES256"), ("ES384", "EdDSA")])
def test_jwk_alg_that_does_not_fit_its_key_type_refused(kit, key_alg, jwk_alg):
    refused(bare_jwk(kit, key_alg, alg=jwk_alg), "does not fit")


def test_rsa_below_2048_bits_refused(small_rsa):
    numbers = small_rsa.public_key().public_numbers()
    refused({"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}, "1024 bits", "2048")


def test_rsa_of_2047_bits_refused(kit):
    n = kit.public_key(kid_for(kit, "RS256")).public_numbers().n >> 1
    refused({"kty": "RSA", "n": _int_b64(n), "e": "AQAB"}, "2047 bits")


@pytest.mark.parametrize("e", [1, 2, 4, 65536])
def test_rsa_bad_exponent_refused(kit, e):
    n = kit.public_key(kid_for(kit, "RS256")).public_numbers().n
    refused({"kty": "RSA", "n": _int_b64(n), "e": _int_b64(e)}, "exponent")


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ec_point_not_on_the_curve_refused(kit, alg):
    jwk = bare_jwk(kit, alg)
    y = bytearray(b64url_decode(jwk["y"]))
    y[-1] ^= 1  # (x, y') is not on the curve
    jwk["y"] = b64url_encode(bytes(y))
    refused(jwk)


def test_ec_coordinates_of_wrong_length_refused(kit):
    jwk = bare_jwk(kit, "ES256")
    jwk["x"] = b64url_encode(b"\x00" + b64url_decode(jwk["x"]))
    refused(jwk, "32 bytes")


@pytest.mark.parametrize("crv", ["secp256k1", "P-192", None, "Ed25519"])
def test_unsupported_ec_curve_refused(kit, crv):
    refused(bare_jwk(kit, "ES256", crv=crv), "curve")


@pytest.mark.parametrize("crv", ["X25519", "Ed448", None])
def test_unsupported_okp_curve_refused(kit, crv):
    refused(bare_jwk(kit, "EdDSA", crv=crv), "curve")


def test_ed25519_key_of_wrong_length_refused(kit):
    jwk = bare_jwk(kit, "EdDSA")
    jwk["x"] = b64url_encode(b64url_decode(jwk["x"])[:31])
    refused(jwk, "32 bytes")


def test_oct_keys_never_loaded():
    refused({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"})
    refused({"kty": "oct", "k": "c2VjcmV0"}, "symmetric")
    refused({"kty": "oct"}, "oct")


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi"])
def test_private_rsa_material_refused(kit, member):
    refused(bare_jwk(kit, "RS256", **{member: "AQAB"}), "private")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_private_ec_and_okp_material_refused(kit, alg):
    refused(bare_jwk(kit, alg, d="AQAB"), "private")


@pytest.mark.parametrize("jwk, word", [
    ("not a dict", "not an object"),
    ({"kty": "RSA", "n": "%%%", "e": "AQAB"}, ""),
    ({"kty": "RSA", "e": "AQAB"}, "n missing"),
    ({"kty": "RSA", "n": 5, "e": "AQAB"}, "n missing"),
    ({"kty": "DSA"}, "unsupported kty"),
    ({}, "unsupported kty"),
    ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "32 bytes"),
])
def test_malformed_jwks_refused(jwk, word):
    refused(jwk, word)


def test_non_string_kid_refused(kit):
    refused(bare_jwk(kit, "RS256", kid=5), "kid")


def test_parse_jwk_only_raises_value_error_on_garbage():
    # A hostile JWKS must never make the parser raise anything else.
    for jwk in [{"kty": "RSA", "n": "AA", "e": "AA"}, {"kty": "RSA", "n": "_" * 400, "e": "A"},
                {"kty": "EC", "crv": "P-521", "x": "A" * 88, "y": "A" * 88},
                {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}, {"kty": ["RSA"]}, {"kty": None},
                {"kty": "RSA", "n": "AQAB", "e": "AQAB", "key_ops": None, "use": None}]:
        try:
            parse_jwk(jwk)
        except ValueError:
            pass


def test_parse_jwks_skips_unusable_keys_and_says_why(kit):
    good = kit.public_jwk(kid_for(kit, "ES256"))
    keys, skipped = parse_jwks({"keys": [
        good,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        dict(good, use="enc", kid="enc"),
        "junk",
    ]})
    assert [k.kid for k in keys] == [good["kid"]]
    assert len(skipped) == 3
    assert "'hmac'" in skipped[0]
    assert "'enc'" in skipped[1] and "use" in skipped[1]


@pytest.mark.parametrize("doc", [None, [], {"keys": {}}, {"keys": None}, {"key": []}, "keys"])
def test_parse_jwks_needs_a_keys_array(doc):
    with pytest.raises(ValueError):
        parse_jwks(doc)


# --- fit between key and alg (RFC 7518 3.1) -----------------------------------------


@pytest.mark.parametrize("key_alg, fits", [
    ("RS256", {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    ("ES256", {"ES256"}),
    ("ES384", {"ES384"}),
    ("ES512", {"ES512"}),
    ("EdDSA", {"EdDSA"}),
])
def test_key_type_fits_only_its_algs(kit, key_alg, fits):
    key = parse_jwk(bare_jwk(kit, key_alg))
    for alg in SUPPORTED_ALGORITHMS + ("HS256", "none", "ES256K"):
        assert key.fits(alg) is (alg in fits), alg


def test_jwk_alg_restricts_the_key_to_that_alg(kit):
    key = parse_jwk(bare_jwk(kit, "RS256", alg="RS256"))
    assert key.fits("RS256")
    assert not key.fits("PS256") and not key.fits("RS512")


# --- signature verification -----------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_verify_good_and_tampered_signatures(kit, alg):
    kid = kid_for(kit, alg)
    key = parse_jwk(kit.public_jwk(kid))
    data, sig = split(kit.sign({"sub": "a"}, kid=kid))
    assert key.verify(alg, data, sig) is True
    assert key.verify(alg, data + b"x", sig) is False
    bad = bytearray(sig)
    bad[len(bad) // 2] ^= 0x01
    assert key.verify(alg, data, bytes(bad)) is False
    assert key.verify(alg, data, b"") is False


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "PS384", "PS512"])
def test_verify_other_rsa_algs(kit, alg):
    from oidc_guard.testing import _sign  # the issuer's signer, for a non-default alg

    kid = kid_for(kit, "RS256")
    key = parse_jwk(bare_jwk(kit, "RS256"))
    data = b"header.payload"
    sig = _sign(kit.private_key(kid), alg, data)
    assert key.verify(alg, data, sig) is True
    other = "RS256" if alg != "RS256" else "RS384"
    assert key.verify(other, data, sig) is False  # alg is part of what is verified


def test_signature_by_another_key_of_same_type_fails(kit):
    data, sig = split(kit.sign({"sub": "a"}, kid=kid_for(kit, "RS256")))
    other = parse_jwk(kit.public_jwk(kit.rsa2))
    assert other.verify("RS256", data, sig) is False


@pytest.mark.parametrize("alg, size", [("ES256", 32), ("ES384", 48), ("ES512", 66)])
def test_ecdsa_psychic_signature_zero_r_s_fails(kit, alg, size):
    # CVE-2022-21449: r = s = 0 must never verify.
    key = parse_jwk(bare_jwk(kit, alg))
    assert key.verify(alg, b"anything", b"\x00" * (2 * size)) is False


def test_ecdsa_der_signature_instead_of_raw_fails(kit):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    kid = kid_for(kit, "ES256")
    der = kit.private_key(kid).sign(b"data", ec.ECDSA(hashes.SHA256()))
    assert parse_jwk(bare_jwk(kit, "ES256")).verify("ES256", b"data", der) is False


# --- Cache-Control max-age -----------------------------------------------------------------


@pytest.mark.parametrize("header, expected", [
    (None, None), ("", None), ("max-age=600", 600.0), ("public, max-age=60", 60.0),
    ('max-age="120"', 120.0), ("MAX-AGE=7", 7.0), ("no-store", 0.0), ("no-cache, max-age=600", 0.0),
    ("max-age=abc", None), ("private", None),
])
def test_max_age_parsing(header, expected):
    assert _max_age(header) == expected


# --- KeySet ------------------------------------------------------------------------------


class FakeTimer:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeFetch:
    """The JWKS endpoint as a function: counts calls, can fail or be slow."""

    def __init__(self, keys, cache_control=None):
        self.doc = {"keys": list(keys)}
        self.cache_control = cache_control
        self.calls = 0
        self.error = None
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.doc, self.cache_control


@pytest.fixture
def timer():
    return FakeTimer()


def make_set(fetch, timer, **kwargs):
    return KeySet(fetch, timer=timer, **kwargs)


def test_first_use_fetches_once_then_serves_from_memory(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    ks = make_set(fetch, timer)
    assert fetch.calls == 0  # lazy
    for _ in range(5):
        assert ks.get(jwk["kid"], "RS256").kid == jwk["kid"]
    assert fetch.calls == 1
    assert ks.fetch_count == 1


@pytest.mark.parametrize("cache_control, fresh_until", [
    (None, 3600),  # default 1 h
    ("max-age=600", 600),  # honoured
    ("max-age=5", 60),  # clamped up to min_ttl
    ("no-store", 60),  # clamped up to min_ttl
    ("max-age=999999999", 86400),  # clamped down to max_ttl
])
def test_cache_lifetime_from_cache_control(kit, timer, cache_control, fresh_until):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk], cache_control)
    ks = make_set(fetch, timer)
    ks.get(jwk["kid"], "RS256")
    timer.now += fresh_until - 1
    ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 1
    timer.now += 2
    ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 2


def test_rotation_new_kid_picked_up_at_once(kit, timer):
    old = kit.public_jwk(kid_for(kit, "RS256"))
    new = kit.public_jwk(kit.rsa2)
    fetch = FakeFetch([old])
    ks = make_set(fetch, timer)
    ks.get(old["kid"], "RS256")
    fetch.doc = {"keys": [old, new]}  # the issuer rotates
    # Same instant: the first (cold) fetch did not start a cooldown.
    assert ks.get(new["kid"], "RS256").kid == new["kid"]
    assert fetch.calls == 2


def test_unknown_kid_on_a_cold_set_fetches_once_and_starts_no_cooldown(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    ks = make_set(fetch, timer)
    with pytest.raises(InvalidToken) as info:
        ks.get("forged", "RS256")
    # The call that made the first fetch has just seen the JWKS: no second fetch.
    assert "kid 'forged' not in the issuer's JWKS after refresh" == info.value.description
    assert fetch.calls == 1
    # The first fetch started no cooldown: the next unknown kid refetches at once.
    with pytest.raises(InvalidToken):
        ks.get("forged-again", "RS256")
    assert fetch.calls == 2


def test_unknown_kid_refetch_at_most_once_per_cooldown(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    ks = make_set(fetch, timer, cooldown=30)
    ks.get(jwk["kid"], "RS256")
    with pytest.raises(InvalidToken):
        ks.get("forged-1", "RS256")
    assert fetch.calls == 2
    for i in range(50):
        timer.now += 0.5  # 25 s in all: still inside the cooldown
        with pytest.raises(InvalidToken) as info:
            ks.get(f"forged-{i}", "RS256")
        assert "cooldown" in info.value.description
    assert fetch.calls == 2
    # A key that really appears during the cooldown is picked up after it.
    fetch.doc = {"keys": [jwk, kit.public_jwk(kit.rsa2)]}
    with pytest.raises(InvalidToken):
        ks.get(kit.rsa2, "RS256")
    timer.now += 5.1
    assert ks.get(kit.rsa2, "RS256").kid == kit.rsa2
    assert fetch.calls == 3


def test_known_kids_still_work_during_the_cooldown(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    ks = make_set(fetch, timer)
    ks.get(jwk["kid"], "RS256")
    with pytest.raises(InvalidToken):
        ks.get("forged", "RS256")
    assert ks.get(jwk["kid"], "RS256").kid == jwk["kid"]


def test_retry_interval_is_at_most_five_seconds_and_at_most_the_cooldown():
    assert KeySet(lambda: None, cooldown=30).retry_interval == 5
    assert KeySet(lambda: None, cooldown=0.5).retry_interval == 0.5


def test_last_known_good_keys_stay_in_use_when_a_refresh_fails(kit, timer, caplog):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk], "max-age=600")
    ks = make_set(fetch, timer)
    ks.get(jwk["kid"], "RS256")
    fetch.error = ProviderError("JWKS http://x/jwks: HTTP 500")
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    for _ in range(3):
        timer.now += 601  # stale: every call tries (after the retry interval) and fails
        assert ks.get(jwk["kid"], "RS256").kid == jwk["kid"]
        assert ks.failing
    assert fetch.calls == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage, not once per request
    assert "last-known-good" in warnings[0].getMessage()
    assert "HTTP 500" in warnings[0].getMessage()
    # Recovery is logged too, and the failing flag clears.
    fetch.error = None
    timer.now += 601
    ks.get(jwk["kid"], "RS256")
    assert not ks.failing
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_failed_refresh_is_not_retried_before_the_retry_interval(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk], "max-age=600")
    ks = make_set(fetch, timer, cooldown=30)
    ks.get(jwk["kid"], "RS256")
    fetch.error = ProviderError("down")
    timer.now += 601
    ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 2
    timer.now += 4.9
    ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 2
    timer.now += 0.2
    ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 3


def test_unknown_kid_while_the_provider_fails_is_a_provider_error(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    ks = make_set(fetch, timer)
    ks.get(jwk["kid"], "RS256")
    fetch.error = ProviderError("JWKS http://x/jwks: HTTP 503")
    with pytest.raises(ProviderError) as info:
        ks.get("new-kid", "RS256")
    assert "HTTP 503" in info.value.description
    assert info.value.retry_after >= 1
    # And during the cooldown too: we cannot know the kid is bad.
    with pytest.raises(ProviderError):
        ks.get("newer-kid", "RS256")


def test_first_fetch_failure_is_a_provider_error_and_not_retried_at_once(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    fetch.error = ProviderError("JWKS http://x/jwks: connection refused")
    ks = make_set(fetch, timer, cooldown=30)
    with pytest.raises(ProviderError) as info:
        ks.get(jwk["kid"], "RS256")
    assert "connection refused" in info.value.description
    with pytest.raises(ProviderError):
        ks.get(jwk["kid"], "RS256")
    assert fetch.calls == 1  # inside the retry interval: answered from memory
    timer.now += 5.1
    fetch.error = None
    assert ks.get(jwk["kid"], "RS256").kid == jwk["kid"]
    assert fetch.calls == 2


@pytest.mark.parametrize("doc", [{"keys": []}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}])
def test_no_usable_keys_is_a_provider_error(timer, doc):
    fetch = FakeFetch([])
    fetch.doc = doc
    ks = make_set(fetch, timer)
    with pytest.raises(ProviderError) as info:
        ks.get("k", "RS256")
    assert "no usable signing keys" in info.value.description


def test_jwks_without_keys_array_is_a_provider_error(timer):
    fetch = FakeFetch([])
    fetch.doc = {"keys": "nope"}
    with pytest.raises(ProviderError) as info:
        make_set(fetch, timer).get("k", "RS256")
    assert "unusable" in info.value.description


def test_skipped_keys_are_logged(kit, timer, caplog):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk, {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}])
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    make_set(fetch, timer).get(jwk["kid"], "RS256")
    assert any("'hmac'" in r.getMessage() for r in caplog.records)


def test_no_kid_with_exactly_one_fitting_key(kit, timer):
    rsa_jwk = kit.public_jwk(kid_for(kit, "RS256"))
    ec_jwk = kit.public_jwk(kid_for(kit, "ES256"))
    ks = make_set(FakeFetch([rsa_jwk, ec_jwk]), timer)
    assert ks.get(None, "RS256").kid == rsa_jwk["kid"]
    assert ks.get(None, "ES256").kid == ec_jwk["kid"]


def test_no_kid_with_two_fitting_keys_fails(kit, timer):
    ks = make_set(FakeFetch([kit.public_jwk(kid_for(kit, "RS256")), kit.public_jwk(kit.rsa2)]), timer)
    with pytest.raises(InvalidToken) as info:
        ks.get(None, "RS256")
    assert info.value.description == "token has no kid and the issuer's JWKS has 2 keys for RS256"


def test_no_kid_and_no_fitting_key_fails(kit, timer):
    fetch = FakeFetch([kit.public_jwk(kid_for(kit, "RS256"))])
    ks = make_set(fetch, timer)
    with pytest.raises(InvalidToken) as info:
        ks.get(None, "EdDSA")
    assert info.value.description == "the issuer's JWKS has no key for EdDSA"
    assert fetch.calls == 1  # no kid: nothing to look for by refetching


@pytest.mark.parametrize("key_alg, token_alg", [("ES256", "RS256"), ("RS256", "ES256"), ("ES256", "ES384"),
                                                 ("EdDSA", "ES256"), ("RS256", "EdDSA")])
def test_kid_pointing_at_a_key_of_another_type_fails(kit, timer, key_alg, token_alg):
    jwk = kit.public_jwk(kid_for(kit, key_alg))
    ks = make_set(FakeFetch([jwk]), timer)
    with pytest.raises(InvalidToken) as info:
        ks.get(jwk["kid"], token_alg)
    assert f"cannot verify {token_alg}" in info.value.description


def test_jwk_alg_different_from_token_alg_fails(kit, timer):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))  # declares alg RS256
    ks = make_set(FakeFetch([jwk]), timer)
    with pytest.raises(InvalidToken) as info:
        ks.get(jwk["kid"], "PS256")
    assert "for RS256" in info.value.description


def test_enc_key_with_the_tokens_kid_is_never_used(kit, timer):
    jwk = dict(kit.public_jwk(kid_for(kit, "RS256")), use="enc")
    ks = make_set(FakeFetch([jwk, kit.public_jwk(kid_for(kit, "ES256"))]), timer)
    with pytest.raises(InvalidToken) as info:
        ks.get(jwk["kid"], "RS256")
    assert "not in the issuer's JWKS" in info.value.description


def test_duplicate_kid_first_one_wins(kit, timer, caplog):
    first = kit.public_jwk(kid_for(kit, "RS256"))
    second = dict(kit.public_jwk(kit.rsa2), kid=first["kid"])
    caplog.set_level(logging.WARNING, logger="oidc_guard.jwks")
    ks = make_set(FakeFetch([first, second]), timer)
    assert ks.get(first["kid"], "RS256").fingerprint == parse_jwk(first).fingerprint
    assert any("twice" in r.getMessage() for r in caplog.records)


def test_removed_keys_are_reported(kit, timer):
    a = kit.public_jwk(kid_for(kit, "RS256"))
    b = kit.public_jwk(kit.rsa2)
    removed = []
    fetch = FakeFetch([a, b])
    ks = make_set(fetch, timer, on_change=removed.append)
    ks.get(a["kid"], "RS256")
    assert ks.live == {parse_jwk(a).fingerprint, parse_jwk(b).fingerprint}
    assert removed == []
    fetch.doc = {"keys": [b]}
    ks.refresh()
    assert removed == [frozenset({parse_jwk(a).fingerprint})]
    assert ks.live == {parse_jwk(b).fingerprint}
    with pytest.raises(InvalidToken):
        ks.get(a["kid"], "RS256")


def test_explicit_refresh_errors_only_when_nothing_is_known(kit, timer):
    fetch = FakeFetch([kit.public_jwk(kid_for(kit, "RS256"))])
    fetch.error = ProviderError("down")
    ks = make_set(fetch, timer)
    with pytest.raises(ProviderError):
        ks.refresh()
    fetch.error = None
    timer.now += 5.1  # past the retry interval after the failure
    ks.refresh()
    fetch.error = ProviderError("down")
    ks.refresh()  # keys are known: no exception, last-known-good


def test_unexpected_exception_in_fetch_becomes_provider_error(kit, timer):
    def broken():
        raise KeyError("bug")

    ks = make_set(broken, timer)
    with pytest.raises(ProviderError) as info:
        ks.get("k", "RS256")
    assert "unexpectedly" in info.value.description


def test_hostile_kid_is_shown_bounded(kit, timer):
    ks = make_set(FakeFetch([kit.public_jwk(kid_for(kit, "RS256"))]), timer)
    with pytest.raises(InvalidToken) as info:
        ks.get("k" * 10000, "RS256")
    assert len(info.value.description) < 200


# --- KeySet under threads -----------------------------------------------------------------


def _run_threads(n, target):
    barrier = threading.Barrier(n)
    errors = []
    results = []

    def run(i):
        barrier.wait()
        try:
            results.append(target(i))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return results, errors


def test_cold_set_many_threads_share_one_fetch(kit):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    fetch.delay = 0.2
    ks = KeySet(fetch)
    results, errors = _run_threads(20, lambda i: ks.get(jwk["kid"], "RS256"))
    assert errors == []
    assert len(results) == 20
    assert fetch.calls == 1


def test_unknown_kid_flood_from_threads_is_bounded(kit):
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    fetch = FakeFetch([jwk])
    fetch.delay = 0.05
    ks = KeySet(fetch, cooldown=30)
    ks.get(jwk["kid"], "RS256")
    results, errors = _run_threads(50, lambda i: ks.get(f"forged-{i}", "RS256"))
    assert results == []
    assert len(errors) == 50 and all(isinstance(e, InvalidToken) for e in errors)
    assert fetch.calls <= 2  # the first fetch and one unknown-kid refetch


def test_followers_get_provider_error_when_the_shared_cold_fetch_fails(kit):
    fetch = FakeFetch([kit.public_jwk(kid_for(kit, "RS256"))])
    fetch.delay = 0.2
    fetch.error = ProviderError("down")
    ks = KeySet(fetch)
    results, errors = _run_threads(10, lambda i: ks.get("k", "RS256"))
    assert results == []
    assert len(errors) == 10 and all(isinstance(e, ProviderError) for e in errors)
    assert fetch.calls == 1


def test_stale_keys_are_served_while_one_caller_refreshes(kit, timer):
    """Stale-while-revalidate: when the set's lifetime is over, one caller
    refreshes and the others keep using the keys they have, without waiting
    for a slow provider."""
    jwk = kit.public_jwk(kid_for(kit, "RS256"))
    gate = threading.Event()
    entered = threading.Event()

    class BlockingFetch(FakeFetch):
        def __call__(self):
            if self.calls >= 1:  # the refresh, not the first load
                entered.set()
                gate.wait(5)
            return super().__call__()

    fetch = BlockingFetch([jwk], cache_control="max-age=60")
    ks = make_set(fetch, timer, min_ttl=60, wait_timeout=5)
    ks.get(jwk["kid"], "RS256")
    timer.now += 61  # lifetime over
    leader = threading.Thread(target=ks.get, args=(jwk["kid"], "RS256"))
    leader.start()
    try:
        assert entered.wait(5), "the refresh did not start"
        assert ks.get(jwk["kid"], "RS256").kid == jwk["kid"]  # served from the stale set
        assert leader.is_alive() and not gate.is_set()  # answered while the refresh was still blocked
    finally:
        gate.set()
        leader.join(5)
    assert fetch.calls == 2
