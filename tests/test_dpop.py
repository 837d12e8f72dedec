"""DPoP proof verification (oidc_guard.dpop), RFC 9449 section 4.3.

Every check has a proof here that only that check refuses: a fresh, valid
proof is accepted, and each mutation of it (a member dropped, changed,
mistyped, duplicated) is refused with a description naming the reason.
"""

from __future__ import annotations

import base64
import json
import logging
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oidc_guard import InvalidToken, ProviderError
from oidc_guard.testing import OMIT, DPoPKey
from oidc_guard.dpop import (
    DPoPNonces,
    DPoPVerifier,
    InvalidDPoPProof,
    MemoryReplayStore,
    ReplayStoreFull,
    UseDPoPNonce,
    access_token_hash,
    jwk_thumbprint,
    normalize_htu,
)

URL = "https://api.example.com/contacts"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def es_key() -> DPoPKey:
    return DPoPKey("ES256")


@pytest.fixture(scope="module")
def other_key() -> DPoPKey:
    return DPoPKey("ES256")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(clock) -> DPoPVerifier:
    return DPoPVerifier(clock=clock)


def verify(verifier, proof, *, method="GET", url=URL, token=TOKEN, jkt=None, headers=None):
    return verifier.verify(method, url, headers if headers is not None else {"DPoP": proof},
                           access_token=token, jkt=jkt)


def make(key, clock, method="GET", url=URL, token=TOKEN, **kw):
    kw.setdefault("iat", int(clock.now))
    return key.proof(method, url, token, **kw)


# --- the happy path ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"])
def test_fresh_proof_accepted_for_every_alg(alg, clock):
    key = DPoPKey(alg)
    v = DPoPVerifier(clock=clock)
    result = verify(v, make(key, clock), jkt=key.jkt)
    assert result.jkt == key.jkt
    assert result.alg == alg and result.htm == "GET" and result.htu == URL


def test_thumbprint_is_rfc7638_example():
    # RFC 7638 section 3.1: the example key and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
             "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL"
             "5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_key_helper_thumbprint_matches_library(es_key):
    assert jwk_thumbprint(es_key.jwk) == es_key.jkt


def test_ath_is_sha256_of_the_token():
    import hashlib

    assert access_token_hash("abc") == b64(hashlib.sha256(b"abc").digest())


# --- header mutations (steps 2-7) -------------------------------------------------


def forged(header, payload, signature=b"x" * 64):
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)))


def payload_for(clock, **extra):
    body = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": int(clock.now), "ath": access_token_hash(TOKEN)}
    body.update(extra)
    return body


@pytest.mark.parametrize("typ, reason", [
    (OMIT, "typ is None"),
    ("JWT", "typ is 'JWT'"),
    ("at+jwt", "typ is 'at+jwt'"),
    ("DPOP+JWT", "typ is 'DPOP+JWT'"),
    ("application/dpop+jwt", "must be 'dpop+jwt'"),
    (["dpop+jwt"], "must be 'dpop+jwt'"),
])
def test_typ_must_be_dpop_jwt(es_key, clock, verifier, typ, reason):
    with pytest.raises(InvalidDPoPProof, match="typ"):
        verify(verifier, make(es_key, clock, header={"typ": typ}))


def test_alg_none_refused(es_key, clock, verifier):
    proof = forged({"typ": "dpop+jwt", "alg": "none", "jwk": es_key.jwk}, payload_for(clock), b"")
    with pytest.raises(InvalidDPoPProof, match="empty segment|unsigned"):
        verify(verifier, proof)
    proof = forged({"typ": "dpop+jwt", "alg": "none", "jwk": es_key.jwk}, payload_for(clock))
    with pytest.raises(InvalidDPoPProof, match="unsigned"):
        verify(verifier, proof)


def test_alg_hs256_refused(es_key, clock, verifier):
    import hashlib
    import hmac

    head = b64(json.dumps({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}).encode())
    body = b64(json.dumps(payload_for(clock)).encode())
    sig = hmac.new(b"secret", f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidDPoPProof, match="symmetric"):
        verify(verifier, f"{head}.{body}.{b64(sig)}")


