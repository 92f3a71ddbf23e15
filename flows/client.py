"""Building the E-utilities client for a flow run (the api_key comes from the environment only)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from litmeta.errors import CouldNotFinish, UsageError
from litmeta.extractors.entrez import DEFAULT_BASE_URL, EntrezClient, RawDocument
from litmeta.extractors.icite import BATCH_SIZE as ICITE_BATCH
from litmeta.extractors.icite import DEFAULT_ICITE_URL, ICiteClient
from litmeta.extractors.idconv import BATCH_SIZE as IDCONV_BATCH
from litmeta.extractors.idconv import DEFAULT_IDCONV_URL, IdconvClient
from litmeta.warehouse.db import crash_point
from litmeta.warehouse.runs import store_documents


class Unreachable(CouldNotFinish):
    """The E-utilities base URL cannot be reached at all (DNS or TCP)."""


MAX_TRIES_ENV = "LITMETA_MAX_TRIES"
ICITE_BATCH_ENV = "LITMETA_ICITE_BATCH"  # PMIDs per iCite request (at most, and by default, 200)
IDCONV_BATCH_ENV = "LITMETA_IDCONV_BATCH"  # ids per ID Converter request (at most, and by default, 200)
DEFAULT_MAX_TRIES = 10


def preflight(base_url: str, timeout: float = 5.0, option: str = "--eutils-url / LITMETA_EUTILS_URL") -> None:
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
            f"cannot reach {base_url} ({reason}); check {option} and the network, "
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


class DocumentStore:
    """The client's ``on_document``: every answer is stored in raw_documents as it arrives, so it is
    committed before any row parsed from it (nothing in the warehouse points at a missing document)."""

    def __init__(self, db: str, run_id: str) -> None:
        self.db, self.run_id = db, run_id

    def __call__(self, doc: RawDocument) -> None:
        crash_point("fetch")  # test-only hook (LITMETA_CRASH_AT): an answer received, not yet stored
        store_documents(self.db, self.run_id, [doc])


def make_client(eutils_url: str, email: str | None, tool: str, db: str, run_id: str,
                record_snapshot: str | None = None) -> EntrezClient:
    """The E-utilities client of one run: its answers stored as they arrive (`DocumentStore`); its tries
    per request from ``LITMETA_MAX_TRIES`` (``--max-tries``)."""
    return EntrezClient(
        eutils_url,
        tool=tool,
        email=email,
        api_key=os.environ.get("NCBI_API_KEY") or None,
        max_tries=int(os.environ.get(MAX_TRIES_ENV) or DEFAULT_MAX_TRIES),
        on_document=DocumentStore(db, run_id),
        record_snapshot=record_snapshot,
    )


def service_url(service: str, url: str | None, eutils_url: str) -> str:
    """The base URL of ``service`` ('icite' or 'idconv'): ``url`` when given; else, beside an E-utilities URL
    that is not NCBI's and ends in ``entrez/eutils/`` (the sandbox's layout), ``{root}/{service}/``; else the
    service's own."""
    if url:
        return url if url.endswith("/") else url + "/"
    default = {"icite": DEFAULT_ICITE_URL, "idconv": DEFAULT_IDCONV_URL}[service]
    base = eutils_url if eutils_url.endswith("/") else eutils_url + "/"
    if base != DEFAULT_BASE_URL and base.endswith("/entrez/eutils/"):
        return base[: -len("entrez/eutils/")] + f"{service}/"
    return default


def make_icite_client(url: str, email: str | None, tool: str, db: str, run_id: str) -> ICiteClient:
    """The iCite client of one run: its answers stored as they arrive, its tries from ``LITMETA_MAX_TRIES``."""
    return ICiteClient(url, tool=tool, email=email, max_tries=int(os.environ.get(MAX_TRIES_ENV) or DEFAULT_MAX_TRIES),
                       batch_size=_batch_size(ICITE_BATCH_ENV, ICITE_BATCH), on_document=DocumentStore(db, run_id))


def make_idconv_client(url: str, email: str | None, tool: str, db: str, run_id: str) -> IdconvClient:
    """The PMC ID Converter client of one run, like `make_icite_client`."""
    return IdconvClient(url, tool=tool, email=email, max_tries=int(os.environ.get(MAX_TRIES_ENV) or DEFAULT_MAX_TRIES),
                        batch_size=_batch_size(IDCONV_BATCH_ENV, IDCONV_BATCH), on_document=DocumentStore(db, run_id))


def _batch_size(env: str, most: int) -> int:
    """Ids per request from ``env`` (1 to ``most``; unset: ``most``); anything else is bad usage, named."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return most
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise UsageError(f"{env}={raw!r}: expected a whole number from 1 to {most}")
    return int(raw)
