"""Hostile input, property-based (hypothesis).

* the token parser (``validate_access_token``): random text, random bytes,
  mutations of a genuine token, and genuinely *signed* tokens with random
  headers and claims: the only outcomes are ``Claims`` (and then the claims
  really passed every check) or ``InvalidToken``; never another exception,
  never more than a bounded time per token;
* the ``Authorization`` header parser (``extract_token``): a token, ``None``
  or ``InvalidRequest``, and a returned token is always an RFC 6750 b64token;
* the middleware: only 200 / 400 / 401 / 403, each error with its RFC 6750
  challenge and JSON body, and for known tokens exactly the expected status.

``OIDC_GUARD_FUZZ_EXAMPLES`` (default 300) scales every property.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import time
from typing import Any, Dict, Optional

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from oidc_guard import InvalidRequest, InvalidToken
from oidc_guard.testing import LocalIssuer
from oidc_guard.wsgi import extract_token

from .conftest import AUDIENCE, REALM, call_wsgi, protected_app, validator_for

pytestmark = pytest.mark.reliability

EXAMPLES = int(os.environ.get("OIDC_GUARD_FUZZ_EXAMPLES", "300"))
#: A token is at most 16 KiB and parsing is linear: a second is a hang, not
#: slowness (the benchmark, not this suite, measures speed).
PER_TOKEN_BOUND = 1.0

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # timing is asserted explicitly, with a generous bound
    database=None,  # CI runs from clean clones; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@pytest.fixture(scope="module")
def env():
    iss = LocalIssuer(algs=("RS256", "ES256")).start()
    v = validator_for(iss)
    genuine = iss.mint()
    v.validate_access_token(genuine)  # discovery + JWKS fetched once, up front
    yield {"iss": iss, "v": v, "genuine": genuine}
    iss.stop()


def _segments(token: str):
    """Decoded bytes of a compact JWS, or None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return tuple(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)
    except (binascii.Error, ValueError):
        return None


def _validate(v, token: Any):
    """Run the validator; return Claims or the InvalidToken; anything else
    propagates and fails the property."""
    t0 = time.perf_counter()
    try:
        result = v.validate_access_token(token)
    except InvalidToken as exc:
        result = exc
    elapsed = time.perf_counter() - t0
    assert elapsed < PER_TOKEN_BOUND, f"{elapsed:.3f} s for one token"
    return result


def _assert_claims_are_usable(claims) -> None:
    """Every accessor of a verified token works (an app calls them)."""
    claims.subject, claims.client_id, claims.scopes, claims.issuer, claims.audiences
    claims.expires_at, claims.is_client_token, claims.to_dict(), repr(claims)


# --- the token parser -------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=3000))
def test_random_text_is_invalid_token(env, text):
    assert isinstance(_validate(env["v"], text), InvalidToken)


@FUZZ
@given(text=st.from_regex(r"[A-Za-z0-9_\-]{0,400}\.[A-Za-z0-9_\-]{0,400}\.[A-Za-z0-9_\-]{0,400}", fullmatch=True))
def test_random_three_segment_base64url_is_invalid_token(env, text):
    assert isinstance(_validate(env["v"], text), InvalidToken)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_are_invalid_token(env, data):
    assert isinstance(_validate(env["v"], data), InvalidToken)


@FUZZ
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text()), st.dictionaries(st.text(), st.text())))
def test_non_string_tokens_are_invalid_token(env, value):
    assert isinstance(_validate(env["v"], value), InvalidToken)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é"


@st.composite
def mutations(draw, genuine: str):
    token = genuine
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "delete", "insert", "swap-segments", "duplicate-segment", "truncate"]))
        n = len(token)
        if op == "replace" and n:
            i = draw(st.integers(0, n - 1))
            token = token[:i] + draw(st.sampled_from(_ALPHABET)) + token[i + 1:]
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, min(n, i + 40)))
            token = token[:i] + token[j:]
        elif op == "insert":
            i = draw(st.integers(0, n))
            token = token[:i] + draw(st.text(alphabet=_ALPHABET, min_size=1, max_size=20)) + token[i:]
        elif op == "swap-segments":
            parts = token.split(".")
            order = draw(st.permutations(range(len(parts))))
            token = ".".join(parts[k] for k in order)
        elif op == "duplicate-segment":
            parts = token.split(".")
            k = draw(st.integers(0, len(parts) - 1))
            parts.insert(k, parts[k])
            token = ".".join(parts)
        elif op == "truncate" and n:
            token = token[: draw(st.integers(0, n - 1))]
    return token


