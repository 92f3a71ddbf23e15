"""The E-utilities sandbox HTTP server.

``SandboxServer`` serves a snapshot directory at ``http://127.0.0.1:PORT/entrez/eutils/``
(``esearch.fcgi``, ``efetch.fcgi``, ``elink.fcgi``, ``esummary.fcgi``, ``epost.fcgi``,
``einfo.fcgi``, ``ecitmatch.cgi`` (:mod:`.ecitmatch`); elink ``cmd=llinks``/``prlinks`` from :mod:`.linkout`;
GET or form-encoded POST) in NCBI's formats, with NCBI's per-client rate limit
(:mod:`.ratelimit`), optional injected faults (:mod:`.faults`) and request statistics at
``GET /_stats`` (``POST /_stats/reset`` or ``GET /_stats?reset=1`` zeroes them).

It also serves NIH iCite at ``/icite/pubs`` and the PMC ID Converter at ``/idconv/`` from the same snapshot
(:mod:`.citation_services`), with the same rate limit (a window of its own per service and client), the
same faults (``error200`` is a 200 JSON answer with an error message; 5xx an HTML page) and their own
``/_stats`` endpoint names (``icite``, ``idconv``).

Order of processing for a request:

1. counted in the statistics (endpoint, explicit ids, client timestamp);
2. a GET whose request target is longer than 8,190 bytes gets HTTP 414 (NCBI asks for POST
   above ~200 ids);
3. the rate limiter admits or rejects it (HTTP 429, NCBI's JSON body, no Retry-After);
4. the n-th admitted request draws its fault from ``(seed, n)``;
5. the endpoint answers from the snapshot (:mod:`.endpoints`).

API keys are never echoed, logged or stored: statistics label a listed key by a hash, and
log lines drop the query string.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

from . import responses as R
from .endpoints import XML, Endpoints, Params, RequestError
from .faults import Fault, FaultSpec, parse_faults
from .ftp import FtpTree
from .history import HistoryStore
from .ratelimit import RateLimiter, identify
from .snapshot import Snapshot

log = logging.getLogger(__name__)

BASE_PATH = "/entrez/eutils/"
FTP_PATH = "/pubmed/"  # NCBI's FTP tree over HTTPS: /pubmed/baseline/, /pubmed/updatefiles/ (.ftp)
ENDPOINTS = ("esearch", "efetch", "elink", "esummary", "epost", "einfo", "ecitmatch")
#: E-utilities served at a ``.cgi`` name
CGI_ENDPOINTS = {"ecitmatch.cgi": "ecitmatch"}
JSON = "application/json"
#: the other services: endpoint name -> (path, the parameter listing the ids)
SERVICES = {"icite": ("/icite/pubs", "pmids"), "idconv": ("/idconv", "ids")}
MAX_GET_TARGET = 8190  # Apache's LimitRequestLine default; NCBI answers 414 to long GETs


@dataclass
class Response:
    """What the HTTP layer should do for one request."""

    status: int = 200
    content_type: str = XML
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    reset: bool = False
    delay: float = 0.0
    #: send this many bytes of the body, then drop the connection (with a reset when ``reset``)
    abort_after: int | None = None


class Stats:
    """Thread-safe request statistics (the ``/_stats`` document)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zero()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._zero()

    def _zero(self) -> None:
        self.requests = 0
        self.by_endpoint: dict[str, int] = defaultdict(int)
        self.ids_requested: dict[str, int] = defaultdict(int)
        self.methods: dict[str, int] = defaultdict(int)
        self.status: dict[str, int] = defaultdict(int)
        self.faults: dict[str, int] = defaultdict(int)
        self.faults_by_endpoint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.rate_limited = 0
        self.clients: dict[str, list[float]] = defaultdict(list)
        self.ftp: dict[str, int] = defaultdict(int)  # FTP tree requests by path (index, file, .md5)
        self.ftp_faults: dict[str, int] = defaultdict(int)

    def arrived(self, endpoint: str, method: str, n_ids: int, client: str, now: float) -> None:
        """Count a request at its arrival."""
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1
            self.ids_requested[endpoint] += n_ids
            self.methods[method] += 1
            self.clients[client].append(now)

    def ftp_request(self, path: str, fault: str | None) -> None:
        """Count a request to the FTP tree (and the fault it drew)."""
        with self._lock:
            self.requests += 1
            self.ftp[path] += 1
            if fault:
                self.ftp_faults[fault] += 1

    def bump(self, table: str, key: str) -> None:
        """Increment ``status``/``faults`` by key, or ``rate_limited``."""
        with self._lock:
            if table == "rate_limited":
                self.rate_limited += 1
            else:
                getattr(self, table)[key] += 1

    def fault(self, endpoint: str, kind: str) -> None:
        """Count a fault served, by kind and by endpoint."""
        with self._lock:
            self.faults[kind] += 1
            self.faults_by_endpoint[endpoint][kind] += 1

    def snapshot(self) -> dict:
        """A JSON-ready copy."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_endpoint": dict(self.by_endpoint),
                "ids_requested": dict(self.ids_requested),
                "methods": dict(self.methods),
                "status": dict(self.status),
                "faults": dict(self.faults),
                "faults_by_endpoint": {k: dict(v) for k, v in self.faults_by_endpoint.items()},
                "rate_limited": self.rate_limited,
                "clients": {k: list(v) for k, v in self.clients.items()},
                "ftp": dict(self.ftp),
                "ftp_faults": dict(self.ftp_faults),
                "clock": "time.monotonic",
            }


class SandboxApp:
    """Request processing independent of the HTTP plumbing (see the module docstring)."""

    def __init__(
        self,
        snapshot: Snapshot,
        faults: FaultSpec,
        rate_limit: bool = True,
        api_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.snapshot = snapshot
        self.faults = faults
        self.rate_limit = rate_limit
        self.api_keys = frozenset(snapshot.api_keys) | frozenset(api_keys)
        self.history = HistoryStore()
        self.endpoints = Endpoints(snapshot=snapshot, history=self.history)
        self.limiter = RateLimiter()
        self.stats = Stats()
        self._fault_lock = threading.Lock()
        self._admitted = 0
        self.ftp = FtpTree(snapshot.root)

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, target: str, body: bytes, remote: str,
               headers: dict[str, str] | None = None) -> Response:
        """Answer one HTTP request (``target`` is the request path with its query string)."""
        split = urlsplit(target)
        path = split.path
        path = path.rstrip("/")
        if path.endswith("/_stats/reset") and method == "POST":
            before = self.stats.snapshot()
            self.stats.reset()
            return self._json(200, {"reset": True, "before": before})
        if path.endswith("/_stats"):
            data = self.stats.snapshot()
            if parse_qs(split.query).get("reset", ["0"])[0] not in ("", "0"):
                self.stats.reset()
            return self._json(200, data)

        if split.path.startswith(FTP_PATH):
            return self._ftp(split.path[len(FTP_PATH):], headers or {})

        name = path.rsplit("/", 1)[-1]
        endpoint = name[: -len(".fcgi")] if name.endswith(".fcgi") else CGI_ENDPOINTS.get(name, "")
        service = next((k for k, (suffix, _) in SERVICES.items() if path.endswith(suffix)), None)
        if service is not None:
            endpoint = service
        elif endpoint not in ENDPOINTS:
            return Response(404, "text/html; charset=UTF-8", R.html_error_page(404))

        pairs = parse_qsl(split.query, keep_blank_values=True)
        if body:
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = Params(pairs)
        client = identify(
            remote, params.get("tool"), params.get("email"), params.get("api_key"), self.api_keys
        )
        if service is not None:  # each service limits its clients on its own
            client = replace(client, label=f"{service}:{client.label}")
        n_ids = params.explicit_id_count() if service is None else len(self._service_ids(service, params))
        if endpoint == "ecitmatch":  # its "ids" are citation lines
            n_ids = sum(1 for v in params.getall("bdata") for ln in v.replace("\r", "\n").split("\n") if ln.strip())
        now = time.monotonic()
        self.stats.arrived(endpoint, method, n_ids, client.label, now)

        # E-utilities asks for POST above ~200 ids; iCite and the ID converter take their 200 ids by GET
        if method == "GET" and len(target) > MAX_GET_TARGET and service is None:
            return self._done(Response(414, "text/html; charset=UTF-8", R.html_error_page(414)))

        count = 1
        if self.rate_limit:
            admitted, count = self.limiter.check(client, now)
            if not admitted:
                self.stats.bump("rate_limited", "")
                return self._done(self._too_many(count))

        fault = self._draw_fault()
        if fault is not None:
            self.stats.fault(endpoint, fault.kind)
            early = self._early_fault(fault, endpoint, count)
            if early is not None:
                return self._done(early)

        resp = self._serve(endpoint, params) if service is None else self._serve_service(service, params)
        if fault is not None and fault.kind == "truncate" and len(resp.body) > 1:
            cut = min(len(resp.body) - 1, max(1, int(len(resp.body) * fault.cut)))
            resp.body = resp.body[:cut]
        if fault is not None and fault.kind == "slow":
            resp.delay = fault.delay
        return self._done(resp)

    def _ftp(self, rel: str, headers: dict[str, str]) -> Response:
        """A request to the FTP tree (:mod:`.ftp`): no rate limit (NCBI's FTP site has none), faults drawn."""
        fault = self._draw_fault()
        self.stats.ftp_request(rel, fault.kind if fault else None)
        ans = self.ftp.answer(rel, headers.get("range"), fault)
        resp = Response(ans.status, ans.content_type, ans.body, ans.headers, reset=ans.reset,
                        abort_after=ans.abort_after or None)  # 0: a reset before any answer
        if fault is not None and fault.kind == "slow":
            resp.delay = fault.delay
        return self._done(resp)

    def _serve(self, endpoint: str, params: Params) -> Response:
        try:
            if params.get("retmode").lower() == "json":
                raise RequestError("The sandbox serves retmode=xml only")
            status, ctype, body = getattr(self.endpoints, endpoint)(params)
        except RequestError as exc:
            return Response(200, XML, R.error_document(endpoint, str(exc)))
        except Exception:  # a sandbox bug must not kill the connection thread silently
            log.exception("sandbox: internal error in %s", endpoint)
            return Response(500, "text/html; charset=UTF-8", R.html_error_page(500))
        return Response(status, ctype, body)

    @staticmethod
    def _service_ids(service: str, params: Params) -> list[str]:
        raw = ",".join(params.getall(SERVICES[service][1]))
        return [t for t in raw.replace(",", " ").split() if t]

    def _serve_service(self, service: str, params: Params) -> Response:
        ids = self._service_ids(service, params)
        services = self.snapshot.services
        if service == "icite":
            if not ids:
                return Response(400, JSON, json.dumps({"error": "pmids is required"}).encode())
            return Response(200, JSON, services.icite_answer(ids))
        if not ids:
            return Response(200, JSON, json.dumps({"status": "error", "message": "ids is required"}).encode())
        return Response(200, JSON, services.idconv_answer(ids, params.get("idtype").lower()))

    def _draw_fault(self) -> Fault | None:
        if not self.faults.active:
            return None
        with self._fault_lock:
            n = self._admitted
            self._admitted += 1
        return self.faults.draw(n)

    def _early_fault(self, fault: Fault, endpoint: str, count: int) -> Response | None:
        kind = fault.kind
        if kind == "429":
            return self._too_many(max(count, 4))
        if kind in ("500", "502", "503"):
            return Response(int(kind), "text/html; charset=UTF-8", R.html_error_page(int(kind)))
        if kind == "error200" and endpoint == "icite":
            return Response(200, JSON, json.dumps({"error": "Internal error, please try again later"}).encode())
        if kind == "error200" and endpoint == "idconv":
            return Response(200, JSON, json.dumps({"status": "error", "message": "Service temporarily unavailable"
                                                   }).encode())
        if kind == "error200":
            return Response(200, XML, R.error_document(endpoint, R.ERROR200_TEXT[endpoint]))
        if kind == "reset":
            return Response(reset=True)
        return None  # truncate and slow modify the normal answer

    def _too_many(self, count: int) -> Response:
        return Response(429, "application/json", R.rate_limit_body(count))

    def _done(self, resp: Response) -> Response:
        if not resp.reset:
            self.stats.bump("status", str(resp.status))
        return resp

    @staticmethod
    def _json(status: int, data: dict) -> Response:
        return Response(status, "application/json", json.dumps(data).encode())


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler delegating to the server's :class:`SandboxApp`."""

    protocol_version = "HTTP/1.1"
    server_version = "eutils-sandbox"
    sys_version = ""
    timeout = 60

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        body = b""
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        app: SandboxApp = self.server.app  # type: ignore[attr-defined]
        resp = app.handle(method, self.path, body, self.client_address[0],
                          {k.lower(): v for k, v in self.headers.items()})
        if resp.reset and resp.abort_after is None:
            self._reset_connection()
            return
        if resp.delay:
            time.sleep(resp.delay)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(resp.body if resp.abort_after is None else resp.body[:resp.abort_after])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if resp.abort_after is not None:  # part of the body sent: the connection drops
            self.wfile.flush()
            if resp.reset:
                self._reset_connection()
            else:
                self.close_connection = True

    def _reset_connection(self) -> None:
        """Abort the TCP connection (RST, no answer): SO_LINGER 0, then close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for closer in (self.rfile.close, self.connection.close):
            try:
                closer()
            except OSError:
                pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # never log the query string: it may hold an api_key
        log.debug("sandbox %s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("sandbox: %s", (format % args).split("?", 1)[0])


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: SandboxApp


class SandboxServer:
    """The sandbox in a background thread; use as a context manager.

    >>> with SandboxServer(snapshot_dir, faults="429=0.2,seed=3") as sb:   # doctest: +SKIP
    ...     requests.get(sb.base_url + "einfo.fcgi")
    """

    def __init__(
        self,
        snapshot_dir: str | Path | Snapshot,
        faults: str | FaultSpec | None = None,
        rate_limit: bool = True,
        port: int = 0,
        host: str = "127.0.0.1",
        api_keys: list[str] | tuple[str, ...] | frozenset[str] = (),
    ) -> None:
        snapshot = snapshot_dir if isinstance(snapshot_dir, Snapshot) else Snapshot.load(snapshot_dir)
        self.snapshot = snapshot
        self.app = SandboxApp(
            snapshot, parse_faults(faults), rate_limit=rate_limit, api_keys=frozenset(api_keys)
        )
        self.host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def bind(self) -> None:
        """Open the listening socket (``start`` does this for you)."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self._port), _Handler)
            self._httpd.app = self.app
            self._port = self._httpd.server_address[1]

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread."""
        self.bind()
        assert self._httpd is not None
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="eutils-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in the calling thread until :meth:`stop` or KeyboardInterrupt."""
        self.bind()
        assert self._httpd is not None
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=5)
            self._httpd.server_close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ info
    @property
    def port(self) -> int:
        """The bound port (after :meth:`bind`/:meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("sandbox server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/entrez/eutils/``."""
        return f"http://{self.host}:{self.port}{BASE_PATH}"

    @property
    def ftp_url(self) -> str:
        """``http://HOST:PORT/pubmed/``: the FTP tree (``baseline/``, ``updatefiles/``), for ``--ftp-url``."""
        return f"http://{self.host}:{self.port}{FTP_PATH}"

    @property
    def icite_url(self) -> str:
        """``http://HOST:PORT/icite/`` (the iCite API base: ``pubs`` beneath it)."""
        return f"http://{self.host}:{self.port}/icite/"

    @property
    def idconv_url(self) -> str:
        """``http://HOST:PORT/idconv/`` (the PMC ID Converter)."""
        return f"http://{self.host}:{self.port}/idconv/"

    def stats(self) -> dict:
        """The ``/_stats`` document."""
        return self.app.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the statistics (rate-limit windows, history and the fault sequence are kept)."""
        self.app.stats.reset()


def run_sandbox(
    snapshot_dir: str | Path,
    port: int = 0,
    faults: str | None = None,
    host: str = "127.0.0.1",
    rate_limit: bool = True,
    api_keys: list[str] | tuple[str, ...] = (),
) -> None:
    """Serve until Ctrl-C, printing the base URL as the first line of stdout (blocking)."""
    server = SandboxServer(
        snapshot_dir, faults=faults, rate_limit=rate_limit, port=port, host=host, api_keys=api_keys
    )
    server.bind()
    print(server.base_url, flush=True)
    print(f"iCite: {server.icite_url}\nPMC ID Converter: {server.idconv_url}", flush=True)
    if any(server.app.ftp.has(f) for f in ("baseline", "updatefiles")):
        print(f"PubMed FTP tree: {server.ftp_url}", flush=True)
    snap = server.snapshot
    print(
        f"sandbox: {len(snap.pubmed)} PubMed records, {len(snap.pmc)} PMC articles, "
        f"{snap.link_count} links, {len(snap.searches)} searches, {len(snap.services.icite)} iCite records, "
        f"{len(snap.services.idconv)} ID-converter ids from {snap.root}"
        + (f"; faults {server.app.faults}" if server.app.faults.active else "")
        + ("" if rate_limit else "; rate limit OFF"),
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
