"""oidc_guard._aio: the async path for event loops.  A cached token is
answered on the loop; everything that may wait on the network runs in the
bounded worker pool, so the loop is never blocked by a slow provider."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from oidc_guard import InvalidToken, TokenValidator
from oidc_guard import _aio
from oidc_guard.auth import Authenticator
from oidc_guard.credentials import Facts


def bearer(token: str) -> Facts:
    return Facts("GET", authorization="Bearer " + token, path="/contacts")


@pytest.fixture
def blocking_calls(monkeypatch):
    """Every connect() and time.sleep(), with the thread it ran in."""
    seen = []
    real_connect = socket.socket.connect
    real_sleep = time.sleep

    def connect(self, address):
        seen.append(("connect", threading.current_thread()))
        return real_connect(self, address)

    def sleep(seconds):
        seen.append(("sleep", threading.current_thread()))
        return real_sleep(seconds)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(time, "sleep", sleep)
    return seen


def test_a_new_token_is_validated_off_the_loop_and_a_cached_one_on_it(issuer, blocking_calls):
    v = TokenValidator(issuer.issuer, audience=issuer.audience)
    auth = Authenticator(v)
    token = issuer.mint()

    async def run():
        loop_thread = threading.current_thread()
        first = await _aio.authenticate_async(auth, bearer(token))
        network = [thread for _what, thread in blocking_calls]
        calls_before = len(blocking_calls)
        second = await _aio.authenticate_async(auth, bearer(token))
        return loop_thread, first, second, network, calls_before

    loop_thread, first, second, network, calls_before = asyncio.run(run())
    assert first.error is None and first.claims.subject == "alice"
    assert second.claims is first.claims
    assert network, "the first validation fetched discovery and the JWKS"
    assert all(thread is not loop_thread for thread in network)  # never on the loop
    assert len(blocking_calls) == calls_before  # the cached token needed no network


def test_a_cached_token_is_answered_while_another_waits_for_a_slow_jwks(issuer, blocking_calls):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, jwks_cooldown=0)
    auth = Authenticator(v)
    cached = issuer.mint()
    v.validate_access_token(cached)
    issuer.add_key("RS256", kid="rotated")  # a kid the validator has not seen: a JWKS refetch
    fresh = issuer.mint(kid="rotated")
    issuer.set_fault("jwks", delay=1.5)

    async def run():
        slow = asyncio.ensure_future(_aio.authenticate_async(auth, bearer(fresh)))
        await asyncio.sleep(0.2)  # the refetch is now waiting on the slow JWKS
        started = time.monotonic()
        quick = await _aio.authenticate_async(auth, bearer(cached))
        quick_took = time.monotonic() - started
        done_first = not slow.done()
        result = await slow
        return quick, quick_took, done_first, result

    quick, quick_took, done_first, slow_result = asyncio.run(run())
    assert quick.claims is not None and quick_took < 0.5 and done_first
    assert slow_result.claims is not None  # the slow fetch finished and found the new key
    assert issuer.fetch_counts["jwks"] >= 2


def test_refusals_are_the_sync_pipeline_s(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience)
    auth = Authenticator(v)
    bad = issuer.mint({"aud": "api://other"})

    async def run():
        return (await _aio.authenticate_async(auth, bearer(bad)),
                await _aio.authenticate_async(auth, Facts("GET", authorization="Bearer a b")),
                await _aio.authenticate_async(auth, Facts("GET")))

    refused, malformed, anonymous = asyncio.run(run())
    sync = auth.authenticate(bearer(bad))
    assert refused.error.reason == sync.error.reason == "audience"
    assert refused.error.description == sync.error.description and refused.credential == sync.credential
    assert malformed.error.reason == "invalid_request"
    assert anonymous.credential is None and anonymous.error is None


def test_validate_access_token_async_raises_as_the_validator(issuer):
    v = TokenValidator(issuer.issuer, audience=issuer.audience)

    async def run(token):
        return await _aio.validate_access_token_async(v, token)

    good = issuer.mint()
    assert asyncio.run(run(good)).subject == "alice"
    with pytest.raises(InvalidToken) as info:
        asyncio.run(run(issuer.mint({"exp": 1000})))
    assert info.value.reason == "expired"
