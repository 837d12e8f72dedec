"""oidc_guard._flight: one call for many concurrent callers, with real threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from oidc_guard._flight import Flight, SingleFlight


class Gate:
    """A call that counts itself and blocks until released."""

    def __init__(self, result="value", error=None):
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.error = error
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.result


def run_callers(n, target):
    out = []
    lock = threading.Lock()

    def run():
        try:
            value = target()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            value = exc
        with lock:
            out.append(value)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, out


def test_one_call_for_n_concurrent_callers():
    group: SingleFlight[str, str] = SingleFlight()
    gate = Gate(result="keys")
    barrier = threading.Barrier(17)

    def caller():
        barrier.wait(5)
        return group.run("k", gate, 5, lambda: TimeoutError("late"))

    threads, out = run_callers(16, caller)
    barrier.wait(5)
    assert gate.entered.wait(5)
    time.sleep(0.3)  # every caller passed the barrier together: let them reach wait()
    gate.release.set()
    for t in threads:
        t.join(5)
    assert gate.calls == 1
    assert out == ["keys"] * 16
    assert len(group) == 0 and "k" not in group  # landed flights are forgotten


def test_the_leaders_exception_is_raised_in_every_waiter():
    group: SingleFlight[str, str] = SingleFlight()
    boom = ValueError("provider down")
    gate = Gate(error=boom)
    threads, out = run_callers(8, lambda: group.run("k", gate, 5, lambda: TimeoutError("late")))
    assert gate.entered.wait(5)
    time.sleep(0.1)
    gate.release.set()
    for t in threads:
        t.join(5)
    assert gate.calls == 1
    assert len(out) == 8 and all(exc is boom for exc in out)
    # the next caller leads a new flight (nothing is cached)
    gate.error = None
    gate.release.set()
    assert group.run("k", gate, 5, lambda: TimeoutError("late")) == "value"
    assert gate.calls == 2


def test_a_waiter_times_out_and_the_leader_still_finishes():
    group: SingleFlight[str, str] = SingleFlight()
    gate = Gate()
    leader, out = run_callers(1, lambda: group.run("k", gate, 5, lambda: TimeoutError("late")))
    assert gate.entered.wait(5)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="late"):
        group.run("k", gate, 0.2, lambda: TimeoutError("late"))
    assert 0.15 < time.monotonic() - started < 2
    gate.release.set()
    leader[0].join(5)
    assert out == ["value"] and gate.calls == 1


def test_different_keys_fly_apart():
    group: SingleFlight[str, str] = SingleFlight()
    a, b = Gate(result="a"), Gate(result="b")
    ta, out_a = run_callers(1, lambda: group.run("a", a, 5, lambda: TimeoutError()))
    tb, out_b = run_callers(1, lambda: group.run("b", b, 5, lambda: TimeoutError()))
    assert a.entered.wait(5) and b.entered.wait(5)
    assert len(group) == 2
    a.release.set()
    b.release.set()
    for t in ta + tb:
        t.join(5)
    assert (out_a, out_b) == (["a"], ["b"])


def test_join_locked_with_the_owners_lock_and_on_land():
    lock = threading.Lock()
    cond = threading.Condition(lock)
    landed = []
    group: SingleFlight[str, int] = SingleFlight(lock=lock, on_land=lambda: landed.append(lock.locked()))
    with cond:
        flight, leader = group.join_locked("k")
        again, second = group.join_locked("k")
    assert leader and not second and again is flight
    group.land("k", flight, value=7)
    assert landed == [True]  # called with the owner's lock held
    assert flight.done and flight.result() == 7 and "k" not in group


def test_result_before_landing_is_an_error():
    flight: Flight[int] = Flight()
    with pytest.raises(RuntimeError):
        flight.result()
    assert not flight.wait(0.01)


def test_a_coroutine_waits_through_a_done_callback_without_blocking_its_loop():
    """The way an async caller shares a flight led by a thread."""
    group: SingleFlight[str, str] = SingleFlight()
    gate = Gate(result="from the thread")
    leader, out = run_callers(1, lambda: group.run("k", gate, 5, lambda: TimeoutError()))
    assert gate.entered.wait(5)

    async def follower():
        flight, is_leader = group.join("k")
        assert not is_leader
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        flight.add_done_callback(lambda f: loop.call_soon_threadsafe(fut.set_result, None))
        ticks = 0

        async def ticker():
            nonlocal ticks
            while not fut.done():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        loop.call_later(0.1, gate.release.set)
        await asyncio.wait_for(fut, 5)
        await tick
        return flight.result(), ticks

    value, ticks = asyncio.run(follower())
    leader[0].join(5)
    assert value == "from the thread" and out == ["from the thread"]
    assert ticks >= 3  # the loop kept running while the flight was in the air
    # a callback added after landing runs at once
    flight: Flight[int] = Flight()
    group2: SingleFlight[str, int] = SingleFlight()
    flight, _ = group2.join("x")
    group2.land("x", flight, value=1)
    seen = []
    flight.add_done_callback(lambda f: seen.append(f.result()))
    assert seen == [1]


def test_shared_flight_one_leader_per_key_across_processes_and_a_bounded_wait():
    from oidc_guard._flight import SharedFlight
    from oidc_guard.cache import MemoryCache

    cache = MemoryCache()
    downs = []
    one = SharedFlight(cache, lock_ttl=5, wait=0.3, on_down=downs.append)
    two = SharedFlight(cache, lock_ttl=5, wait=0.3, on_down=downs.append)
    assert one.claim("k") is True and two.claim("k") is False  # one leader for the key
    # the follower polls until the result is there
    results = iter([None, None, "answer"])
    assert two.wait("k", lambda: next(results)) == "answer"
    # nothing comes while the lock stays: the wait ends after about `wait` s
    started = time.monotonic()
    assert two.wait("k", lambda: None) is None
    assert 0.25 < time.monotonic() - started < 2
    # the leader gave up: one last look, at once
    one.release("k")
    started = time.monotonic()
    assert two.wait("k", lambda: None) is None and time.monotonic() - started < 0.2
    assert two.claim("k") is True and downs == []