def test_alg_outside_allow_list_refused(clock):
    key = DPoPKey("EdDSA")
    v = DPoPVerifier(algorithms=["ES256"], clock=clock)
    with pytest.raises(InvalidDPoPProof, match="not accepted"):
        verify(v, make(key, clock))


def test_alg_must_fit_the_key(es_key, clock, verifier):
    # an ES256 key claiming ES384: the header check refuses before any verify
    with pytest.raises(InvalidDPoPProof, match="cannot verify alg ES384"):
        verify(verifier, make(es_key, clock, header={"alg": "ES384"}))


def test_alg_missing_refused(es_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="no alg"):
        verify(verifier, make(es_key, clock, header={"alg": OMIT}))


def test_construction_refuses_none_and_hs():
    for algs in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ValueError):
            DPoPVerifier(algorithms=algs)


def test_jwk_missing_refused(es_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="no jwk"):
        verify(verifier, make(es_key, clock, header={"jwk": OMIT}))
    with pytest.raises(InvalidDPoPProof, match="no jwk"):
        verify(verifier, make(es_key, clock, header={"jwk": "not-an-object"}))


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_jwk_with_private_members_refused(es_key, clock, verifier, member):
    jwk = dict(es_key.jwk, **{member: "AAAA"})
    with pytest.raises(InvalidDPoPProof, match="private key members"):
        verify(verifier, make(es_key, clock, header={"jwk": jwk}))


def test_jwk_real_private_key_refused(clock, verifier):
    from cryptography.hazmat.primitives.asymmetric import ec as ec_mod

    key = DPoPKey("ES256")
    d = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    assert isinstance(key.private_key, ec_mod.EllipticCurvePrivateKey)
    with pytest.raises(InvalidDPoPProof, match="private"):
        verify(verifier, make(key, clock, header={"jwk": dict(key.jwk, d=b64(d))}))


def test_small_rsa_key_refused(clock, verifier):
    small = DPoPKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(InvalidDPoPProof, match="below 2048"):
        verify(verifier, make(small, clock))


def test_off_curve_ec_point_refused(es_key, clock, verifier):
    jwk = dict(es_key.jwk)
    y = bytearray(base64.urlsafe_b64decode(jwk["y"] + "=="))
    y[-1] ^= 1
    jwk["y"] = b64(bytes(y))
    with pytest.raises(InvalidDPoPProof, match="jwk is not usable"):
        verify(verifier, make(es_key, clock, header={"jwk": jwk}))


def test_ec_coordinates_of_wrong_length_refused(es_key, clock, verifier):
    jwk = dict(es_key.jwk, x=b64(b"\x01" * 31))
    with pytest.raises(InvalidDPoPProof, match="jwk is not usable"):
        verify(verifier, make(es_key, clock, header={"jwk": jwk}))


def test_jwk_of_unknown_kty_refused(es_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="jwk is not usable"):
        verify(verifier, make(es_key, clock, header={"jwk": {"kty": "oct", "x": "AA"}}))


def test_signed_by_another_key_than_jwk(es_key, other_key, clock, verifier):
    # header carries es_key's public key, signature made with other_key
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": es_key.jwk}
    signing_input = (b64(json.dumps(head).encode()) + "." + b64(json.dumps(payload_for(clock)).encode())).encode()
    proof = signing_input.decode() + "." + b64(other_key.sign(signing_input))
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        verify(verifier, proof)


def test_tampered_payload_fails_signature(es_key, clock, verifier):
    proof = make(es_key, clock)
    head, _body, sig = proof.split(".")
    evil = b64(json.dumps(payload_for(clock, htm="GET")).encode())
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        verify(verifier, f"{head}.{evil}.{sig}")


def test_payload_not_believed_before_signature(es_key, clock, verifier):
    # a payload that is not even JSON, with a bad signature: the signature
    # error comes first, proving the payload was not parsed before it.
    proof = make(es_key, clock)
    head = proof.split(".")[0]
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        verify(verifier, f"{head}.{b64(b'not json')}.{b64(b'x' * 64)}")


