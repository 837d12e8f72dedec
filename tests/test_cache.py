"""The verified-token cache of ``TokenValidator.validate_access_token``.

Rules (issue 5; the performance targets in bench/README.md):

* a hit returns the same claims a cold validation returns;
* an entry never outlives the token's ``exp`` (plus the leeway the cold path
  allows too);
* entries verified by a key that has left the JWKS are dropped at the next
  key-set refresh;
* the cache key covers the whole token: a token altered by one character,
  in any segment, is never served from the entry of the original;
* the number of entries never exceeds ``cache_size``.

"Served from the cache" is observed by counting signature verifications
(``VerifyKey.verify``), never by timing.
"""

from __future__ import annotations

import threading
import time

import pytest

from oidc_guard import InvalidToken, TokenValidator
from oidc_guard.jwks import VerifyKey
from oidc_guard.testing import b64url_decode

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def verifications(monkeypatch):
    """Counts signature verifications made by any VerifyKey."""
    calls = {"n": 0}
    original = VerifyKey.verify

    def counting(self, alg, signing_input, signature):
        calls["n"] += 1
        return original(self, alg, signing_input, signature)

    monkeypatch.setattr(VerifyKey, "verify", counting)
    return calls


def idsrv_token(iss, now, **claims):
    """An IdentityServer v3 shaped access token (scope array, aud
    <issuer>/resources plus the API, client_id, amr, idp, auth_time, no iat)."""
    body = {
        "aud": [iss.issuer + "/resources", "api://contacts"],
        "scope": ["openid", "profile", "contacts", "wte"],
        "client_id": "Coordinate",
        "amr": ["pwd"],
        "idp": "local",
        "auth_time": int(now),
        "iat": None,
    }
    body.update(claims)
    from oidc_guard.testing import OMIT

    body = {k: (OMIT if v is None else v) for k, v in body.items()}
    return iss.mint(body, now=now, typ="JWT")


def altered(token, segment, position):
    """``token`` with one character of ``segment`` (0 header, 1 payload,
    2 signature) replaced by another base64url character."""
    parts = token.split(".")
    seg = parts[segment]
    old = seg[position]
    new = ALPHABET[(ALPHABET.index(old) + 17) % 64]
    parts[segment] = seg[:position] + new + seg[position + 1:]
    return ".".join(parts)


# --- hits -------------------------------------------------------------------------


def test_hit_returns_the_claims_of_a_cold_validation(issuer, make_validator, clock, verifications):
    token = idsrv_token(issuer, clock.now)
    cold = make_validator(issuer, cache_size=0, clock=clock)
    cached = make_validator(issuer, clock=clock)

    first = cached.validate_access_token(token)
    assert verifications["n"] == 1
    hit = cached.validate_access_token(token)
    assert verifications["n"] == 1  # no second verification: served from the cache
    reference = cold.validate_access_token(token)
    assert verifications["n"] == 2

    for claims in (first, hit):
        assert dict(claims) == dict(reference)
        assert claims.to_dict() == reference.to_dict()
        assert claims.subject == reference.subject == "alice"
        assert claims.client_id == reference.client_id == "Coordinate"
        assert claims.scopes == reference.scopes == frozenset({"openid", "profile", "contacts", "wte"})
        assert claims.audiences == reference.audiences
        assert claims.issuer == reference.issuer == issuer.issuer
        assert claims.expires_at == reference.expires_at
        assert dict(claims.header) == dict(reference.header)
        assert claims["scope"] == ["openid", "profile", "contacts", "wte"]
        assert claims["amr"] == ["pwd"]


def test_cache_off_verifies_every_time(issuer, make_validator, verifications):
    validator = make_validator(issuer, cache_size=0)
    token = issuer.mint()
    for _ in range(3):
        validator.validate_access_token(token)
    assert verifications["n"] == 3
    assert validator._cache is None


def test_invalid_tokens_are_not_cached(issuer, make_validator):
    validator = make_validator(issuer, audience="api://other")
    token = issuer.mint()
    for _ in range(2):
        with pytest.raises(InvalidToken, match="audience"):
            validator.validate_access_token(token)
    assert len(validator._cache) == 0


def test_distinct_tokens_of_one_subject_have_distinct_entries(issuer, make_validator, clock, verifications):
    validator = make_validator(issuer, clock=clock)
    a = issuer.mint(scope=["contacts"], now=clock.now)
    b = issuer.mint(scope=["wte"], now=clock.now)
    claims_a = validator.validate_access_token(a)
    claims_b = validator.validate_access_token(b)
    assert len(validator._cache) == 2
    assert validator.validate_access_token(a).scopes == frozenset({"contacts"})
    assert validator.validate_access_token(b).scopes == frozenset({"wte"})
    assert verifications["n"] == 2
    # Entries share nothing mutable: each token keeps its own lists.
    assert claims_a["scope"] is not claims_b["scope"]
    assert claims_a["scope"] == ["contacts"] and claims_b["scope"] == ["wte"]


