"""The ASGI adapters under outages and floods, served by a real uvicorn on a
loopback port against the real LocalIssuer (and a real redis-server): never
a 500, never a hung request, never a blocked event loop (the server loop's
lag is measured by a probe task; a blocking network call or sleep on the
loop would show up as lag of its own length)."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import httpx
import pytest
from fastapi import FastAPI, Security

from oidc_guard import TokenValidator
from oidc_guard.fastapi import OIDCGuard
from oidc_guard.testing import INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET

from uvicorn_server import UvicornServer

pytestmark = pytest.mark.reliability

#: the network deadline of the validators here: every request ends within it
HTTP_TIMEOUT = 1.0
#: the largest loop lag allowed: below any network wait the tests cause
#: (1-3 s: a blocking call on the loop would show as lag of at least 1 s),
#: above the scheduling jitter of a 2-CPU host running the flood's 64
#: clients, the provider and the server in one process (0.26 s seen once in
#: a full-suite run; 0.25 was the bound then)
MAX_LAG = 0.6


def fastapi_app(validator: Any) -> FastAPI:
    guard = OIDCGuard(validator, realm="reliability")
    app = FastAPI()

    @app.get("/contacts")
    async def contacts(claims=Security(guard, scopes=["contacts"])):
        return {"sub": claims.subject}

    return app


@pytest.fixture
def serve():
    started: List[UvicornServer] = []

    def start(app: Any) -> UvicornServer:
        server = UvicornServer(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def _get(client: httpx.AsyncClient, token: str) -> Tuple[int, float, Dict[str, str]]:
    started = time.monotonic()
    r = await client.get("/contacts", headers={"Authorization": "Bearer " + token})
    return r.status_code, time.monotonic() - started, dict(r.headers)


def run_clients(url: str, tokens: Sequence[str], concurrency: int = 64) -> List[Tuple[int, float, Dict[str, str]]]:
    """Every token once, ``concurrency`` coroutines at a time; a client
    timeout well past the validators' deadline catches a hung request."""
    async def main() -> List[Tuple[int, float, Dict[str, str]]]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(token: str) -> Tuple[int, float, Dict[str, str]]:
                async with gate:
                    return await _get(client, token)

            return list(await asyncio.gather(*(one(t) for t in tokens)))

    return asyncio.run(main())


def test_cached_tokens_are_answered_while_a_jwks_refresh_is_slow(issuer, serve):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=5, jwks_cooldown=0)
    server = serve(fastapi_app(v))
    cached = issuer.mint()
    assert run_clients(server.url, [cached])[0][0] == 200
    fresh = issuer.mint(kid=issuer.add_key("RS256", kid="rotated"))
    issuer.set_fault("jwks", delay=2.0)
    server.reset_lag()

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            slow = asyncio.ensure_future(_get(client, fresh))
            await asyncio.sleep(0.2)
            quick = [await _get(client, cached) for _ in range(20)]
            return quick, await slow

    quick, slow = asyncio.run(main())
    assert all(code == 200 for code, _, _ in quick)
    assert max(took for _, took, _ in quick) < 0.5  # not behind the 2 s JWKS fetch
    assert slow[0] == 200 and slow[1] >= 1.5
    assert server.max_lag() < MAX_LAG, server.max_lag()


def test_jwks_down_cached_200_new_503_never_500_never_hung(issuer, serve):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=HTTP_TIMEOUT, jwks_cooldown=0)
    server = serve(fastapi_app(v))
    cached = issuer.mint()
    assert run_clients(server.url, [cached])[0][0] == 200
    new = [issuer.mint(kid=issuer.add_key("RS256", kid=f"new-{i}", publish=False)) for i in range(3)]
    issuer.set_fault("jwks", status=500)
    server.reset_lag()
    results = run_clients(server.url, [cached] * 50 + new * 20)
    codes = Counter(code for code, _, _ in results)
    assert codes[200] == 50 and set(codes) <= {200, 503}, codes
    assert all(h.get("retry-after") for code, _, h in results if code == 503)
    assert max(took for _, took, _ in results) < 3 * HTTP_TIMEOUT + 2
    assert server.max_lag() < MAX_LAG, server.max_lag()