@FUZZ
@given(data=st.data())
def test_mutated_genuine_token(env, data):
    """A mutated token is refused, unless the mutation did not change what
    the segments decode to (base64url has spare bits in its last
    character: 'A' and 'B' may end a segment with the same bytes)."""
    genuine = env["genuine"]
    token = data.draw(mutations(genuine))
    result = _validate(env["v"], token)
    if not isinstance(result, InvalidToken):
        assert _segments(token) == _segments(genuine), "a changed token validated"
        _assert_claims_are_usable(result)


@FUZZ
@given(data=st.data(), nonce=st.one_of(st.none(), st.text(max_size=20)))
def test_mutated_id_token(env, data, nonce):
    """The ID Token path: text, mutations of a genuine ID Token, and random
    nonce / access_token / code bindings give Claims or InvalidToken only."""
    iss, v = env["iss"], env["v"]
    genuine = iss.mint_id_token("spa", nonce="n-0", access_token=env["genuine"])
    token = data.draw(st.one_of(mutations(genuine), st.text(max_size=500)))
    access_token = data.draw(st.sampled_from([None, env["genuine"], "other", ""]))
    t0 = time.perf_counter()
    try:
        claims = v.validate_id_token(token, client_id="spa", nonce=nonce, access_token=access_token)
    except InvalidToken:
        pass
    else:
        assert _segments(token) == _segments(genuine)
        assert nonce in (None, "n-0") and access_token in (None, env["genuine"])
        _assert_claims_are_usable(claims)
    assert time.perf_counter() - t0 < PER_TOKEN_BOUND


# --- signed tokens with random headers and claims --------------------------------

_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
_json_value = st.recursive(_json_scalar, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                                  st.dictionaries(st.text(max_size=8), kids, max_size=3)),
                           max_leaves=8)


@st.composite
def claim_sets(draw, iss: LocalIssuer):
    """Claims around the valid ones: each registered claim is either right,
    absent, or replaced by something else (wrong type, wrong value,
    out-of-range time)."""
    now = int(time.time())
    right = {"iss": iss.issuer, "aud": AUDIENCE, "exp": now + 600, "nbf": now - 10, "iat": now - 10,
             "sub": "alice", "scope": "contacts"}
    wrong = {
        "iss": st.sampled_from([iss.issuer + "/", iss.issuer.upper(), "https://evil.example", "", None, 1]),
        "aud": st.sampled_from([[AUDIENCE, "x"], ["x"], "x", [], None, 5, [AUDIENCE, 1], AUDIENCE + " "]),
        # (an exp past year 9999 is test_signed_token_with_far_future_exp_has_usable_claims)
        "exp": st.sampled_from([now - 3600, now - 61, 0, -1, "tomorrow", True, None, -1e20,
                                float("-inf"), float("nan"), 253402300799, now + 59.5]),
        "nbf": st.sampled_from([now + 3600, now + 61, "now", True, 1e20, float("inf"), float("nan")]),
        "iat": st.sampled_from([now + 3600, now + 61, "then", False, -1e20, float("nan")]),
        "sub": _json_value,
        "scope": _json_value,
    }
    body: Dict[str, Any] = {}
    for name, value in right.items():
        choice = draw(st.sampled_from(["right", "right", "right", "right", "absent", "wrong"]))
        if choice == "right":
            body[name] = value
        elif choice == "wrong":
            body[name] = draw(wrong[name])
    extra = draw(st.dictionaries(st.text(max_size=10), _json_value, max_size=4))
    for name, value in extra.items():
        body.setdefault(name, value)
    return body


_header_names = st.sampled_from(["typ", "cty", "crit", "jku", "x5u", "jwk", "x5c", "b64", "zip", "enc", "kid", "alg"])


@FUZZ
@given(data=st.data())
def test_signed_tokens_with_random_claims_and_headers(env, data):
    """Signed by the issuer's real key, so only the claim checks decide:
    whatever validates must satisfy every rule."""
    iss, v = env["iss"], env["v"]
    body = data.draw(claim_sets(iss))
    header = data.draw(st.dictionaries(_header_names, _json_value, max_size=3))
    header.pop("alg", None)  # the alg must stay the key's, or the signature is meaningless
    if "kid" in header and data.draw(st.booleans()):
        header.pop("kid")
    typ = data.draw(st.sampled_from(["at+jwt", "JWT", "application/at+jwt", None, "jwt", "id_token+jwt", "JOSE"]))
    try:
        token = iss.sign(body, alg=data.draw(st.sampled_from(["RS256", "ES256"])), header=header, typ=typ)
    except ValueError:
        assume(False)  # JSON cannot encode it (e.g. NaN is fine, but not every float); skip
    result = _validate(v, token)
    if isinstance(result, InvalidToken):
        return
    now = time.time()
    # RFC 7519 7.2 / RFC 9068 4: what "valid" must mean
    assert result["iss"] == iss.issuer
    aud = result["aud"]
    assert aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud)
    exp = result["exp"]
    assert isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp == exp and exp + v.leeway >= now
    for name in ("nbf", "iat"):
        if name in result:
            value = result[name]
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
            assert value <= now + v.leeway + 1
    assert not {"crit"} & set(result.header)
    assert str(result.header.get("cty", "")).lower() not in ("jwt", "application/jwt")
    _assert_claims_are_usable(result)


