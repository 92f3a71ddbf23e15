"""Exception types of litmeta's HTTP clients (`litmeta.extractors.service_client` and its subclasses).

Every exception names the service and the request it is about with the client's request description
(endpoint, parameters, number of ids, first few ids, method), which never contains the api_key.

    ServiceError                     base class; .service, .request, .endpoint, .reason
    ├── ServiceRetryExhausted        a transient failure (429, 5xx, reset, timeout, truncated body,
    │                                200 with an error message, HTML page) persisted for every allowed try
    ├── ServicePermanentError        a failure retrying cannot fix (HTTP 400/403/404/414, invalid db,
    │                                empty id list, ...): raised at once, never retried
    └── ServiceResponseError         an answer that is well-formed but not what was asked for

    EntrezError (E-utilities) and its subclasses EntrezRetryExhausted, EntrezPermanentError (with
    EntrezSearchCapError: PubMed esearch cannot page past 9,999 records and the automatic date /
    PMID-range split could not get under it) and EntrezResponseError (e.g. an elink answer that
    cannot be attributed to its ids) are the same kinds for the E-utilities client.
"""

from __future__ import annotations

from litmeta.errors import CouldNotFinish, LitmetaError, UsageError


class ServiceError(LitmetaError):
    """A request to a web service failed. The message never contains a secret."""

    default_service = ""

    def __init__(self, message: str, *, request: str = "", endpoint: str = "", reason: str = "",
                 service: str = "") -> None:
        super().__init__(message)
        self.request = request
        self.endpoint = endpoint
        self.reason = reason
        self.service = service or self.default_service


class ServiceRetryExhausted(ServiceError, CouldNotFinish):
    """Transient failures on every try; `.tries` tries were made, `.reasons` lists why each failed."""

    def __init__(self, message: str, *, request: str = "", endpoint: str = "", reason: str = "",
                 tries: int = 0, reasons: list[str] | None = None, service: str = "") -> None:
        super().__init__(message, request=request, endpoint=endpoint, reason=reason, service=service)
        self.tries = tries
        self.reasons = list(reasons or [])


class ServicePermanentError(ServiceError, UsageError):
    """The server refused the request in a way that retrying cannot fix."""

    def __init__(self, message: str, *, request: str = "", endpoint: str = "", reason: str = "",
                 status: int | None = None, service: str = "") -> None:
        super().__init__(message, request=request, endpoint=endpoint, reason=reason, service=service)
        self.status = status


class ServiceResponseError(ServiceError, CouldNotFinish):
    """A complete, well-formed answer that does not match the request."""


class EntrezError(ServiceError):
    """An E-utilities request failed. The message never contains the api_key."""

    default_service = "E-utilities"


class EntrezRetryExhausted(EntrezError, ServiceRetryExhausted):
    """Transient failures on every try; `.tries` tries were made, `.reasons` lists why each failed."""


class EntrezPermanentError(EntrezError, ServicePermanentError):
    """E-utilities refused the request in a way that retrying cannot fix."""


class EntrezSearchCapError(EntrezPermanentError):
    """PubMed's esearch 9,999-record cap could not be worked around for this query."""


class EntrezResponseError(EntrezError, ServiceResponseError):
    """A complete, well-formed answer that does not match the request."""