def test_two_thousand_junk_kids_from_many_coroutines_bounded_fetches(issuer, serve):
    v = TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=HTTP_TIMEOUT, jwks_cooldown=5)
    server = serve(fastapi_app(v))
    good = issuer.mint()
    assert run_clients(server.url, [good])[0][0] == 200
    fetches = issuer.fetch_counts["jwks"]
    junk = [issuer.mint(header={"kid": f"junk-{i}-{secrets.token_hex(4)}"}) for i in range(2000)]
    server.reset_lag()
    started = time.monotonic()
    results = run_clients(server.url, junk + [good] * 50, concurrency=128)
    took = time.monotonic() - started
    codes = Counter(code for code, _, _ in results)
    assert 500 not in codes and set(codes) <= {200, 401, 503}, codes
    assert codes[200] >= 50  # the good token kept working
    # one refetch at most per cooldown, whatever the number of unknown kids
    assert issuer.fetch_counts["jwks"] - fetches <= 1 + took / 5 + 1
    assert server.max_lag() < MAX_LAG, server.max_lag()


def reference_validator(issuer: Any, **kwargs: Any) -> TokenValidator:
    return TokenValidator(issuer.issuer, audience=issuer.audience, http_timeout=HTTP_TIMEOUT,
                          introspection_client_id=INTROSPECTION_CLIENT_ID,
                          introspection_client_secret=INTROSPECTION_CLIENT_SECRET, **kwargs)


def test_introspection_flood_is_bounded_in_flight(issuer, serve):
    v = reference_validator(issuer, introspection_max_in_flight=4, introspection_queue_timeout=0.2)
    server = serve(fastapi_app(v))
    junk = [secrets.token_urlsafe(24) for _ in range(2000)]
    server.reset_lag()
    started = time.monotonic()
    results = run_clients(server.url, junk, concurrency=64)
    took = time.monotonic() - started
    codes = Counter(code for code, _, _ in results)
    assert set(codes) <= {401, 503} and codes[401] > 0, codes
    assert v.introspector.max_seen_in_flight <= 4  # the bound the validator keeps
    # the provider counts a call until its handler returns, a moment after the
    # answer was written (the next call may already have started): at most
    # one more than the bound
    assert issuer.introspection_max_in_flight <= 4 + 1
    # no request waits for ever: each is answered within a share of the whole
    # run (queued behind the others on a loaded host, never stuck)
    assert max(t for _, t, _ in results) < max(10.0, took / 2)
    assert server.max_lag() < MAX_LAG, server.max_lag()


def test_redis_killed_no_500_no_wrong_answer(issuer, serve, redis_server):
    v = reference_validator(issuer, shared_cache=redis_server.url, introspection_max_in_flight=8,
                            introspection_queue_timeout=5)
    server = serve(fastapi_app(v))
    good = [issuer.mint(reference=True, subject=None, scope="contacts", client_id="wte-worker-ref")
            for _ in range(6)]
    revoked = [issuer.mint(reference=True, subject=None, scope="contacts", client_id="wte-worker-ref")
               for _ in range(3)]
    for t in revoked:
        issuer.revoke(t)
    plan = (good * 20 + revoked * 20)
    first = run_clients(server.url, plan)
    redis_server.stop()  # SIGKILL
    server.reset_lag()
    second = run_clients(server.url, plan + [secrets.token_urlsafe(24) for _ in range(50)])
    for results in (first, second):
        codes = [code for code, _, _ in results]
        assert 500 not in codes
        assert all(code == 200 for code in codes[:len(good) * 20])
        assert all(code == 401 for code in codes[len(good) * 20:len(plan)])
    assert server.max_lag() < MAX_LAG, server.max_lag()