# --- expiry -----------------------------------------------------------------------


@pytest.mark.parametrize("leeway", [0, 30])
def test_entry_dies_at_exp(issuer, make_validator, clock, verifications, leeway):
    token = issuer.mint(expires_in=600, now=clock.now)
    exp = int(clock.now) + 600
    cached = make_validator(issuer, clock=clock, leeway=leeway)
    cold = make_validator(issuer, clock=clock, leeway=leeway, cache_size=0)

    cached.validate_access_token(token)
    clock.now = exp + leeway  # the last instant the cold path accepts
    cold.validate_access_token(token)
    before = verifications["n"]
    cached.validate_access_token(token)
    assert verifications["n"] == before  # still a hit

    clock.now = exp + leeway + 0.001
    with pytest.raises(InvalidToken, match="expired"):
        cold.validate_access_token(token)
    with pytest.raises(InvalidToken, match="expired"):
        cached.validate_access_token(token)
    assert len(cached._cache) == 0  # the dead entry is gone, not kept around


def test_entry_respects_nbf_when_the_clock_goes_back(issuer, make_validator, clock):
    token = issuer.mint(now=clock.now)  # nbf = now
    validator = make_validator(issuer, clock=clock, leeway=10)
    validator.validate_access_token(token)
    clock.advance(-9)
    validator.validate_access_token(token)  # inside the leeway, like the cold path
    clock.advance(-2)
    with pytest.raises(InvalidToken, match="not valid before"):
        validator.validate_access_token(token)


# --- key removal --------------------------------------------------------------------


def test_entries_of_a_key_that_left_the_jwks_are_dropped(make_issuer, make_validator, verifications):
    iss = make_issuer(algs=("RS256",))
    old_kid = iss.signing_kid
    validator = make_validator(iss)
    old_token = iss.mint(kid=old_kid)
    validator.validate_access_token(old_token)

    new_kid = iss.rotate("RS256")  # both keys published
    validator.keys.refresh()
    new_token = iss.mint(kid=new_kid)
    validator.validate_access_token(new_token)
    assert len(validator._cache) == 2
    count = verifications["n"]
    validator.validate_access_token(old_token)  # the old key is still published: a hit
    assert verifications["n"] == count

    iss.remove_key(old_kid)
    validator.keys.refresh()
    assert len(validator._cache) == 1  # only the entry of the removed key went
    with pytest.raises(InvalidToken, match="kid"):
        validator.validate_access_token(old_token)
    validator.validate_access_token(new_token)
    assert verifications["n"] == count  # the other key's entry is still served


def test_entry_is_not_served_once_its_key_is_gone_even_without_callback(make_issuer, make_validator):
    # The hit path itself checks the key is still live, so an entry cannot
    # outlive its key even if it was not swept.
    iss = make_issuer(algs=("RS256",))
    validator = make_validator(iss)
    old_kid = iss.signing_kid
    token = iss.mint()
    validator.validate_access_token(token)
    iss.rotate("RS256")
    iss.remove_key(old_kid)
    validator.keys._on_change = None  # no sweep
    validator.keys.refresh()
    assert len(validator._cache) == 1
    with pytest.raises(InvalidToken):
        validator.validate_access_token(token)


# --- altered tokens -------------------------------------------------------------------


@pytest.mark.parametrize("segment", [0, 1, 2])
@pytest.mark.parametrize("where", ["start", "middle"])
def test_token_altered_by_one_character_is_not_served_from_the_cache(
    issuer, make_validator, clock, verifications, segment, where
):
    validator = make_validator(issuer, clock=clock)
    token = idsrv_token(issuer, clock.now)
    validator.validate_access_token(token)
    assert len(validator._cache) == 1

    seg_len = len(token.split(".")[segment])
    position = 0 if where == "start" else seg_len // 2
    bad = altered(token, segment, position)
    assert bad != token and len(bad) == len(token)
    before = verifications["n"]
    with pytest.raises(InvalidToken):
        validator.validate_access_token(bad)
    # Rejected on its own merits: parsed (and, if it got that far, verified)
    # afresh, never answered from the original's entry.
    assert verifications["n"] in (before, before + 1)
    assert len(validator._cache) == 1
    validator.validate_access_token(token)  # the original is still a hit
    assert verifications["n"] in (before, before + 1)