def test_crit_refused(es_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="critical"):
        verify(verifier, make(es_key, clock, header={"crit": ["exp"]}))


def test_duplicate_header_member_refused(es_key, clock, verifier):
    raw_head = ('{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":' + json.dumps(es_key.jwk) + "}").encode()
    body = json.dumps(payload_for(clock)).encode()
    signing_input = (b64(raw_head) + "." + b64(body)).encode()
    proof = signing_input.decode() + "." + b64(es_key.sign(signing_input))
    with pytest.raises(InvalidDPoPProof, match="duplicate member"):
        verify(verifier, proof)


def test_duplicate_payload_member_refused(es_key, clock, verifier):
    head = json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": es_key.jwk}).encode()
    body = json.dumps(payload_for(clock))[:-1] + ', "htm": "POST"}'
    signing_input = (b64(head) + "." + b64(body.encode())).encode()
    proof = signing_input.decode() + "." + b64(es_key.sign(signing_input))
    with pytest.raises(InvalidDPoPProof, match="duplicate member"):
        verify(verifier, proof)


# --- shape and size (steps 0-2) ---------------------------------------------------


def test_missing_header_refused(verifier):
    with pytest.raises(InvalidDPoPProof, match="no DPoP header"):
        verify(verifier, None, headers={})


def test_two_dpop_headers_refused(es_key, clock, verifier):
    a, b = make(es_key, clock), make(es_key, clock)
    with pytest.raises(InvalidDPoPProof, match="more than one"):
        verify(verifier, None, headers=[("DPoP", a), ("dpop", b)])
    with pytest.raises(InvalidDPoPProof, match="more than one"):
        verify(verifier, None, headers={"DPoP": a + ", " + b})


def test_header_name_is_case_insensitive(es_key, clock, verifier):
    assert verify(verifier, None, headers=[("dpop", make(es_key, clock))])


def test_oversized_proof_refused_before_parsing(es_key, clock, verifier):
    proof = make(es_key, clock, pad="x" * 9000)
    with pytest.raises(InvalidDPoPProof, match="the limit is 8192"):
        verify(verifier, proof)


@pytest.mark.parametrize("proof", [
    "", "abc", "a.b", "a.b.c.d", "a..c", "a.b.", "ä.b.c", "a b.c.d", "eyJ.eyJ.%%%",
])
def test_not_a_jws_refused(verifier, proof):
    with pytest.raises(InvalidDPoPProof):
        verify(verifier, proof)


def test_non_canonical_base64_refused(es_key, clock, verifier):
    proof = make(es_key, clock)
    head, body, sig = proof.split(".")
    # flip the unused low bits of the last signature character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    rest = len(sig) % 4
    bits = 4 if rest == 2 else 2
    if rest:
        sig2 = sig[:-1] + alphabet[last ^ ((1 << bits) - 1)]
        with pytest.raises(InvalidDPoPProof, match="base64url"):
            verify(verifier, f"{head}.{body}.{sig2}")


def test_header_not_json_refused(verifier):
    with pytest.raises(InvalidDPoPProof, match="header is not valid JSON"):
        verify(verifier, b64(b"{nope") + "." + b64(b"{}") + "." + b64(b"x"))


# --- payload mutations (steps 8-12) -------------------------------------------------


