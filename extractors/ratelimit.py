"""Sliding-window rate limiter for NCBI E-utilities (3 requests/s, 10 with an api_key).

Why not a token bucket: a bucket of capacity 3 that starts full lets 3 requests through at
t=0 and, refilling at 3/s, 2 more before t=1: 5 in one second, which NCBI answers with 429s.
This limiter instead guarantees the property NCBI enforces: at most N requests in ANY
window of `period` seconds, as seen by the server.

How: each admitted request holds a slot. A slot counts against the window from the moment
it is admitted until `period + margin` seconds after its request *completed* (response read,
or failed). A new request is admitted only while fewer than N slots are live.

Why anchor on completion rather than on the send time: the server stamps a request when it
arrives, somewhere between our send and our receiving the answer. If request k is delayed
on its way (a new connection, a busy server thread, GIL contention when the server runs in
the same process) and request k+N is not, their arrivals can be less than `period` apart even
though we sent them `period` apart. With completion anchoring, arrival(k+N) >= send(k+N) >=
completion(k) + period + margin >= arrival(k) + period + margin, whatever the jitter. For
sequential use this costs at most one request's duration per window; with several threads it
also caps requests in flight at N (which is polite anyway).

Thread-safe: one limiter per client, shared by all its threads; retries go through it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Slot", "SlidingWindowLimiter"]


class Slot:
    """One admitted request. `done` is None while the request is in flight."""

    __slots__ = ("admitted", "done")

    def __init__(self, admitted: float) -> None:
        self.admitted = admitted
        self.done: float | None = None


class SlidingWindowLimiter:
    """At most `max_requests` requests in any `period`-second window (plus `margin` of safety).

    Use either `with limiter.slot(): send()` or `s = limiter.acquire(); try: send() finally:
    limiter.release(s)`. `clock`/`sleep` are injectable for tests.
    """

    def __init__(
        self,
        max_requests: int,
        period: float = 1.0,
        margin: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        if period <= 0 or margin < 0:
            raise ValueError("period must be > 0 and margin >= 0")
        self.max_requests = int(max_requests)
        self.period = float(period)
        self.margin = float(margin)
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._live: list[Slot] = []
        self.total_wait = 0.0  # seconds spent waiting for a slot, all threads together
        self.admitted = 0

    @property
    def window(self) -> float:
        return self.period + self.margin

    def _prune(self, now: float) -> None:
        w = self.window
        self._live = [s for s in self._live if s.done is None or s.done + w > now]

    def acquire(self, timeout: float | None = None) -> Slot:
        """Block until a request may be sent; return its slot (release it when the request ends)."""
        start = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                self._prune(now)
                if len(self._live) < self.max_requests:
                    slot = Slot(now)
                    self._live.append(slot)
                    self.admitted += 1
                    self.total_wait += now - start
                    return slot
                finished = [s.done for s in self._live if s.done is not None]
                wait = (min(finished) + self.window - now) if finished else None
                if timeout is not None:
                    left = start + timeout - now
                    if left <= 0:
                        raise TimeoutError("rate limiter: no slot within timeout")
                    wait = left if wait is None else min(wait, left)
                # Woken early by release(); otherwise when the oldest finished slot expires.
                self._cond.wait(wait if wait is None else max(wait, 0.0005))

    def release(self, slot: Slot) -> None:
        """Mark the slot's request as finished (successfully or not): its window starts now."""
        with self._cond:
            if slot.done is None:
                slot.done = self._clock()
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        s = self.acquire()
        try:
            yield s
        finally:
            self.release(s)

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter({self.max_requests}/{self.period}s, margin={self.margin}s)"
