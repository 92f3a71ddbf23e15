"""Exception types of the E-utilities client (`litmeta.extractors.entrez`).

Every exception names the request it is about with the client's request description
(endpoint, db, number of ids, first few ids, method), which never contains the api_key.

    EntrezError                      base class; .request, .endpoint, .reason
    ├── EntrezRetryExhausted         a transient failure (429, 5xx, reset, timeout, truncated body,
    │                                200 with <ERROR>, HTML page) persisted for every allowed try
    ├── EntrezPermanentError         a failure retrying cannot fix (HTTP 400/403/404/414,
    │   │                            invalid db, empty id list, ...): raised at once, never retried
    │   └── EntrezSearchCapError     PubMed esearch cannot page past 9,999 records and the
    │                                automatic date / PMID-range split could not get under it
    └── EntrezResponseError          an answer that is well-formed but not what was asked for
                                     (e.g. an elink answer that cannot be attributed to its ids)
"""

from __future__ import annotations

from litmeta.errors import CouldNotFinish, LitmetaError, UsageError


class EntrezError(LitmetaError):
    """An E-utilities request failed. The message never contains the api_key."""

    def __init__(self, message: str, *, request: str = "", endpoint: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.request = request
        self.endpoint = endpoint
        self.reason = reason


class EntrezRetryExhausted(EntrezError, CouldNotFinish):
    """Transient failures on every try; `.tries` tries were made, `.reasons` lists why each failed."""

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        endpoint: str = "",
        reason: str = "",
        tries: int = 0,
        reasons: list[str] | None = None,
    ) -> None:
        super().__init__(message, request=request, endpoint=endpoint, reason=reason)
        self.tries = tries
        self.reasons = list(reasons or [])


class EntrezPermanentError(EntrezError, UsageError):
    """The server refused the request in a way that retrying cannot fix."""

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        endpoint: str = "",
        reason: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, request=request, endpoint=endpoint, reason=reason)
        self.status = status


class EntrezSearchCapError(EntrezPermanentError):
    """PubMed's esearch 9,999-record cap could not be worked around for this query."""


class EntrezResponseError(EntrezError, CouldNotFinish):
    """A complete, well-formed answer that does not match the request."""