@pytest.mark.parametrize("exp", [
    pytest.param(lambda now: now + 600, id="ordinary"),
    pytest.param(lambda now: 253402300799, id="last-second-of-9999"),
    pytest.param(lambda now: now + 10 ** 12, id="year-33000"),
    pytest.param(lambda now: 2 ** 63, id="2^63"),
    pytest.param(lambda now: 1e20, id="1e20"),
    pytest.param(lambda now: float("inf"), id="Infinity"),
])
def test_signed_token_with_far_future_exp_has_usable_claims(env, exp):
    """The claims of a token the validator accepted must all be readable:
    an exp far in the future is the issuer's business (a "never expires"
    token), but reading ``expires_at`` must not crash the application."""
    iss, v = env["iss"], env["v"]
    result = _validate(v, iss.mint({"exp": exp(int(time.time()))}))
    if isinstance(result, InvalidToken):
        return  # refusing a non-finite or absurd exp is a correct answer too
    _assert_claims_are_usable(result)


# --- the Authorization header parser ---------------------------------------------


_schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Digest", "DPoP", "Bearer,", "Bearerx", ""])
_header_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300),  # latin-1, as WSGI gives
    st.builds(lambda s, sep, t: s + sep + t, _schemes, st.sampled_from(["", " ", "  ", "\t", ", "]),
              st.text(alphabet=_ALPHABET + ",\t\"", max_size=200)),
)


@FUZZ
@given(header=_header_text)
def test_authorization_header_parser(header):
    environ = {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": header, "QUERY_STRING": ""}
    try:
        token = extract_token(environ)
    except InvalidRequest as exc:
        assert exc.status == 400
        return
    if token is not None:
        assert B64TOKEN.fullmatch(token), token
        assert header.strip(" \t")[:6].lower() == "bearer"
        assert header.strip(" \t").endswith(token)


# --- the middleware ---------------------------------------------------------------


@pytest.fixture(scope="module")
def known_tokens(env):
    """Tokens whose correct answer is known: (token, status on /contacts)."""
    iss = env["iss"]
    return [
        (iss.mint(), 200),
        (iss.mint(alg="ES256"), 200),
        (iss.mint(scope="other"), 403),
        (iss.mint(expires_in=-3600), 401),
        (iss.mint(audience="api://other"), 401),
        (iss.mint(kid=iss.add_key(publish=False)), 401),
        (iss.mint(issuer="https://evil.example"), 401),
        (env["genuine"][:-4] + "AAAA", 401),
    ]


def _check_error_response(r) -> None:
    assert r.status in (200, 400, 401, 403), r
    if r.status == 200:
        return
    body = json.loads(r.body)
    assert set(body) == {"error", "error_description"}
    challenge = r.challenge("Bearer")
    assert challenge is not None and challenge.startswith("Bearer")
    assert f'realm="{REALM}"' in challenge
    assert "\r" not in challenge and "\n" not in challenge
    expected = {400: "invalid_request", 401: None, 403: "insufficient_scope"}[r.status]
    if expected:
        assert body["error"] == expected and f'error="{expected}"' in challenge
    assert r.header("Content-Length") == str(len(r.body))


@FUZZ
@given(header=st.one_of(st.none(), _header_text),
       query=st.text(max_size=100),
       path=st.text(max_size=50),
       required=st.booleans())
def test_middleware_only_answers_200_400_401_403(env, header, query, path, required):
    app = protected_app(env["v"], required=required)
    r = call_wsgi(app, authorization=header, query=query.encode("utf-8", "surrogatepass").decode("latin-1"),
                  path="/" + path.encode("utf-8", "surrogatepass").decode("latin-1"))
    _check_error_response(r)
    assert r.status != 200  # random headers never carry a valid token


@FUZZ
@given(data=st.data())
def test_middleware_gives_the_expected_answer_for_known_tokens(env, known_tokens, data):
    token, expected = data.draw(st.sampled_from(known_tokens))
    scheme = data.draw(st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]))
    spaces = data.draw(st.sampled_from([" ", "  "]))
    padding = data.draw(st.sampled_from(["", " ", "\t", " \t "]))
    required = data.draw(st.booleans())
    r = call_wsgi(protected_app(env["v"], required=required),
                  authorization=padding + scheme + spaces + token + padding)
    _check_error_response(r)
    assert r.status == expected, (expected, r)
