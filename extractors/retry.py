"""The retry policy every HTTP client of litmeta shares (E-utilities, the FTP site): what a transient
failure is, how long to wait before the next try, and how a Retry-After header is read.

Retry n waits ``uniform(0.5, 1) * min(cap, base * 2**(n-1))`` seconds; after a 429 at least
``rate_limit_backoff`` seconds; a Retry-After the server sent is honoured up to ``max_retry_after``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

__all__ = ["Backoff", "Transient", "retry_after"]


class Transient(Exception):
    """A failure another try may not see: ``reason`` (e.g. 'http_503', 'connection', 'truncated'),
    ``detail`` for the message, and the server's Retry-After in seconds when it sent one."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class Backoff:
    """Delays between tries (see the module docstring); thread-safe, reproducible for a ``seed``."""

    base: float = 0.5
    cap: float = 30.0
    rate_limit_backoff: float = 1.0
    max_retry_after: float = 120.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, err: Transient) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based) failed with ``err``."""
        with self._lock:
            jitter = self._rng.uniform(0.5, 1.0)
        delay = jitter * min(self.cap, self.base * (2 ** (attempt - 1)))
        if err.reason in ("http_429", "rate_limited"):
            delay = max(delay, self.rate_limit_backoff * (0.75 + 0.25 * jitter))
        if err.retry_after is not None:
            delay = max(delay, min(err.retry_after, self.max_retry_after))
        return delay


def retry_after(resp: requests.Response) -> float | None:
    """The Retry-After header of ``resp`` in seconds (delta-seconds or HTTP date), None when absent or unreadable."""
    v = resp.headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(v)
        return max(0.0, (when - datetime.now(when.tzinfo or timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None
