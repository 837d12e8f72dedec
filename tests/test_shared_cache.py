"""oidc_guard.cache: the in-process default and the Redis backend.

The Redis tests run against a real redis-server (fixture ``redis_server``,
tests/redis_server.py), including one that kills it mid-run.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from oidc_guard import ProviderError
from oidc_guard.cache import CacheUnavailable, MemoryCache, RedisCache, open_cache
from oidc_guard.errors import ConfigurationError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- MemoryCache -------------------------------------------------------------

def test_memory_get_set_and_expiry():
    clock = Clock()
    c = MemoryCache(maxsize=10, clock=clock)
    assert c.get("k") is None
    c.set("k", b"v", 5)
    assert c.get("k") == b"v"
    clock.now += 4.999
    assert c.get("k") == b"v"
    clock.now += 0.002
    assert c.get("k") is None  # dies at its own expiry


def test_memory_add_is_set_if_absent():
    clock = Clock()
    c = MemoryCache(maxsize=10, clock=clock)
    assert c.add("jti", b"1", 10) is True
    assert c.add("jti", b"2", 10) is False
    assert c.get("jti") == b"1"
    clock.now += 11
    assert c.add("jti", b"3", 10) is True  # expired entries do not block
    assert c.get("jti") == b"3"


def test_memory_add_concurrent_only_one_wins():
    c = MemoryCache(maxsize=100)
    wins = []
    barrier = threading.Barrier(16)

    def race():
        barrier.wait()
        wins.append(c.add("same", b"x", 30))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1 and wins.count(False) == 15


def test_memory_is_bounded():
    c = MemoryCache(maxsize=50)
    for i in range(500):
        c.set(f"k{i}", b"v", 60)
    assert len(c) == 50
    assert c.get("k499") == b"v" and c.get("k0") is None


def test_memory_delete_and_nonpositive_ttl():
    c = MemoryCache(maxsize=5)
    c.set("k", b"v", 60)
    c.delete("k")
    assert c.get("k") is None
    c.set("k", b"v", 60)
    c.set("k", b"w", 0)  # ttl 0: not stored, and the old value is gone too
    assert c.get("k") is None
    with pytest.raises(ValueError):
        c.add("k", b"v", 0)


def test_memory_rejects_non_bytes():
    c = MemoryCache(maxsize=5)
    with pytest.raises(TypeError):
        c.set("k", "text", 5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MemoryCache(maxsize=0)


# --- RedisCache against a real redis-server ---------------------------------

def test_redis_roundtrip_with_expiry_in_redis(redis_server):
    import redis

    c = RedisCache(redis_server.url, prefix="oidc_guard:test:")
    c.set("k", b"\x00\xffbytes", 0.3)
    assert c.get("k") == b"\x00\xffbytes"
    raw = redis.Redis.from_url(redis_server.url)
    # The expiry travels with the value (PX): Redis itself will drop it.
    pttl = raw.pttl("oidc_guard:test:k")
    assert 0 < pttl <= 300
    assert raw.get("k") is None  # the prefix is applied
    time.sleep(0.4)
    assert c.get("k") is None
    assert raw.exists("oidc_guard:test:k") == 0
    raw.close()


def test_redis_add_is_atomic_across_clients(redis_server):
    a = RedisCache(redis_server.url, prefix="p:")
    b = RedisCache(redis_server.url, prefix="p:")
    results = []
    barrier = threading.Barrier(8)

    def race(cache):
        barrier.wait()
        results.append(cache.add("jti-1", b"seen", 30))

    threads = [threading.Thread(target=race, args=(a if i % 2 else b,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert a.add("jti-1", b"again", 30) is False
    a.delete("jti-1")
    assert b.add("jti-1", b"again", 30) is True


def test_redis_namespaces_do_not_mix(redis_server):
    base = RedisCache(redis_server.url, prefix="oidc_guard:")
    one = base.namespaced("https://a.example:")
    two = base.namespaced("https://b.example:")
    one.set("k", b"a", 30)
    assert two.get("k") is None
    assert one.get("k") == b"a"


def test_redis_accepts_a_client(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.5)
    c = open_cache(client, prefix="x:")
    assert isinstance(c, RedisCache) and c.shared
    c.set("k", b"v", 10)
    assert client.get("x:k") == b"v"
    assert "127.0.0.1" in repr(c)


def test_redis_garbage_is_an_error_not_a_value(redis_server):
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    raw.set("p:big", b"x" * (70 * 1024))
    raw.rpush("p:list", b"a")  # wrong type: Redis answers WRONGTYPE
    c = RedisCache(redis_server.url, prefix="p:", cooldown=0)
    with pytest.raises(CacheUnavailable):
        c.get("big")
    with pytest.raises(CacheUnavailable):
        c.get("list")
    raw.close()


def _net_output_bytes(client) -> int:
    return int(client.info("stats")["total_net_output_bytes"])


def test_redis_oversized_value_is_refused_without_being_transferred(redis_server):
    # A value planted under a key (anyone who can write to Redis can) is
    # bounded by the read itself: Redis sends at most the limit + 1 byte.
    # The server's own count of bytes sent to clients proves it.
    import redis

    from oidc_guard.cache import MAX_VALUE_BYTES

    raw = redis.Redis.from_url(redis_server.url)
    planted = 8 * 1024 * 1024
    raw.set("p:big", b"x" * planted)
    c = RedisCache(redis_server.url, prefix="p:", cooldown=0)
    c.set("small", b"v" * MAX_VALUE_BYTES, 30)  # the limit itself is a value
    assert c.get("small") == b"v" * MAX_VALUE_BYTES
    raw.config_resetstat()
    before = _net_output_bytes(raw)
    started = time.monotonic()
    with pytest.raises(CacheUnavailable) as err:
        c.get("big")
    elapsed = time.monotonic() - started
    sent = _net_output_bytes(raw) - before
    assert sent < MAX_VALUE_BYTES + 16 * 1024, sent  # not the 8 MB
    assert elapsed < 0.5
    assert "more than" in err.value.description
    assert raw.strlen("p:big") == planted  # it was there, whole
    raw.close()


def test_empty_values_are_refused_on_write(redis_server):
    # GETRANGE answers b"" for a missing key, so b"" is never a value.
    for c in (MemoryCache(), RedisCache(redis_server.url, prefix="p:")):
        with pytest.raises(ValueError):
            c.set("k", b"", 5)
        with pytest.raises(ValueError):
            c.add("k", b"", 5)


def test_redis_client_decoding_replies_is_refused_at_construction(redis_server):
    import redis

    from oidc_guard import TokenValidator

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisCache(client)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisCache(redis_server.url + "?decode_responses=true")
    with pytest.raises(ConfigurationError, match="decode_responses"):
        TokenValidator("https://idp.example", audience="api://a", shared_cache=client)
    # the same server through a client that returns bytes: a non-UTF-8
    # value is just bytes
    client.close()
    ok = RedisCache(redis.Redis.from_url(redis_server.url), prefix="p:")
    ok.set("k", b"\xff\xfe", 5)
    assert ok.get("k") == b"\xff\xfe"


def test_redis_killed_mid_run_raises_typed_error_fast_then_recovers(redis_server, caplog):
    clock = Clock()
    c = RedisCache(redis_server.url, prefix="p:", cooldown=2.0, clock=clock)
    c.set("k", b"v", 60)
    assert c.get("k") == b"v"
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="oidc_guard.cache")
    with pytest.raises(CacheUnavailable) as first:
        c.get("k")
    assert isinstance(first.value, ProviderError) and first.value.status == 503
    # In the cooldown: no network at all, fails at once, for every operation.
    started = time.monotonic()
    for _ in range(100):
        with pytest.raises(CacheUnavailable):
            c.add("jti", b"1", 5)  # fail closed: never a silent True
    assert time.monotonic() - started < 1.0
    warnings = [r for r in caplog.records if r.name == "oidc_guard.cache"]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    redis_server.start()
    clock.now += 2.1
    assert c.get("k") is None  # a restart without persistence: empty, but working
    c.set("k", b"w", 60)
    assert c.get("k") == b"w"
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_redis_unreachable_is_bounded_by_the_timeout():
    # Nothing listens on this port: connection refused -> CacheUnavailable.
    from redis_server import free_port

    c = RedisCache(f"redis://127.0.0.1:{free_port()}/0", prefix="p:", timeout=0.2)
    started = time.monotonic()
    with pytest.raises(CacheUnavailable):
        c.get("k")
    assert time.monotonic() - started < 2.0


def test_redis_password_never_in_repr_logs_or_errors(make_redis_server, caplog):
    secret = "s3cr3t-Pa55word"
    server = make_redis_server(password=secret)
    c = RedisCache(server.url, prefix="p:", cooldown=0)
    c.set("k", b"v", 10)
    assert c.get("k") == b"v"
    assert secret not in repr(c) and secret not in c.where
    wrong = RedisCache(server.url.replace(secret, "wrong-" + secret), prefix="p:", cooldown=0)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CacheUnavailable) as err:
        wrong.get("k")
    assert secret not in str(err.value) and secret not in repr(err.value)
    server.stop()
    with pytest.raises(CacheUnavailable) as err2:
        c.get("k")
    assert secret not in str(err2.value)
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_bad_shared_cache_specs():
    with pytest.raises(ConfigurationError):
        RedisCache("http://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError):
        RedisCache(object())
    assert isinstance(open_cache(None), MemoryCache)


# --- may this Redis hold DPoP replay records? (maxmemory-policy) ---------------

EVICTING = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")


def test_eviction_policy_is_read_with_config_get_or_info(make_redis_server):
    assert RedisCache(make_redis_server().url).eviction_policy() == "noeviction"
    assert RedisCache(make_redis_server(args=EVICTING).url).eviction_policy() == "allkeys-lru"
    # CONFIG renamed away, as managed Redis services do: INFO memory says it
    hidden = make_redis_server(args=EVICTING + ("--rename-command", "CONFIG", ""))
    c = RedisCache(hidden.url, cooldown=0)
    assert c.eviction_policy() == "allkeys-lru"
    c.set("k", b"v", 5)
    assert c.get("k") == b"v"  # the refused CONFIG did not put the cache in its cooldown


def test_a_policy_that_cannot_be_read_is_not_trusted(redis_server):
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    raw.acl_setuser("api", enabled=True, passwords=["+pw"], keys=["*"],
                    commands=["+@all", "-config", "-info"])
    raw.close()
    c = RedisCache(f"redis://api:pw@127.0.0.1:{redis_server.port}/0", cooldown=0)
    assert c.eviction_policy() is None
    problem = c.replay_problem()
    assert problem is not None and "cannot be read" in problem and "dpop_accept_evicting_redis" in problem


def test_replay_problem_names_the_policy_and_the_fixes(make_redis_server, caplog):
    evicting = make_redis_server(args=EVICTING)
    problem = RedisCache(evicting.url).replay_problem()
    assert problem is not None
    for words in ("'allkeys-lru'", "maxmemory-policy noeviction", "dpop_accept_evicting_redis=True",
                  "OIDC_GUARD_DPOP_ACCEPT_EVICTING_REDIS", "RFC 9449"):
        assert words in problem
    assert RedisCache(make_redis_server().url).replay_problem() is None
    caplog.set_level(logging.WARNING, logger="oidc_guard.cache")
    accepted = RedisCache(evicting.url, accept_evicting_for_replay=True)
    assert accepted.replay_problem() is None
    assert accepted.namespaced("x:").replay_problem() is None  # views keep the setting
    warned = [r for r in caplog.records if "accepting the risk" in r.getMessage()]
    assert len(warned) == 1 and "allkeys-lru" in warned[0].getMessage()
    with pytest.raises(ConfigurationError):
        RedisCache(evicting.url, accept_evicting_for_replay="yes")  # type: ignore[arg-type]


def test_policy_is_read_again_every_minute(redis_server):
    import redis

    from oidc_guard.cache import POLICY_RECHECK_SECONDS

    clock = Clock()
    raw = redis.Redis.from_url(redis_server.url)
    c = RedisCache(redis_server.url, clock=clock)
    assert c.replay_problem() is None
    raw.config_set("maxmemory-policy", "volatile-lru")  # an operator changes it at run time
    clock.now += POLICY_RECHECK_SECONDS - 1
    assert c.replay_problem() is None  # not read again yet: no round trip per proof
    clock.now += 1
    assert "'volatile-lru'" in (c.replay_problem() or "")
    raw.config_set("maxmemory-policy", "noeviction")
    clock.now += POLICY_RECHECK_SECONDS
    assert c.replay_problem() is None  # fixed: trusted again without a restart
    raw.close()
