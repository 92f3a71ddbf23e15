"""The sandbox's Entrez history server: WebEnv -> query_key -> (db, id list)."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass


class HistoryError(LookupError):
    """Unknown WebEnv or query_key (served as an ``<ERROR>`` document)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One stored result set."""

    db: str
    ids: tuple[int, ...]


class HistoryStore:
    """Thread-safe in-memory WebEnv store.  WebEnvs look like NCBI's (``MCID_`` + 24 hex)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envs: dict[str, dict[int, HistoryEntry]] = {}

    def add(self, db: str, ids: list[int], webenv: str | None = None) -> tuple[str, int]:
        """Store ``ids``; in ``webenv`` when given (it must exist), else in a new WebEnv.

        Returns ``(webenv, query_key)``; query keys count up from 1 within a WebEnv.
        """
        with self._lock:
            if webenv:
                env = self._envs.get(webenv)
                if env is None:
                    raise HistoryError(f"Unknown WebEnv: {webenv}")
            else:
                webenv = "MCID_" + secrets.token_hex(12)
                env = self._envs[webenv] = {}
            key = max(env, default=0) + 1
            env[key] = HistoryEntry(db=db, ids=tuple(ids))
            return webenv, key

    def new_env(self) -> str:
        """Create an empty WebEnv (for elink neighbor_history)."""
        with self._lock:
            webenv = "MCID_" + secrets.token_hex(12)
            self._envs[webenv] = {}
            return webenv

    def get(self, webenv: str, query_key: int | str | None) -> HistoryEntry:
        """The entry stored under (webenv, query_key); query_key defaults to 1."""
        try:
            key = int(query_key) if query_key not in (None, "") else 1
        except (TypeError, ValueError):
            raise HistoryError(f"Invalid query_key: {query_key}") from None
        with self._lock:
            env = self._envs.get(webenv)
            if env is None:
                raise HistoryError(f"Unknown WebEnv: {webenv}")
            entry = env.get(key)
        if entry is None:
            raise HistoryError(f"Unable to obtain query #{key}")
        return entry