def test_non_canonical_signature_encoding_gets_its_own_entry(issuer, make_validator, verifications):
    """The last base64url character of the signature has unused low bits
    (342 characters encode 256 bytes), so another string can decode to the
    same signature.  Whatever the decoder decides, that string is not the
    cached string and must not be answered from its entry."""
    validator = make_validator(issuer)
    token = issuer.mint()
    head, payload, sig = token.split(".")
    assert len(sig) % 4 == 2  # 2 characters for the last byte: 4 unused bits
    twin = None
    for char in ALPHABET:
        candidate = sig[:-1] + char
        if candidate != sig and b64url_decode(candidate) == b64url_decode(sig):
            twin = f"{head}.{payload}.{candidate}"
            break
    assert twin is not None
    validator.validate_access_token(token)
    before = verifications["n"]
    try:
        validator.validate_access_token(twin)
    except InvalidToken:
        assert len(validator._cache) == 1
    else:
        assert verifications["n"] == before + 1  # verified afresh
        assert len(validator._cache) == 2


def test_other_string_types_are_not_confused_with_cached_strings(issuer, make_validator, verifications):
    validator = make_validator(issuer)
    token = issuer.mint()
    validator.validate_access_token(token)
    # bytes are validated (cold) but never looked up under the str's entry.
    claims = validator.validate_access_token(token.encode("ascii"))
    assert claims.subject == "alice"
    assert verifications["n"] == 2
    with pytest.raises(InvalidToken):
        validator.validate_access_token(token + " ")
    with pytest.raises(InvalidToken):
        validator.validate_access_token(token + "\n")


# --- bound ---------------------------------------------------------------------------


@pytest.mark.parametrize("size,extra", [(1, 3), (5, 7)])
def test_cache_bound_holds(issuer, make_validator, clock, verifications, size, extra):
    validator = make_validator(issuer, clock=clock, cache_size=size)
    tokens = [issuer.mint(subject=f"user{i}", now=clock.now) for i in range(size + extra)]
    for token in tokens:
        validator.validate_access_token(token)
        assert len(validator._cache) <= size
    assert len(validator._cache) == size
    # The newest entries stay (least recently used ones went).
    before = verifications["n"]
    for token in tokens[-size:]:
        validator.validate_access_token(token)
    assert verifications["n"] == before
    validator.validate_access_token(tokens[0])
    assert verifications["n"] == before + 1
    assert len(validator._cache) == size


def test_a_hit_makes_an_entry_recently_used(issuer, make_validator, clock, verifications):
    validator = make_validator(issuer, clock=clock, cache_size=3)
    a, b, c, d = (issuer.mint(subject=f"user{i}", now=clock.now) for i in range(4))
    for token in (a, b, c):
        validator.validate_access_token(token)
    validator._front.clear()  # the front table would answer before the LRU
    validator.validate_access_token(a)  # a hit: a is now the most recent
    validator.validate_access_token(d)  # evicts b, the least recently used
    validator._front.clear()
    before = verifications["n"]
    for token in (a, c, d):
        validator.validate_access_token(token)
    assert verifications["n"] == before
    validator.validate_access_token(b)
    assert verifications["n"] == before + 1
    assert len(validator._cache) == 3


def test_clear_cache(issuer, make_validator, verifications):
    validator = make_validator(issuer)
    token = issuer.mint()
    validator.validate_access_token(token)
    validator.clear_cache()
    assert len(validator._cache) == 0
    validator.validate_access_token(token)
    assert verifications["n"] == 2


def test_concurrent_hits_and_misses(issuer, make_validator, clock):
    validator = make_validator(issuer, clock=clock, cache_size=4)
    tokens = [issuer.mint(subject=f"user{i}", now=clock.now) for i in range(6)]
    errors = []

    def worker(offset):
        try:
            for i in range(60):
                n = (i + offset) % len(tokens)
                assert validator.validate_access_token(tokens[n]).subject == f"user{n}"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(validator._cache) <= 4


def test_cache_size_zero_and_default():
    assert TokenValidator("https://idp.example.com", audience="a", cache_size=0)._cache is None
    assert TokenValidator("https://idp.example.com", audience="a")._cache_size == 10000


# --- what makes hits cheap and entries small must not weaken any check ----------------


def test_header_memo_follows_the_allowed_algorithms(make_issuer, make_validator):
    iss = make_issuer(algs=("RS256", "ES256"))
    validator = make_validator(iss, cache_size=0)
    validator.validate_access_token(iss.mint(alg="RS256"))  # RS256 header now remembered
    validator.algorithms = frozenset({"ES256"})
    with pytest.raises(InvalidToken, match="alg 'RS256' is not allowed"):
        validator.validate_access_token(iss.mint(alg="RS256"))
    validator.validate_access_token(iss.mint(alg="ES256"))


