"""Timing helpers: calibrated, interleaved samples and their statistics.

Samples are timed with the CPU time of this process (time.process_time)
unless --wall (the runner then sets :data:`CLOCK` to ``time.perf_counter``):
on a machine shared with other busy processes, wall-clock samples mostly
measure the scheduler, CPU time measures the code.  The benchmark is
single-threaded while timing, so on an idle machine both agree.
"""

from __future__ import annotations

import statistics
import time
import timeit
from typing import Any, Callable, Dict, List, Sequence

CLOCK: Callable[[], float] = time.process_time


def calibrate(fn: Callable[[], Any], target: float) -> int:
    """Loop count so one sample of ``fn`` takes about ``target`` seconds."""
    timer = timeit.Timer(fn, timer=CLOCK)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target / 5 or number >= 1 << 22:
            return max(1, int(number * target / max(elapsed, 1e-9)))
        number *= 4


def interleaved(cases: Dict[str, Callable[[], Any]], rounds: int, target: float) -> Dict[str, List[float]]:
    """Seconds per call of each case: ``rounds`` samples each, one sample of
    every case per round (timeit, GC off during a sample as timeit does)."""
    numbers = {name: calibrate(fn, target) for name, fn in cases.items()}
    timers = {name: timeit.Timer(fn, timer=CLOCK) for name, fn in cases.items()}
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]) / numbers[name])
    return samples


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> str:
    """Noise indicator: (max - min) / median of the samples, in %."""
    m = med(xs)
    return f"{100 * (max(xs) - min(xs)) / m:4.0f}%" if m else "  n/a"


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of per-round ratios a/b (robust to load drift between rounds)."""
    return med([x / y for x, y in zip(a, b)])


def interleaved_gc(cases: Dict[str, Callable[[], Any]], rounds: int, target: float) -> Dict[str, List[float]]:
    """As :func:`interleaved`, with GC enabled during each sample (requests/s
    include GC work, as in a server)."""
    numbers = {name: calibrate(fn, target) for name, fn in cases.items()}
    timers = {name: timeit.Timer(fn, setup="gc.enable()", timer=CLOCK) for name, fn in cases.items()}
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]) / numbers[name])
    return samples
