"""Reference tokens under load: counts, never timings (issue 10).

* 16 threads, 1,000 requests over 10 new reference tokens: exactly 10
  introspection calls, counted by the provider;
* four validators (four workers' memories) sharing one real Redis, 10 tokens
  x 400 requests from 16 threads: at most 10 calls in all;
* a flood of distinct random opaque tokens from 16 threads: the calls in
  flight at the provider never exceed the bound; every answer 401 or 503;
  no 500;
* Redis killed in the middle of a run: 0 wrong answers, 0 status 500.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from benchkit.reference_load import (  # noqa: E402
    call, introspection_calls, mixed_plan, new_reference_tokens, protected_app, reference_validator,
    run_threads, statuses,
)

pytestmark = pytest.mark.reliability


def test_sixteen_threads_ten_new_tokens_exactly_ten_calls(issuers):
    iss = issuers()
    tokens = new_reference_tokens(iss, 10)
    app = protected_app(reference_validator(iss))
    iss.reset_counts()
    results = run_threads(16, [tokens[i % 10] for i in range(1000)], lambda t: call(app, t))
    assert statuses(results) == {200: 1000}
    assert introspection_calls(iss) == 10


def test_four_workers_sharing_redis_at_most_ten_calls(issuers, redis_server):
    iss = issuers()
    tokens = new_reference_tokens(iss, 10)
    workers = [protected_app(reference_validator(iss, shared_cache=redis_server.url)) for _ in range(4)]
    iss.reset_counts()
    plan = [(workers[i % 4], tokens[(i // 4) % 10]) for i in range(4000)]
    results = run_threads(16, plan, lambda item: call(item[0], item[1]))
    assert statuses(results) == {200: 4000}
    assert introspection_calls(iss) <= 10
    # without the shared cache each worker asks for itself: up to 40
    iss.reset_counts()
    alone = [protected_app(reference_validator(iss)) for _ in range(4)]
    run_threads(16, [(alone[i % 4], tokens[(i // 4) % 10]) for i in range(4000)], lambda item: call(item[0], item[1]))
    assert 10 < introspection_calls(iss) <= 40


def test_random_token_flood_is_bounded_401_or_503_never_500(issuers):
    iss = issuers()
    v = reference_validator(iss, introspection_max_in_flight=4, introspection_queue_timeout=0.2)
    app = protected_app(v)
    junk = [secrets.token_urlsafe(24) for _ in range(2000)]
    results = run_threads(16, junk, lambda t: call(app, t))
    counts = statuses(results)
    assert set(counts) <= {401, 503}, counts
    assert counts.get(401, 0) > 0
    assert iss.introspection_max_in_flight <= 4
    assert v.introspector.max_seen_in_flight <= 4
    assert introspection_calls(iss) <= 2000


def test_redis_killed_mid_run_no_wrong_answer_no_500(issuers, redis_server):
    iss = issuers()
    good = new_reference_tokens(iss, 8)
    revoked = new_reference_tokens(iss, 4)
    for t in revoked:
        iss.revoke(t)
    workers = [protected_app(reference_validator(iss, shared_cache=redis_server.url,
                                                 introspection_max_in_flight=8, introspection_queue_timeout=5))
               for _ in range(3)]
    plan = mixed_plan(good, revoked, rounds=120, junk=lambda r: f"junk-{r}-{secrets.token_hex(8)}")
    killed = threading.Event()
    done = [0]
    lock = threading.Lock()

    def one(item):
        (token, expected), worker = item
        code, _ = call(worker, token)
        with lock:
            done[0] += 1
            if done[0] == len(plan) // 2 and not killed.is_set():
                redis_server.stop()  # SIGKILL, mid-run
                killed.set()
        return code, expected

    items = [(plan[i], workers[i % 3]) for i in range(len(plan))]
    results = run_threads(16, items, one)
    assert killed.is_set()
    wrong = [(code, expected) for code, expected in results if code != expected and code != 503]
    assert not wrong, wrong[:5]
    assert not [1 for code, _ in results if code == 500]
    assert sum(1 for code, _ in results if code == 503) == 0  # the endpoint carried on alone
