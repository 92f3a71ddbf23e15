"""NCBI-style per-client rate limiting for the sandbox.

A client is identified by its ``api_key`` when that key is one the snapshot lists (limit 10
requests per sliding second), otherwise by ``(remote address, tool, email)`` (limit 3).  An
unlisted key is treated as no key.  Keys never appear in labels: a listed key is shown as
``key:`` + the first 12 hex digits of its SHA-256.

A request is admitted when fewer than ``limit`` admitted requests of the same client fall
in the preceding second; otherwise it is rejected (HTTP 429).  A rejected request is
recorded in the statistics but does not occupy a slot in the window, so a client that backs
off regains access one second after its admitted requests.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from dataclasses import dataclass

WINDOW_S = 1.0
LIMIT_NO_KEY = 3
LIMIT_WITH_KEY = 10


@dataclass(frozen=True)
class ClientId:
    """Who a request counts against, and its limit."""

    label: str
    limit: int


def key_label(api_key: str) -> str:
    """Redacted label for an api_key (never the key itself)."""
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


def identify(remote: str, tool: str, email: str, api_key: str, listed_keys: frozenset[str]) -> ClientId:
    """The client identity of a request (see the module docstring)."""
    if api_key and api_key in listed_keys:
        return ClientId(label=key_label(api_key), limit=LIMIT_WITH_KEY)
    return ClientId(label=f"{remote}|tool={tool or '-'}|email={email or '-'}", limit=LIMIT_NO_KEY)


class RateLimiter:
    """Sliding one-second window per client (thread-safe)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}
        self._seen: dict[str, deque[float]] = {}

    def check(self, client: ClientId, now: float) -> tuple[bool, int]:
        """Admit or reject a request at ``now`` (monotonic seconds).

        Returns ``(admitted, count)`` where ``count`` is the number of requests (admitted or
        not) this client sent in the window, including this one: NCBI's ``"count"`` in the
        429 body.
        """
        horizon = now - self.window_s
        with self._lock:
            seen = self._seen.setdefault(client.label, deque())
            while seen and seen[0] <= horizon:
                seen.popleft()
            seen.append(now)
            q = self._admitted.setdefault(client.label, deque())
            while q and q[0] <= horizon:
                q.popleft()
            if len(q) >= client.limit:
                return False, len(seen)
            q.append(now)
            return True, len(seen)
