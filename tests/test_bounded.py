"""oidc_guard._bounded: each kind keeps its bound and evicts as documented."""

from __future__ import annotations

import threading

import pytest

from oidc_guard._bounded import LRU, ExpiringLRU, Fifo, Interned, Memo, memo_function


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memo_is_cleared_when_full():
    m: Memo[int, str] = Memo(4)
    for i in range(4):
        m.put(i, str(i))
    assert len(m) == 4 and m.data.get(3) == "3"
    m.put(4, "4")  # full: everything goes, then the new entry
    assert dict(m.data) == {4: "4"}
    for i in range(1000):
        m.put(i, "x")
        assert len(m) <= 4


def test_memo_of_size_zero_stores_nothing():
    m: Memo[int, int] = Memo(0)
    m.put(1, 1)
    assert len(m) == 0 and m.get(1) is None


def test_fifo_drops_the_oldest_eighth_when_full():
    f: Fifo[int, int] = Fifo(16)
    for i in range(16):
        f.put(i, i)
    f.put(0, 100)  # a key already there: replaced, nothing evicted
    assert len(f) == 16
    f.put(16, 16)  # full: the two oldest insertions (16 // 8) go
    assert 0 not in f and 1 not in f and len(f) == 15
    assert list(f) == list(range(2, 17))
    for i in range(17, 1000):
        f.put(i, i)
        assert len(f) <= 16
    assert f.data.get(999) == 999


def test_fifo_discard_only_the_entry_it_read():
    f: Fifo[str, object] = Fifo(4)
    old, new = object(), object()
    f.put("k", old)
    f.put("k", new)  # another thread replaced it
    f.discard("k", old)
    assert f.get("k") is new
    f.discard("k", new)
    assert "k" not in f
    f.put("a", old)
    f.discard("a")
    assert len(f) == 0


def test_fifo_bound_holds_under_threads():
    f: Fifo[int, int] = Fifo(64)

    def fill(base):
        for i in range(2000):
            f.put(base + i, i)

    threads = [threading.Thread(target=fill, args=(n * 10_000,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(f) <= 64


def test_lru_drops_the_least_recently_used():
    lru: LRU[str, int] = LRU(3)
    for key in "abc":
        lru.put(key, ord(key))
    assert lru.hit("a") == ord("a")  # a is now the most recent
    lru.put("d", 4)  # b is the least recently used
    assert list(lru) == ["c", "a", "d"]
    lru.put("c", 5)  # re-put: most recent, no eviction
    lru.put("e", 6)
    assert list(lru) == ["d", "c", "e"] and len(lru) == 3
    assert lru.hit("zz") is None
    off: LRU[str, int] = LRU(0)
    off.put("a", 1)
    assert len(off) == 0


def test_expiring_lru_entries_die_at_their_time():
    clock = Clock()
    t: ExpiringLRU[str, bytes] = ExpiringLRU(10, clock)
    t.put("k", b"v", clock.now + 5)
    assert t.get("k") == b"v" and t.expires("k") == clock.now + 5
    clock.now += 4.999
    assert t.get("k") == b"v" and "k" in t
    clock.now += 0.002
    assert t.get("k") is None and "k" not in t and len(t) == 0
    t.put("gone", b"v", clock.now)  # already over: not stored
    assert len(t) == 0


def test_expiring_lru_evicts_expired_entries_before_live_ones():
    clock = Clock()
    t: ExpiringLRU[int, int] = ExpiringLRU(4, clock)
    t.put(0, 0, clock.now + 100)  # the least recently used, but live
    for i in (1, 2, 3):
        t.put(i, i, clock.now + 1)
    clock.now += 2  # 1, 2 and 3 are dead
    t.put(4, 4, clock.now + 100)
    t.put(5, 5, clock.now + 100)
    assert t.get(0) == 0  # kept: the dead ones went first
    assert sorted(t) == [0, 4, 5]


def test_expiring_lru_evicts_the_least_recently_used_when_all_live():
    clock = Clock()
    t: ExpiringLRU[int, int] = ExpiringLRU(3, clock)
    for i in range(3):
        t.put(i, i, clock.now + 100)
    assert t.get(0) == 0  # 1 is now the least recently used
    t.put(3, 3, clock.now + 100)
    assert sorted(t) == [0, 2, 3]
    for i in range(4, 5000):
        t.put(i, i, clock.now + 100)
        assert len(t) <= 3
    # replaced keys leave stale heap items; the heap is rebuilt, not grown
    for _ in range(5000):
        t.put(7, 7, clock.now + 100)
    assert len(t._heap) <= 2 * 3 + 64 + 1


def test_interned_shares_instances_up_to_its_bound():
    pool: Interned[frozenset] = Interned(2)
    a1, a2 = frozenset({"a"}), frozenset({"a"})
    assert pool.share(a1) is a1 and pool.share(a2) is a1
    pool.share(frozenset({"b"}))
    c = frozenset({"c"})
    assert pool.share(c) is c and len(pool) == 2  # full: not shared, not grown
    assert pool.share(frozenset({"a"})) is a1  # the ones there stay


def test_memo_function_is_bounded():
    calls = []

    @memo_function(2)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert [double(1), double(1), double(2), double(3), double(1)] == [2, 2, 4, 6, 2]
    assert calls == [1, 2, 3, 1]  # 1 was evicted by 3 (2 entries)


@pytest.mark.parametrize("kind", [Memo, Fifo, LRU, Interned])
def test_sizes_are_checked(kind):
    with pytest.raises(ValueError):
        kind(-1)
    with pytest.raises(ValueError):
        kind(True)
    with pytest.raises(ValueError):
        ExpiringLRU(0, Clock())
    with pytest.raises(ValueError):
        Fifo(0)
