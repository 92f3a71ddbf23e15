"""Building the E-utilities client for a flow run (the api_key comes from the environment only)."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

from litmeta.errors import CouldNotFinish
from litmeta.extractors.entrez import EntrezClient, RawDocument
from litmeta.warehouse.db import crash_point


class Unreachable(CouldNotFinish):
    """The E-utilities base URL cannot be reached at all (DNS or TCP)."""


def preflight(base_url: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URL, when nothing listens there (no HTTP request is made)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(
            f"cannot reach {base_url} ({reason}); check --eutils-url / LITMETA_EUTILS_URL and the network, "
            "then re-run the same command"
        ) from None


def retry_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task only when retrying can help.

    That is a failure outside the input (`CouldNotFinish`: NCBI still failing after the client's
    own retries, a busy warehouse). A request NCBI refused for good, bad input and bugs fail the
    run at once.
    """
    try:
        state.result(raise_on_failure=True)
    except CouldNotFinish:
        return True
    except Exception:
        return False
    return False


class DocumentBuffer:
    """Collects every raw response of a client (thread-safe) until the flow stores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: list[RawDocument] = []

    def __call__(self, doc: RawDocument) -> None:
        crash_point("fetch")  # test-only hook (LITMETA_CRASH_AT): an answer received, not yet stored
        with self._lock:
            self._docs.append(doc)

    def drain(self) -> list[RawDocument]:
        with self._lock:
            docs, self._docs = self._docs, []
        return docs


def make_client(eutils_url: str, email: str | None, tool: str, record_snapshot: str | None = None,
                documents: DocumentBuffer | None = None) -> EntrezClient:
    return EntrezClient(
        eutils_url,
        tool=tool,
        email=email,
        api_key=os.environ.get("NCBI_API_KEY") or None,
        on_document=documents,
        record_snapshot=record_snapshot,
    )
