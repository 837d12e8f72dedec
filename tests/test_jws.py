"""oidc_guard._jws: the one compact-JWS parser (split, base64url, strict
JSON, NumericDate, JOSE header, the unverified iss).  Every refusal with its
reason; the validator, DPoP and multi-issuer routing use these functions."""

import base64
import json
import math

import pytest

from oidc_guard import _jws, _sharing, dpop, multi, validator
from oidc_guard.errors import InvalidToken


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seg(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


HEADER = seg({"alg": "RS256", "kid": "k1", "typ": "JWT"})
PAYLOAD = seg({"iss": "https://idp.example.com", "sub": "alice"})
TOKEN = f"{HEADER}.{PAYLOAD}.c2lnbmF0dXJl"


def refused(fn, *args, reason, match=None, **kwargs) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        fn(*args, **kwargs)
    assert info.value.reason == reason, info.value.description
    if match is not None:
        assert match in info.value.description, info.value.description
    return info.value


# --- base64url ------------------------------------------------------------------


def test_b64decode_std_refuses_impossible_length_and_non_canonical_pad_bits():
    assert _jws.b64decode_std(b"YQ") == b"a"
    with pytest.raises(ValueError, match="impossible"):
        _jws.b64decode_std(b"YWJjZ")  # 5 characters: 1 mod 4
    with pytest.raises(ValueError, match="non-canonical"):
        _jws.b64decode_std(b"YR")  # "a" spelled with a pad bit set
    with pytest.raises(ValueError, match="non-canonical"):
        _jws.b64decode_std(b"YWJ")  # ok is "YWI" ("ab"): last char with 2 pad bits set
    assert _jws.b64decode_std(b"YWI") == b"ab"


@pytest.mark.parametrize("text", ["YQ==", "Y+Q", "Y/Q", "a.b", "YQ\n", "Yé"])
def test_b64url_decode_accepts_only_the_base64url_alphabet(text):
    with pytest.raises(ValueError):
        _jws.b64url_decode(text)


def test_b64url_decode_round_trips_both_str_and_bytes():
    data = bytes(range(256))
    assert _jws.b64url_decode(b64(data)) == data
    assert _jws.b64url_decode(b64(data).encode()) == data
    assert _jws.b64url_decode("-_8") == b"\xfb\xff"


# --- strict JSON ---------------------------------------------------------------------


def test_duplicate_members_are_refused_by_the_one_check():
    with pytest.raises(ValueError, match="duplicate member 'a'"):
        _jws.reject_duplicates([("a", 1), ("b", 2), ("a", 3)])
    assert _jws.reject_duplicates([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    # the same function under its old names (oidc_guard.http imports it from _sharing)
    assert _sharing.check_no_duplicates is _jws.check_no_duplicates


@pytest.mark.parametrize("raw, match", [
    (b"\xff{}", "is not UTF-8"),
    (b'{"a":', "is not valid JSON"),
    (b'{"a":1} x', "is not valid JSON"),
    (b'{"a":1,"a":2}', "has a duplicate member 'a'"),
    (b'{"x":{"a":1,"a":2}}', "has a duplicate member 'a'"),  # nested objects too
    (b"[1]", "is not a JSON object"),
    (b'"text"', "is not a JSON object"),
    (b"[" * 100000 + b"]" * 100000, "is nested too deeply"),
])
def test_parse_json_object_refusals(raw, match):
    refused(_jws.parse_json_object, raw, "payload", reason="malformed", match="token payload " + match)


def test_parse_json_object_accepts_whitespace_around_the_object_as_json_does():
    assert _jws.parse_json_object(b' {"a": 1}\n', "header") == {"a": 1}
    assert _jws.parse_json_object(b'{"a":1}', "header") == {"a": 1}


# --- NumericDate ---------------------------------------------------------------------


@pytest.mark.parametrize("value, ok", [
    (0, True), (1_700_000_000, True), (1.5, True), (_jws.MAX_TIME, True), (_jws.MIN_TIME, True),
    (_jws.MAX_TIME + 1, False), (_jws.MIN_TIME - 1, False), (True, False), (False, False),
    (math.nan, False), (math.inf, False), (-math.inf, False), ("1700000000", False), (None, False),
])
def test_is_numeric_date(value, ok):
    assert _jws.is_numeric_date(value) is ok


def test_iso():
    assert _jws.iso(0) == "1970-01-01T00:00:00Z"
    assert _jws.iso(1e300) == str(1e300)  # outside datetime: the number itself


# --- the token, its shape and split -----------------------------------------------------


@pytest.mark.parametrize("token, match", [
    (b"\xffabc", "is not ASCII"),
    (12, "must be a string, not int"),
    (None, "must be a string, not NoneType"),
    ("", "is empty"),
    ("a" * 101, "is 101 bytes; the limit is 100"),
])
def test_token_text_refusals(token, match):
    refused(_jws.token_text, token, "access token", 100, reason="malformed", match="access token " + match)


def test_token_text_decodes_ascii_bytes():
    assert _jws.token_text(b"a.b.c", "access token", 100) == "a.b.c"


@pytest.mark.parametrize("token, match", [
    ("a.b.c.d.e", "is an encrypted JWT (JWE)"),
    ("a.b", "has 2 segment(s); a JWS has 3"),
    ("abc", "has 1 segment(s)"),
    ("a.b+.c", "contains characters outside the base64url alphabet"),
    ("a.b.c=", "contains characters outside the base64url alphabet"),
    ("a.b.", "has no signature; unsigned tokens (alg none) are never accepted"),
    ("a..c", "has an empty segment"),
    (".b.c", "has an empty segment"),
    ("a.bé.c", "contains characters outside the base64url alphabet"),
])
def test_split_refusals_are_malformed_in_the_words_of_shape_error(token, match):
    error = refused(_jws.split, token, "access token", reason="malformed")
    assert error.description == _jws.shape_error(token, "access token")
    assert match in error.description


def test_split_returns_the_bytes_and_standard_alphabet_segments():
    raw, h, p, s = _jws.split("ab-_.cd.e-", "access token")
    assert raw == b"ab-_.cd.e-"
    assert (h, p, s) == (b"ab+/", b"cd", b"e+")
    assert raw[: len(h) + 1 + len(p)] == b"ab-_.cd"  # the signing input
    # the same acceptance as the reference regex, for every ASCII byte in every segment
    for byte in range(128):
        ch = chr(byte)
        for token in (f"a{ch}.b.c", f"a.b{ch}.c", f"a.b.c{ch}"):
            accepted = _jws.COMPACT_JWS.fullmatch(token) is not None
            try:
                _jws.split(token, "t")
            except InvalidToken:
                assert not accepted, token
            else:
                assert accepted, token


def test_split_std_for_dpop_proofs():
    raw = TOKEN.encode()
    h, p, s, second = _jws.split_std(raw, ())
    assert h == HEADER.encode() and raw[:second] == f"{HEADER}.{PAYLOAD}".encode()
    assert _jws.b64decode_std(p) == base64.urlsafe_b64decode(PAYLOAD + "==")
    assert _jws.split_std(b"abc", ()) is None  # no dot
    assert _jws.split_std(b"a.b", ()) is None  # one dot
    assert _jws.split_std(b"a.b+.c", ()) is None  # payload outside the alphabet
    assert _jws.split_std(b"a.b.c.d", ()) is None  # a third dot is in the signature segment
    assert _jws.split_std(b"a=.b.c", ()) is None  # header outside the alphabet
    # empty segments are the caller's to word
    assert _jws.split_std(b"..", ()) == (b"", b"", b"", 1)
    # a header the caller already checked in full is not checked again
    assert _jws.split_std(b"a.b.c", {b"a"}) == (b"a", b"b", b"c", 3)


# --- the JOSE header ----------------------------------------------------------------------

ALGS = frozenset({"RS256", "ES256"})
TYP = frozenset({"at+jwt", "jwt"})


@pytest.mark.parametrize("header, reason, match", [
    ({}, "algorithm", "header has no alg"),
    ({"alg": 1}, "algorithm", "header has no alg"),
    ({"alg": "none"}, "algorithm", "is unsigned"),
    ({"alg": "NONE"}, "algorithm", "is unsigned"),
    ({"alg": "HS256"}, "algorithm", "symmetric alg 'HS256'"),
    ({"alg": "PS256"}, "algorithm", "alg 'PS256' is not allowed; allowed: ['ES256', 'RS256']"),
    ({"alg": "RS256", "crit": ["exp"]}, "malformed", "critical header extension(s) ['exp']"),
    ({"alg": "RS256", "cty": "JWT"}, "token_type", "is a nested JWT"),
    ({"alg": "RS256", "cty": "application/jwt"}, "token_type", "is a nested JWT"),
    ({"alg": "RS256", "typ": "dpop+jwt"}, "token_type", "has typ 'dpop+jwt'"),
    ({"alg": "RS256", "typ": 7}, "token_type", "has typ 7"),
    ({"alg": "RS256", "kid": 7}, "malformed", "kid is not a string"),
])
def test_check_header_refusals(header, reason, match):
    refused(_jws.check_header, header, ALGS, TYP, "access token", reason=reason, match=match)


def test_check_header_accepts_and_returns_alg_and_kid():
    assert _jws.check_header({"alg": "RS256"}, ALGS, TYP, "t") == ("RS256", None)
    assert _jws.check_header({"alg": "ES256", "kid": "k", "typ": "application/AT+JWT", "cty": "json"},
                             ALGS, TYP, "t") == ("ES256", "k")
    # keys in the token itself are never looked at
    assert _jws.check_header({"alg": "RS256", "jwk": {"kty": "RSA"}, "jku": "https://x", "x5c": ["x"]},
                             ALGS, TYP, "t") == ("RS256", None)


# --- looks_like_jws ---------------------------------------------------------------------------


@pytest.mark.parametrize("token, shape", [
    (TOKEN, True),
    (f"{HEADER}.{PAYLOAD}.", True),  # still the shape: the local path refuses it in words
    ("mF_9.B5f-4.1JqM", False),  # RFC 7662's example reference token
    (f"{seg({'typ': 'JWT'})}.{PAYLOAD}.c2ln", False),  # no alg
    (f"{seg([1])}.{PAYLOAD}.c2ln", False),  # not an object
    (f"{HEADER}.{PAYLOAD}", False),
    (f".{PAYLOAD}.c2ln", False),
    (f"{HEADER}.{PAYLOAD}.c2ln.x", False),
    (f"{HEADER}.{PAYLOAD}.c2l=", False),
    ("2YotnFZFEjr1zCsicMWpAA", False),
])
def test_looks_like_jws(token, shape):
    assert _jws.looks_like_jws(token) is shape
    assert validator.looks_like_jws is _jws.looks_like_jws  # the name multi.py imports


# --- the unverified issuer --------------------------------------------------------------------


def test_unverified_issuer_fast_and_strict_paths():
    assert _jws.unverified_issuer(TOKEN, "access token") == "https://idp.example.com"
    escaped = b64(b'{"sub":"a","iss":"https:\\/\\/idp.example.com"}')
    assert _jws.unverified_issuer(f"{HEADER}.{escaped}.c2ln", "access token") == "https://idp.example.com"


@pytest.mark.parametrize("payload, reason, match", [
    (seg({"sub": "a"}), "issuer", "has no iss claim, so no trusted issuer can be chosen"),
    (seg({"iss": 5}), "issuer", "iss is not a string"),
    (b64(b'{"iss":"https://a","iss":"https://b"}'), "malformed", "duplicate member 'iss'"),
    (b64(b"not json"), "malformed", "is not valid JSON"),
    ("YR", "malformed", "has a segment that is not valid base64url"),
    ("a+b", "malformed", "characters outside the base64url alphabet"),
])
def test_unverified_issuer_refusals(payload, reason, match):
    refused(_jws.unverified_issuer, f"{HEADER}.{payload}.c2ln", "access token", reason=reason, match=match)


@pytest.mark.parametrize("token", ["a.b", "a..c", ".b.c", "a.b.", "a.b.c.d", "a.bé.c"])
def test_unverified_issuer_shape_refusals(token):
    error = refused(_jws.unverified_issuer, token, "access token", reason="malformed")
    assert error.description == _jws.shape_error(token, "access token")


def test_foreign_issuer_is_an_issuer_refusal_bounded_and_explained():
    error = _jws.foreign_issuer("https://other.example.com", "https://idp.example.com", "access token")
    assert error.reason == "issuer"
    assert error.description == ("access token issued by 'https://other.example.com', not by the "
                                 "trusted issuer 'https://idp.example.com'")
    slash = _jws.foreign_issuer("https://idp.example.com/", "https://idp.example.com", "ID Token")
    assert "differ only in a trailing slash" in slash.description
    long = _jws.foreign_issuer("x" * 1000, "https://idp.example.com", "access token")
    assert len(long.description) < 250


def test_show_is_bounded_and_quoted():
    assert _jws.show("abc") == "'abc'"
    assert _jws.show("x" * 100) == "'" + "x" * 60 + "..."
    assert len(_jws.show("y" * 1000, 120)) == 120


def test_the_validator_and_dpop_use_the_one_parser():
    """No second copy of the tables or the decoders: the names other
    modules import are the _jws objects themselves."""
    assert validator._parse_json_object is _jws.parse_json_object
    assert validator._b64decode_std is _jws.b64decode_std
    assert validator._SEGMENT_TO_STD_OR_BAD is _jws.SEGMENT_TO_STD_OR_BAD
    assert validator._token_text is _jws.token_text
    assert validator._is_number is _jws.is_numeric_date
    assert validator.TokenValidator._shape_error is _jws.shape_error
    assert dpop._SEGMENT_TO_STD_OR_BAD is _jws.SEGMENT_TO_STD_OR_BAD
    assert multi.unverified_issuer is _jws.unverified_issuer
    assert multi.token_text is _jws.token_text