@pytest.mark.parametrize("changes, reason", [
    ({"htm": OMIT}, "no htm"),
    ({"htm": 1}, "htm is not a string"),
    ({"htm": "POST"}, "htm 'POST' is not the request method"),
    ({"htm": "get"}, "not the request method"),
    ({"htu": OMIT}, "no htu"),
    ({"htu": ["https://api.example.com/contacts"]}, "htu is not a string"),
    ({"htu": "https://api.example.com/contacts/1"}, "is not the request URL"),
    ({"htu": "https://api.example.com/"}, "is not the request URL"),
    ({"htu": "http://api.example.com/contacts"}, "is not the request URL"),
    ({"htu": "https://api.example.com:8443/contacts"}, "is not the request URL"),
    ({"htu": "https://evil.example.com/contacts"}, "is not the request URL"),
    ({"htu": "https://api.example.com/Contacts"}, "is not the request URL"),
    ({"htu": "/contacts"}, "not an http"),
    ({"htu": "ftp://api.example.com/contacts"}, "not an http"),
    ({"htu": "https://user@api.example.com/contacts"}, "not an http"),
    ({"htu": "https://api.example.com:99999/contacts"}, "not an http"),
    ({"htu": "https:///contacts"}, "not an http"),
    ({"iat": OMIT}, "no iat"),
    ({"iat": "1800000000"}, "iat is not a number"),
    ({"iat": True}, "iat is not a number"),
    ({"iat": float("nan")}, "iat is not a number"),
    ({"iat": 1_800_000_000 - 301}, "s old"),
    ({"iat": 1_800_000_000 + 31}, "in the future"),
    ({"jti": OMIT}, "no jti"),
    ({"jti": ""}, "jti is not a non-empty string"),
    ({"jti": 12345}, "jti is not a non-empty string"),
    ({"jti": "j" * 257}, "the limit is 256"),
    ({"ath": OMIT}, "no ath"),
    ({"ath": access_token_hash(TOKEN + "x")}, "ath is not the hash"),
    ({"ath": 7}, "ath is not the hash"),
])
def test_payload_mutation_refused(es_key, clock, verifier, changes, reason):
    with pytest.raises(InvalidDPoPProof, match=reason):
        verify(verifier, make(es_key, clock, **changes), jkt=es_key.jkt)


def test_payload_not_an_object_refused(es_key, clock, verifier):
    head = json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": es_key.jwk}).encode()
    signing_input = (b64(head) + "." + b64(b"[1,2]")).encode()
    proof = signing_input.decode() + "." + b64(es_key.sign(signing_input))
    with pytest.raises(InvalidDPoPProof, match="payload is not a JSON object"):
        verify(verifier, proof)


@pytest.mark.parametrize("htu", [
    "https://API.Example.COM/contacts",
    "HTTPS://api.example.com/contacts",
    "https://api.example.com:443/contacts",
    "https://api.example.com/contacts?page=2",
    "https://api.example.com/contacts#top",
    "https://api.example.com/%63ontacts",
    "https://api.example.com/x/../contacts",
    "https://api.example.com/./contacts",
])
def test_htu_normalised_variants_accepted(es_key, clock, verifier, htu):
    # RFC 9449 4.3 step 9 with RFC 3986 6.2.2 / 6.2.3: same resource.
    assert verify(verifier, make(es_key, clock, htu=htu), jkt=es_key.jkt)


def test_htu_default_port_of_http(es_key, clock, verifier):
    url = "http://127.0.0.1/x"
    assert verify(verifier, make(es_key, clock, htu="http://127.0.0.1:80/x"), url=url)
    with pytest.raises(InvalidDPoPProof):
        verify(verifier, make(es_key, clock, htu="http://127.0.0.1:443/x"), url=url)


def test_empty_path_is_slash():
    assert normalize_htu("https://a.example") == normalize_htu("https://a.example/")
    assert normalize_htu("https://a.example/") != normalize_htu("https://a.example//")


def test_method_must_match_exactly(es_key, clock, verifier):
    assert verify(verifier, make(es_key, clock, "POST"), method="POST")
    with pytest.raises(InvalidDPoPProof, match="htm 'GET'"):
        verify(verifier, make(es_key, clock, "GET"), method="POST")


