"""``cached_access_token``: the no-I/O look-up an event loop uses to answer
cached tokens on the loop (oidc_guard._aio) and to send every other token
to a thread.  It must never do I/O, never refuse (only ``None``: "ask
validate_access_token") and answer only what validate_access_token would
answer from its caches right now."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request

import pytest

from oidc_guard import MultiIssuerValidator, TokenValidator
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_jwt_is_cached_only_after_validation_and_dies_at_exp(issuer):
    clock = Clock()
    v = TokenValidator(issuer.issuer, audience=issuer.audience, clock=clock, leeway=0)
    token = issuer.mint({"exp": int(clock.now) + 60})
    assert v.cached_access_token(token) is None
    assert issuer.fetch_counts["jwks"] == 0  # the look-up fetched nothing
    claims = v.validate_access_token(token)
    before = issuer.fetch_counts
    assert v.cached_access_token(token) is claims
    assert issuer.fetch_counts == before
    clock.now += 61
    assert v.cached_access_token(token) is None  # expired: validate decides (and refuses)


def test_an_entry_whose_key_left_the_jwks_is_not_answered(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience)
    token = issuer.mint()
    v.validate_access_token(token)
    fingerprint = v.cached_access_token(token)._key_fingerprint
    v.keys.live = frozenset(v.keys.live - {fingerprint})
    assert v.cached_access_token(token) is None


@pytest.mark.parametrize("junk", [None, b"bytes", 42, "", "a.b.c", "x" * 20000])
def test_junk_is_none_never_an_exception(issuer, junk):
    v = TokenValidator(issuer.issuer, audience=issuer.audience)
    assert v.cached_access_token(junk) is None
    assert issuer.fetch_counts["discovery"] == 0


def test_without_a_cache_nothing_is_answered(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, cache_size=0)
    token = issuer.mint()
    v.validate_access_token(token)
    assert v.cached_access_token(token) is None


def _reference_token(issuer) -> str:
    data = urllib.parse.urlencode({"grant_type": "client_credentials"}).encode()
    req = urllib.request.Request(issuer.token_endpoint, data=data)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"wte-worker-ref:wte-secret").decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        return json.loads(resp.read())["access_token"]


def test_a_reference_token_is_answered_from_the_introspection_cache_only(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2,
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    token = _reference_token(issuer)
    assert v.cached_access_token(token) is None
    assert issuer.fetch_counts.get("introspection", 0) == 0  # not introspected by the look-up
    claims = v.validate_access_token(token)
    assert v.cached_access_token(token) is claims
    assert issuer.fetch_counts["introspection"] == 1


def test_an_inactive_cached_answer_is_left_to_validate(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=2,
                       introspection_client_id=INTROSPECTION_CLIENT_ID,
                       introspection_client_secret=INTROSPECTION_CLIENT_SECRET)
    token = "unknown-reference-token-0123456789abcdef"
    with pytest.raises(Exception):
        v.validate_access_token(token)
    assert v.cached_access_token(token) is None


def test_multi_answers_only_tokens_it_has_routed(make_issuer):
    a, b = make_issuer(), make_issuer()
    multi = MultiIssuerValidator([TokenValidator(a.issuer, audience=a.audience),
                                  TokenValidator(b.issuer, audience=b.audience)])
    token = b.mint()
    assert multi.cached_access_token(token) is None
    claims = multi.validate_access_token(token)
    assert multi.cached_access_token(token) is claims
    assert multi.cached_access_token(a.mint()) is None