def test_header_memo_keeps_access_and_id_token_typ_rules_apart(issuer, make_validator):
    validator = make_validator(issuer)
    access = issuer.mint(typ="at+jwt")
    validator.validate_access_token(access)
    # The same header (typ at+jwt) on an ID Token is refused, memo or not.
    now = int(time.time())
    id_token = issuer.sign({"iss": issuer.issuer, "sub": "alice", "aud": "spa", "iat": now, "exp": now + 300},
                           typ="at+jwt")
    assert id_token.split(".")[0] == access.split(".")[0]
    with pytest.raises(InvalidToken, match="typ"):
        validator.validate_id_token(id_token, client_id="spa")


def test_rejected_headers_are_never_remembered(issuer, make_validator):
    validator = make_validator(issuer)
    for _ in range(2):
        with pytest.raises(InvalidToken, match="crit"):
            validator.validate_access_token(issuer.mint(header={"crit": ["exp"], "exp": 1}))
    assert all("crit" not in header for header, _alg, _kid in validator._header_memo.data.values())


def test_header_memo_is_bounded(issuer, make_validator):
    from oidc_guard.testing import forge_token

    validator = make_validator(issuer)
    validator.validate_access_token(issuer.mint())
    for n in range(200):  # distinct well-formed headers with unknown kids
        forged = forge_token({"alg": "RS256", "kid": f"nope-{n}"}, {"sub": "x"}, signature=b"s" * 256)
        with pytest.raises(InvalidToken):
            validator.validate_access_token(forged)
    assert len(validator._header_memo) <= 64


def test_claims_header_is_read_only_and_shared(issuer, make_validator):
    validator = make_validator(issuer)
    a = validator.validate_access_token(issuer.mint(subject="a"))
    b = validator.validate_access_token(issuer.mint(subject="b"))
    assert a.header == {"alg": "RS256", "kid": issuer.signing_kid, "typ": "at+jwt"}
    assert a.header is b.header
    with pytest.raises(TypeError):
        a.header["kid"] = "other"  # type: ignore[index]
    assert dict(a.header) == dict(b.header)


def test_cache_entries_share_strings_and_scope_sets_not_lists(issuer, make_validator, clock):
    validator = make_validator(issuer, clock=clock)
    a = validator.validate_access_token(idsrv_token(issuer, clock.now, sub="a"))
    b = validator.validate_access_token(idsrv_token(issuer, clock.now, sub="b"))
    assert a["iss"] is b["iss"]
    assert a["scope"][2] is b["scope"][2]
    assert a.scopes is b.scopes
    assert a["scope"] is not b["scope"] and a["aud"] is not b["aud"]
    assert (a.subject, b.subject) == ("a", "b")


def test_shared_string_table_is_bounded(issuer, make_validator, monkeypatch):
    from oidc_guard import _sharing as sharing_module

    monkeypatch.setattr(sharing_module, "_SHARED_STRINGS_MAX", 20)
    validator = make_validator(issuer)
    for n in range(10):
        claims = validator.validate_access_token(issuer.mint(subject=f"user-{n}", claims={"note": "x" * 300}))
        assert claims["note"] == "x" * 300 and claims.subject == f"user-{n}"
    assert len(validator._sharing.strings) <= 20
    assert "x" * 300 not in validator._sharing.strings  # long values are not kept


def test_front_table_is_bounded_and_only_an_accelerator(issuer, make_validator, clock, verifications, monkeypatch):
    from oidc_guard import validator as validator_module

    monkeypatch.setattr(validator_module, "_FRONT_MAX", 3)
    validator = make_validator(issuer, clock=clock, cache_size=10)
    tokens = [issuer.mint(subject=f"user{i}", now=clock.now) for i in range(7)]
    for _ in range(3):
        for n, token in enumerate(tokens):
            # a new str object each time, as a server makes per request
            assert validator.validate_access_token(("." + token)[1:]).subject == f"user{n}"
            assert len(validator._front) <= 3
    assert verifications["n"] == len(tokens)  # every repeat was a hit
    # Its entries obey the same rules: expiry ...
    clock.advance(3600 + 61)
    with pytest.raises(InvalidToken, match="expired"):
        validator.validate_access_token(tokens[-1])
    assert tokens[-1] not in validator._front


def test_a_cached_claims_object_stays_in_the_64_byte_size_class():
    """100,000 cached tokens under 100 MB (issue 9): the Claims of an entry
    has four slots (64 bytes with the GC header); a fifth would cost 16
    bytes more per entry.  The per-request binding lives in a subclass."""
    import sys

    from oidc_guard.claims import Claims

    claims = Claims({"sub": "a", "aud": ["x"], "scope": "s"})
    assert sys.getsizeof(claims) <= 64
    bound = claims._with_binding("dpop")
    assert bound.binding == "dpop" and claims.binding is None
    assert dict(bound) == dict(claims) and bound.scopes == claims.scopes and bound.audiences == ("x",)