def test_iat_window_edges(es_key, clock):
    v = DPoPVerifier(clock=clock, max_age=300, leeway=30)
    assert verify(v, make(es_key, clock, iat=int(clock.now) - 300))
    assert verify(v, make(es_key, clock, iat=int(clock.now) + 30))
    narrow = DPoPVerifier(clock=clock, max_age=10, leeway=0)
    with pytest.raises(InvalidDPoPProof, match="accepted for 10 s"):
        verify(narrow, make(es_key, clock, iat=int(clock.now) - 11))
    with pytest.raises(InvalidDPoPProof, match="future"):
        verify(narrow, make(es_key, clock, iat=int(clock.now) + 1))


def test_jkt_must_match(es_key, other_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="cnf.jkt"):
        verify(verifier, make(es_key, clock), jkt=other_key.jkt)
    with pytest.raises(InvalidDPoPProof, match="cnf.jkt"):
        verify(verifier, make(es_key, clock), jkt=12)  # type: ignore[arg-type]


def test_ath_required_only_with_a_token(es_key, clock, verifier):
    proof = es_key.proof("GET", URL, iat=int(clock.now))
    assert verifier.verify("GET", URL, {"DPoP": proof})  # token endpoint style
    with pytest.raises(InvalidDPoPProof, match="no ath"):
        verifier.verify("GET", URL, {"DPoP": es_key.proof("GET", URL, iat=int(clock.now))}, access_token=TOKEN)


def test_errors_are_invalid_token_subclasses_with_their_code():
    assert issubclass(InvalidDPoPProof, InvalidToken)
    assert InvalidDPoPProof("x").error == "invalid_dpop_proof" and InvalidDPoPProof("x").status == 401
    assert UseDPoPNonce("x", "n").error == "use_dpop_nonce"


def test_descriptions_never_echo_the_proof_or_token(es_key, clock, verifier):
    proof = make(es_key, clock, htm="DELETE")
    with pytest.raises(InvalidDPoPProof) as info:
        verify(verifier, proof)
    assert proof not in info.value.description and TOKEN not in info.value.description
    assert proof.split(".")[2] not in info.value.description


# --- replay (section 11.1) ----------------------------------------------------------


def test_replay_refused(es_key, clock, verifier):
    proof = make(es_key, clock)
    verify(verifier, proof)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        verify(verifier, proof)


def test_same_jti_other_key_is_not_a_replay(es_key, other_key, clock, verifier):
    verify(verifier, make(es_key, clock, jti="same"))
    verify(verifier, make(other_key, clock, jti="same"))
    with pytest.raises(InvalidDPoPProof, match="already used"):
        verify(verifier, make(es_key, clock, jti="same"))


def test_failed_proof_does_not_use_up_its_jti(es_key, clock, verifier):
    with pytest.raises(InvalidDPoPProof, match="cnf.jkt"):
        verify(verifier, make(es_key, clock, jti="j"), jkt="wrong")
    assert verify(verifier, make(es_key, clock, jti="j"), jkt=es_key.jkt)


