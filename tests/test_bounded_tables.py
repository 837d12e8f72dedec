"""Every in-process table an attacker can make grow is one of
oidc_guard._bounded's kinds, with its documented bound (docs/architecture.md,
"Bounded tables"), and keeps it under a flood."""

from __future__ import annotations

import json
import time

import pytest

from oidc_guard import TokenValidator, _jws, claims, metrics
from oidc_guard._bounded import LRU, Fifo, Interned, Memo
from oidc_guard._sharing import StringSharing
from oidc_guard.credentials import quote_path
from oidc_guard.dpop import DPoPVerifier, InvalidDPoPProof
from oidc_guard.dpop.htu import _normalize_htu
from oidc_guard.testing import DPoPKey
from oidc_guard.userinfo import UserInfoClient

URL = "https://api.example.test/jobs"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"


def test_validator_tables_are_bounded_kinds():
    v = TokenValidator("https://idp.example.test", audience="api", cache_size=123)
    assert type(v._header_memo) is Memo and v._header_memo.maxsize == 64
    assert v._tokens is not None
    assert type(v._cache) is LRU and v._cache.maxsize == 123
    assert type(v._tokens.front) is Memo and v._tokens.front.maxsize == 256
    # the hit path reads the front Memo's own dict
    assert v._front is v._tokens.front.data
    sharing = v._sharing
    assert type(sharing.strings) is Interned and sharing.strings.maxsize == 4096
    assert type(sharing.lists) is Interned and sharing.lists.maxsize == 1024
    assert type(v._userinfo._cache) is Fifo and v._userinfo._cache.maxsize == 10000


def test_module_tables_are_bounded_kinds():
    assert type(claims._SCOPE_MEMO) is Memo and claims._SCOPE_MEMO.maxsize == 2048
    assert type(claims._SHARED_SCOPE_SETS) is Interned and claims._SHARED_SCOPE_SETS.maxsize == 1024
    assert type(DPoPVerifier()._header_memo) is Memo and DPoPVerifier()._header_memo.maxsize == 1024
    assert quote_path.cache_parameters()["maxsize"] == 1024
    assert _normalize_htu.cache_parameters()["maxsize"] == 1024
    assert metrics._attributes.cache_parameters()["maxsize"] == 256
    assert type(_jws._JWS_HEADERS) is Memo and _jws._JWS_HEADERS.maxsize == 256


def test_scope_tables_keep_their_bounds_and_sharing():
    for n in range(claims._SCOPE_MEMO_MAX + 100):
        assert claims.parse_scopes(f"read s{n}") == {"read", f"s{n}"}
        assert len(claims._SCOPE_MEMO) <= claims._SCOPE_MEMO_MAX
        assert len(claims._SHARED_SCOPE_SETS) <= claims._SHARED_SCOPE_SETS_MAX


def test_string_sharing_learns_only_within_bounds(monkeypatch):
    from oidc_guard import _sharing

    monkeypatch.setattr(_sharing, "_SHARED_STRINGS_MAX", 8)
    monkeypatch.setattr(_sharing, "_SHARED_LISTS_MAX", 2)
    s = StringSharing()
    for n in range(20):
        misses = s.start()
        payload = s.decoder.decode(json.dumps({"sub": f"u{n}", "aud": [f"a{n}", "b"]}))
        s.learn(misses)
        assert payload["sub"] == f"u{n}" and payload["aud"] == [f"a{n}", "b"]
        assert len(s.strings) <= 8 and len(s.lists) <= 2
    # what was learnt first is shared: the same object comes back
    misses = s.start()
    again = s.decoder.decode('{"sub": "u0", "aud": ["a0", "b"]}')
    assert again["sub"] is s.strings.data["u0"] and again["aud"][0] is s.strings.data["a0"]


def test_dpop_header_memo_stays_bounded_and_verify_field_is_public():
    key = DPoPKey("EdDSA")
    v = DPoPVerifier()
    assert DPoPVerifier._verify_header_value is DPoPVerifier.verify_field  # the old name still works
    for i in range(1024 + 5):
        proof = key.proof("GET", URL, TOKEN, iat=int(time.time()), header={"x-n": i})
        assert v.verify_field("GET", URL, proof, TOKEN, key.jkt).jkt == key.jkt
        assert len(v._header_memo) <= 1024
    with pytest.raises(InvalidDPoPProof, match="no DPoP header"):
        v.verify_field("GET", URL, None, TOKEN, key.jkt)
    proof = key.proof("GET", URL, TOKEN)
    with pytest.raises(InvalidDPoPProof, match="more than one"):
        v.verify_field("GET", URL, proof + ", " + proof, TOKEN, key.jkt)


@pytest.fixture
def op(make_issuer, loopback):
    iss = make_issuer(algs=("RS256",))
    iss.discovery_overrides["userinfo_endpoint"] = loopback.url("/userinfo")
    loopback.json("/userinfo", json.dumps({"sub": "alice"}))
    iss.loopback = loopback
    return iss


def test_userinfo_cache_drops_its_oldest_eighth_when_full(op, make_validator):
    v = make_validator(op)
    client = UserInfoClient(v, max_entries=16)
    tokens = [op.mint(subject="alice", claims={"jti": str(n)}) for n in range(17)]
    for token in tokens[:16]:
        client.get(token)
    assert len(client._cache) == 16 and op.loopback.counts["/userinfo"] == 16
    client.get(tokens[16])  # full: the two oldest go, then the new one
    assert len(client._cache) == 15
    client.get(tokens[16])
    client.get(tokens[2])  # still cached
    assert op.loopback.counts["/userinfo"] == 17
    client.get(tokens[0])  # evicted: fetched again
    assert op.loopback.counts["/userinfo"] == 18
    for n in range(100):
        client.get(op.mint(subject="alice", claims={"jti": f"x{n}"}))
        assert len(client._cache) <= 16
