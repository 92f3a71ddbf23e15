"""The sliding-window limiter: never more than N requests in any window, even with jitter and threads."""

from __future__ import annotations

import random
import threading
import time

import pytest

from litmeta.extractors.ratelimit import SlidingWindowLimiter


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_max_in_window_helper():
    assert max_in_window([0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([], 1.0) == 0


def test_no_burst_beyond_the_limit():
    """A token bucket of 3 lets 5 through in the first second; this limiter lets exactly 3."""
    lim = SlidingWindowLimiter(3, period=0.3, margin=0.03)
    t0 = time.monotonic()
    admitted = []
    for _ in range(7):
        with lim.slot():
            admitted.append(time.monotonic() - t0)
    assert admitted[2] < 0.05  # the first three go at once
    assert admitted[3] >= 0.33 - 0.005  # the fourth waits a full window after the first finished
    assert admitted[6] >= 0.66 - 0.01
    assert max_in_window(admitted, 0.3) == 3


def test_window_anchors_on_completion_so_arrival_jitter_cannot_overrun():
    """Requests that reach the server late (jitter up to their duration) still never exceed N per window."""
    period, n = 0.25, 3
    lim = SlidingWindowLimiter(n, period=period, margin=0.0)
    arrivals: list[float] = []
    lock = threading.Lock()
    rng = random.Random(7)

    def worker(k: int) -> None:
        for _ in range(6):
            s = lim.acquire()
            delay = rng.uniform(0, 0.08)  # network + server queueing before the server stamps it
            time.sleep(delay)
            with lock:
                arrivals.append(time.monotonic())
            time.sleep(rng.uniform(0, 0.03))  # answer
            lim.release(s)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(arrivals) == 24
    assert max_in_window(arrivals, period) <= n


def test_in_flight_requests_count_against_the_window():
    lim = SlidingWindowLimiter(2, period=0.1, margin=0.0)
    a, b = lim.acquire(), lim.acquire()
    with pytest.raises(TimeoutError):
        lim.acquire(timeout=0.15)  # both still in flight: no slot, however long ago they started
    lim.release(a)
    t = time.monotonic()
    c = lim.acquire(timeout=1)
    assert time.monotonic() - t >= 0.09
    lim.release(b)
    lim.release(c)


def test_sequential_throughput_is_close_to_the_limit():
    lim = SlidingWindowLimiter(10, period=0.2, margin=0.02)
    t0 = time.monotonic()
    for _ in range(30):
        with lim.slot():
            pass
    elapsed = time.monotonic() - t0
    assert 0.43 <= elapsed < 0.7  # 3 windows of 10: two full waits of 0.22 s


def test_bad_arguments():
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(3, period=0)