def test_replay_record_lives_as_long_as_the_window(es_key):
    now = [1000.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    v = DPoPVerifier(clock=lambda: now[0], replay_store=store, max_age=300, leeway=30)
    proof = es_key.proof("GET", URL, TOKEN, iat=1000)
    verify(v, proof)
    now[0] = 1299.0  # the proof itself is still acceptable: the record must still be there
    with pytest.raises(InvalidDPoPProof, match="already used"):
        verify(v, proof)
    now[0] = 1301.0
    with pytest.raises(InvalidDPoPProof, match="s old"):
        verify(v, proof)
    now[0] = 2000.0
    assert len(store) == 0  # expired records are forgotten


def test_replay_store_is_atomic_across_threads(es_key, clock):
    v = DPoPVerifier(clock=clock)
    proof = make(es_key, clock)
    results = []
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        try:
            verify(v, proof)
            results.append("ok")
        except InvalidDPoPProof:
            results.append("replay")

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("replay") == 15


def test_memory_store_full_fails_closed_never_evicts():
    now = [0.0]
    store = MemoryReplayStore(maxsize=3, clock=lambda: now[0])
    for i in range(3):
        assert store.add(f"k{i}", b"1", 10)
    with pytest.raises(ReplayStoreFull):
        store.add("k3", b"1", 10)
    assert store.add("k0", b"1", 10) is False  # still remembered
    now[0] = 11.0
    assert store.add("k3", b"1", 10) is True  # expired records made room


def test_memory_store_full_scans_once_until_something_can_expire():
    # A store full of live records refuses each new proof; it must not scan
    # every record again for each refusal (a held DPoP token and its key can
    # fill it, then each request would cost a scan of 100,000 records).
    now = [0.0]
    store = MemoryReplayStore(maxsize=50, clock=lambda: now[0])
    store.add("short", b"1", 5)  # queued first, expires first
    for i in range(49):
        assert store.add(f"k{i}", b"1", 100)
    for i in range(200):
        with pytest.raises(ReplayStoreFull):
            store.add(f"new{i}", b"1", 100)
    assert store.full_scans == 1
    now[0] = 6.0  # "short" expired: the queue head frees it, no scan needed
    assert store.add("new-a", b"1", 100) is True
    with pytest.raises(ReplayStoreFull):
        store.add("new-b", b"1", 100)
    now[0] = 101.0
    assert store.add("new-b", b"1", 100) is True  # the earliest live expiry passed
    assert store.add("k0", b"1", 100) is True


class _DownStore:
    def __init__(self):
        self.calls = 0

    def add(self, key, value, ttl):
        self.calls += 1
        from oidc_guard.cache import CacheUnavailable

        raise CacheUnavailable("shared cache redis://127.0.0.1:1/0: ConnectionError during SET NX")


def test_replay_store_down_fails_closed_and_logs_once(es_key, clock, caplog):
    store = _DownStore()
    v = DPoPVerifier(clock=clock, replay_store=store)
    caplog.set_level(logging.WARNING, logger="oidc_guard.dpop")
    for _ in range(3):
        with pytest.raises(ProviderError) as info:
            verify(v, make(es_key, clock))
        assert not isinstance(info.value, InvalidToken)
        assert info.value.status == 503 and info.value.retry_after >= 1
    assert store.calls == 3
    warnings = [r for r in caplog.records if "replay store is unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_replay_store_keys_never_contain_jti_or_proof(es_key, clock):
    seen = []

    class Spy:
        def add(self, key, value, ttl):
            seen.append((key, value, ttl))
            return True

    v = DPoPVerifier(clock=clock, replay_store=Spy())
    proof = make(es_key, clock, jti="secret-jti-value")
    verify(v, proof)
    key, value, ttl = seen[0]
    assert "secret-jti-value" not in key and es_key.jkt not in key and proof not in key
    assert key.startswith("dpop:jti:") and len(key) == len("dpop:jti:") + 64
    assert 300 <= ttl <= 330


def test_redis_cache_as_replay_store_is_used(es_key, clock):
    from oidc_guard.cache import MemoryCache

    store = MemoryCache()
    v = DPoPVerifier(clock=clock, replay_store=store)
    proof = make(es_key, clock)
    verify(v, proof)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        verify(v, proof)


def test_header_memo_keeps_every_check(es_key, clock, verifier):
    # the same header segment again: the signature is still verified
    proof = make(es_key, clock)
    verify(verifier, proof)
    head, body, sig = make(es_key, clock).split(".")
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        verify(verifier, f"{head}.{body}.{b64(b'y' * 64)}")


def test_key_cache_hit_still_checks_payload_and_signature_segments(es_key, clock, verifier):
    # after a hit on the header bytes, the other segments are still checked
    verify(verifier, make(es_key, clock))
    head, body, sig = make(es_key, clock).split(".")
    assert head.encode() in verifier._header_memo
    for bad in (f"{head}.{body}!.{sig}", f"{head}.{body}.{sig}=", f"{head}.{body}.", f"{head}..{sig}",
                f"{head}.{body}.{sig}.{sig}", f"{head}.{body}"):
        with pytest.raises(InvalidDPoPProof):
            verify(verifier, bad)
    verify(verifier, f"{head}.{body}.{sig}")  # and the real one is still fine


def test_key_cache_is_bounded(clock, verifier):
    from oidc_guard.dpop import verifier as dpop

    key = DPoPKey("EdDSA")
    for i in range(dpop._HEADER_MEMO_MAX + 5):
        # a different header (an extra member) each time: a distinct entry
        verify(verifier, make(key, clock, header={"x-n": i}))
        assert len(verifier._header_memo) <= dpop._HEADER_MEMO_MAX
    assert verify(verifier, make(key, clock)).jkt == key.jkt


def test_key_cache_refuses_private_member_after_public_part_was_cached(clock, verifier):
    key = DPoPKey("ES256")
    verify(verifier, make(key, clock), jkt=key.jkt)  # the public jwk is now cached
    leaked = dict(key.jwk, d=b64(key.private_key.private_numbers().private_value.to_bytes(32, "big")))
    with pytest.raises(InvalidDPoPProof, match="private key members"):
        verify(verifier, make(key, clock, header={"jwk": leaked}), jkt=key.jkt)
    assert len(verifier._header_memo) == 1


def test_key_cache_never_gives_one_key_the_entry_of_another(clock, verifier):
    one, two = DPoPKey("ES256"), DPoPKey("ES256")
    verify(verifier, make(one, clock), jkt=one.jkt)
    # two's proof: its own header, its own thumbprint, not one's
    assert verify(verifier, make(two, clock), jkt=two.jkt).jkt == two.jkt
    with pytest.raises(InvalidDPoPProof, match="cnf.jkt"):
        verify(verifier, make(two, clock), jkt=one.jkt)
    # one's header with two's signature: verified with one's key, refused
    head_one = make(one, clock).split(".")[0]
    _h, body, sig = make(two, clock).split(".")
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        verify(verifier, f"{head_one}.{body}.{sig}", jkt=one.jkt)
    # one's cached header with a different alg name is another entry, checked in full
    with pytest.raises(InvalidDPoPProof, match="cannot verify alg"):
        verify(verifier, make(one, clock, header={"alg": "ES384"}))


# --- nonces (section 9) --------------------------------------------------------------


def test_nonce_required_when_on(es_key, clock):
    nonces = DPoPNonces(b"k" * 32, clock=clock)
    v = DPoPVerifier(clock=clock, nonces=nonces)
    with pytest.raises(UseDPoPNonce) as info:
        verify(v, make(es_key, clock))
    assert info.value.nonce == nonces.current()
    result = verify(v, make(es_key, clock, nonce=info.value.nonce))
    assert result.nonce_state == "current"


def test_nonce_previous_step_accepted_then_expires(es_key, clock):
    nonces = DPoPNonces(b"k" * 32, step=60, clock=clock)
    v = DPoPVerifier(clock=clock, nonces=nonces, max_age=1000)
    nonce = nonces.current()
    clock.now += 60
    assert verify(v, make(es_key, clock, nonce=nonce)).nonce_state == "previous"
    clock.now += 60
    with pytest.raises(UseDPoPNonce, match="not current"):
        verify(v, make(es_key, clock, nonce=nonce))


def test_nonce_of_another_secret_refused(es_key, clock):
    v = DPoPVerifier(clock=clock, nonces=DPoPNonces(b"a" * 32, clock=clock))
    other = DPoPNonces(b"b" * 32, clock=clock)
    with pytest.raises(UseDPoPNonce):
        verify(v, make(es_key, clock, nonce=other.current()))
    with pytest.raises(UseDPoPNonce):
        verify(v, make(es_key, clock, nonce=12))


def test_nonces_shared_secret_work_across_instances(clock):
    a = DPoPNonces("s" * 20, clock=clock)
    b = DPoPNonces("s" * 20, clock=clock)
    assert b.check(a.current()) == "current"
    assert DPoPNonces(clock=clock).check(a.current()) is None  # random per instance


def test_nonce_secret_rules():
    with pytest.raises(ValueError):
        DPoPNonces(b"short")
    with pytest.raises(TypeError):
        DPoPNonces(12)  # type: ignore[arg-type]
    assert "k" * 32 not in repr(DPoPNonces("k" * 32))


def test_nonce_checked_after_signature(es_key, clock):
    # a missing nonce on a badly signed proof is a signature error, not use_dpop_nonce
    v = DPoPVerifier(clock=clock, nonces=DPoPNonces(b"k" * 32, clock=clock))
    head, body, _sig = make(es_key, clock).split(".")
    with pytest.raises(InvalidDPoPProof) as info:
        verify(v, f"{head}.{body}.{b64(b'z' * 64)}")
    assert not isinstance(info.value, UseDPoPNonce)


def test_ec_point_helper_really_off_curve(es_key):
    # guard for test_off_curve_ec_point_refused: the mutated point is off-curve
    y = bytearray(base64.urlsafe_b64decode(es_key.jwk["y"] + "=="))
    y[-1] ^= 1
    x = base64.urlsafe_b64decode(es_key.jwk["x"] + "==")
    with pytest.raises(ValueError):
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + bytes(y))


@pytest.mark.parametrize("char", ["+", "/", "=", ".", " ", "!", "\x7f", "%"])
@pytest.mark.parametrize("where", ["payload", "signature"])
def test_segment_alphabet_is_base64url_only_on_a_key_cache_hit(es_key, clock, verifier, char, where):
    # The payload and signature segments are converted and alphabet-checked
    # in one translate (every byte outside base64url becomes "!"): a "+" or
    # "/" (standard base64, same bits) or any other byte is refused, at the
    # start, in the middle and at the end of the segment.
    verify(verifier, make(es_key, clock))  # the header is now cached
    head, body, sig = make(es_key, clock).split(".")
    for pos in (0, 5) if char == " " else (0, 5, None):  # a trailing space is header OWS, stripped
        seg = body if where == "payload" else sig
        bad = seg + char if pos is None else seg[:pos] + char + seg[pos + 1:]
        proof = f"{head}.{bad}.{sig}" if where == "payload" else f"{head}.{body}.{bad}"
        with pytest.raises(InvalidDPoPProof, match="not a JWS compact serialization"):
            verify(verifier, proof)
    verify(verifier, f"{head}.{body}.{sig}")


def test_htu_equal_to_the_request_url_is_still_checked(es_key, clock, verifier):
    # htu the same string as the request URL skips normalising the URL a
    # second time, never the check of htu itself; a bad request URL that
    # htu does not repeat is still reported as the server's.
    bad = "ftp://api.example.com/contacts"
    with pytest.raises(InvalidDPoPProof, match="htu 'ftp://api.example.com/contacts' is not an http"):
        verify(verifier, make(es_key, clock, url=bad), url=bad)
    with pytest.raises(InvalidDPoPProof, match="the request URL cannot be compared with htu"):
        verify(verifier, make(es_key, clock), url=bad)
    with pytest.raises(InvalidDPoPProof, match="is not the request URL"):
        verify(verifier, make(es_key, clock), url=URL + "/other")
    assert verify(verifier, make(es_key, clock, url="HTTPS://api.example.com:443/contacts")).jkt == es_key.jkt
    assert verify(verifier, make(es_key, clock)).htu == URL


def test_replay_key_is_the_documented_digest(es_key, clock):
    # Workers of two releases share one Redis during a rolling deploy: the
    # replay key must stay SHA-256(namespace NUL jkt NUL jti), hex, so that a
    # proof accepted by one is a replay for the other.
    import hashlib

    seen = []

    class Spy:
        def add(self, key, value, ttl):
            seen.append(key)
            return True

    v = DPoPVerifier(clock=clock, replay_store=Spy())
    for jti in ("j-1", "caf\u00e9-\U0001f600"):
        verify(v, make(es_key, clock, jti=jti))
        want = hashlib.sha256(b"oidc_guard/dpop/jti/v1\x00" + es_key.jkt.encode() + b"\x00" + jti.encode()).hexdigest()
        assert seen[-1] == "dpop:jti:" + want
