"""Prefect for one CLI run: its temporary API server started up front, run errors kept off the console.

Without a configured API (`PREFECT_API_URL` unset, ephemeral mode allowed), Prefect starts a
temporary API server (uvicorn in a subprocess) at a flow's first API call, after importing its
whole server package in the calling process just to launch it. `PrefectRun` launches the same
server (`litmeta.flows.prefect_server`: uvicorn serving Prefect's ephemeral server app) as soon as
the command's inputs are checked, so it boots while litmeta parses, points this run's settings at
it (`prefect.settings.temporary_settings`), and stops it when the command ends; the server also
ends when litmeta is killed. If it dies during the run, `TemporaryApi.watch` restarts it on its
port, where Prefect's client retries its calls. With an API configured, Prefect's settings are
left alone and the flows report there.
"""

from __future__ import annotations

import ctypes
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from litmeta.errors import UsageError
from litmeta.flows.prefect_server import HOST

if TYPE_CHECKING:
    from pydantic import ValidationError

STARTUP_TIMEOUT_S = 60.0
RESTARTS = 2  # times the temporary server is restarted when it dies during a run
WATCH_POLL_S = 0.25


class _RunErrorsStayOffConsole(logging.Filter):
    """Drop Prefect's flow/task-run error records (with tracebacks) from the console handler.

    Without ``-v`` the CLI prints a failed run's error itself, as one line; the records still
    reach the Prefect API (run logs), which uses its own handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs",
                                                                                "prefect.task_runs")))


def load_prefect() -> None:
    """Import Prefect, which reads and validates its settings (environment and profile).

    Invalid settings raise `PrefectUnavailable`, whose one line names the setting, and the
    environment variable when one sets it, instead of pydantic's traceback.
    """
    from pydantic import ValidationError

    try:  # Prefect prints the validation error itself first ("Failed to initialize plugins: ...")
        import prefect.main  # noqa: F401 - also sets up Prefect's logging handlers (done lazily otherwise)
        from prefect.settings import get_current_settings

        get_current_settings()
    except ValidationError as exc:
        raise PrefectUnavailable(_invalid_settings(exc)) from None


def _invalid_settings(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0] if errors else {}
    name = ".".join(str(part) for part in first.get("loc", ()))
    suffix = "_" + name.replace(".", "_").upper()
    env = sorted(k for k in os.environ if k.startswith("PREFECT_") and name and k.endswith(suffix))
    env.sort(key=lambda k: os.environ[k] != str(first.get("input")))  # the one holding the bad value first
    where = (f"the environment variable {env[0]}={os.environ[env[0]]!r}" if env
             else "the active Prefect profile ('prefect config view' shows it)")
    what = f"{getattr(exc, 'title', 'settings')}.{name}: {first.get('msg', exc)}" if name else str(exc).splitlines()[0]
    return f"Prefect's settings are not valid ({what}); fix or unset {where}"


def quiet_run_errors() -> None:
    """Keep Prefect's run-error records off its console handler; call after `load_prefect` (which sets the handlers up)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _RunErrorsStayOffConsole) for f in handler.filters):
            handler.addFilter(_RunErrorsStayOffConsole())


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, what makes the server get SIGTERM when litmeta dies, even killed outright (prctl PDEATHSIG).

    Prefect's own temporary server outlives a killed client; litmeta's does not. The function is
    looked up before the fork: the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sigterm = int(signal.SIGTERM)
    return lambda: prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG


def _stopped_on_purpose(code: int) -> bool:
    """Whether the temporary server's exit code is a stop asked for (exit 0 after SIGINT or SIGTERM, or
    the signal itself when it came during the boot): the terminal's Ctrl-C, or litmeta's own stop."""
    return code in (0, -signal.SIGINT, -signal.SIGTERM)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class PrefectUnavailable(UsageError):
    """Prefect cannot run this command (invalid settings, or its temporary API server did not start); the message says what to do."""


_HINT = "; check PREFECT_HOME and the Prefect settings, or run 'prefect server start' and set PREFECT_API_URL"


API_PATH = "/api"  # where Prefect's server app mounts its API


def _port_in_use(port: int) -> bool:
    """Whether something listens on (or holds) ``port`` of the loopback interface."""
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


class TemporaryApi:
    """Prefect's temporary API server (``python -m flows.prefect_server``).

    Its environment is litmeta's (so the same Prefect profile and settings) plus the variables
    Prefect sets for a temporary server (no UI, ephemeral).
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.log: IO[bytes] | None = None  # the server's output
        self.keep_log = False  # kept when it failed to start: its path is in the message

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}{API_PATH}"

    def launch(self) -> TemporaryApi:
        """Start the server process now, on a free port (Prefect is not imported here)."""
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        self._stopping.set()  # a watcher of an earlier launch stops with its event
        self._stopping = threading.Event()
        self._watcher = None
        self._spawn()
        return self

    def _spawn(self) -> None:
        """Start the server process on ``self.port``."""
        # preexec_fn runs in the forked child before exec: only a prctl system call (see above). The
        # parent-death signal follows the thread that forks: a thread that starts a server outlives it
        if self.log is None:  # its messages (a failed start, errors while it stops) stay off the terminal
            self.log = tempfile.NamedTemporaryFile(prefix="litmeta-prefect-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "litmeta.flows.prefect_server", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=_parent_death_signal(),
        )

    def _last_message(self) -> str:
        """The server log's last line, and where the rest is."""
        if self.log is None:
            return ""
        self.log.flush()
        lines = [ln for ln in Path(self.log.name).read_text(errors="replace").splitlines() if ln.strip()]
        return f": {lines[-1].strip()[:300]} (its log: {self.log.name})" if lines else ""

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S, relaunches: int = 2) -> None:
        """Block until the server answers /health; relaunch (a few times) when it fails to start.

        uvicorn exits with code 3 when the port was taken meanwhile, and also when the app fails
        to start (e.g. an unusable Prefect database): only the first is worth a new port, so a
        relaunch (at most ``relaunches``) follows only when the port is in use now.
        Raises `PrefectUnavailable`.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code == 3 and relaunches > 0 and _port_in_use(self.port):
                relaunches -= 1
                self.launch()
            elif code is not None:
                self.keep_log = True
                raise PrefectUnavailable(f"Prefect's temporary API server exited with code {code} while "
                                         f"starting{self._last_message()}{_HINT}")
            if self._healthy() and self.proc.poll() is None:  # ours answered, not something else on that port
                return
            time.sleep(0.02)  # the server answers within a few ms of being up
        raise PrefectUnavailable(f"Prefect's temporary API server did not start within {timeout:g} s{_HINT}")

    def _healthy(self) -> bool:
        """Whether the server answers /health with 200."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", f"{API_PATH}/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def watch(self, restarts: int = RESTARTS) -> None:
        """Restart the server on its port, up to ``restarts`` times, if it dies while the run uses it
        (killed, e.g. by the out-of-memory killer). Prefect's client retries a failed call a few times
        with growing delays: against a dead port, for minutes; after a restart, the next try gets
        through (the run's records are in Prefect's database). Stopped by `stop`."""
        if self._watcher is None:  # one per launch
            self._watcher = threading.Thread(target=self._watch, args=(restarts,), name="litmeta-prefect-watch",
                                             daemon=True)
            self._watcher.start()

    def _watch(self, restarts: int) -> None:
        # polled rather than waited for: `stop` waits for the process too. This thread stays alive while
        # a server it started runs (the parent-death signal follows the forking thread)
        stopping = self._stopping
        while not stopping.wait(WATCH_POLL_S):
            dead = self.proc
            code = dead.poll() if dead is not None else None
            if code is None:
                continue
            if _stopped_on_purpose(code):
                return  # stopped with the terminal's Ctrl-C: the run is being interrupted
            how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit code {code}"
            with self._lock:
                if stopping.is_set() or self.proc is not dead:
                    return
                if restarts <= 0:
                    print(f"litmeta: Prefect's temporary API server died again during the run ({how}); not "
                          "restarted: Prefect cannot record the rest of the run", file=sys.stderr, flush=True)
                    return
                restarts -= 1
                print(f"litmeta: Prefect's temporary API server died during the run ({how}); restarting it "
                      f"on port {self.port}", file=sys.stderr, flush=True)
                self._spawn()
                proc = self.proc
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not self._healthy():
                if stopping.wait(0.05):
                    return
                code = proc.poll()
                if code is not None and _stopped_on_purpose(code):
                    return  # Ctrl-C while it was starting
                if code is not None or time.monotonic() > deadline:
                    print(f"litmeta: Prefect's temporary API server could not be restarted on port {self.port}; "
                          "the run goes on, but Prefect cannot record the rest of it", file=sys.stderr, flush=True)
                    return

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:  # not while the watcher starts a new one
            proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self.log is not None and not self.keep_log:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None


class PrefectRun:
    """Prefect for one command's flow run; a context manager, then `ready()` right before the flow.

    Entering launches the temporary API server unless the environment names an API
    (``PREFECT_API_URL``); `ready()` imports Prefect, keeps run errors off the console (unless
    ``verbose``), and, if Prefect's settings (environment and profile) name no API and allow a
    temporary one, waits for the server and points this run at it (without flow-run heartbeats);
    otherwise stops it unused.
    Enter after the command's input checks (bad input starts nothing); call `ready()` after
    worker processes are forked (they should not inherit Prefect's modules).
    """

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.api: TemporaryApi | None = None
        self._stack = ExitStack()

    def __enter__(self) -> PrefectRun:
        if not os.environ.get("PREFECT_API_URL"):
            self.api = TemporaryApi().launch()
        return self

    def ready(self) -> None:
        load_prefect()
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            get_current_settings,
            temporary_settings,
        )

        if not self.verbose:
            quiet_run_errors()
        if self.api is None:
            return
        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:  # an API from the profile, or none allowed
            self.api.stop()
            self.api = None
            return
        self.api.wait_ready()
        self.api.watch()
        # no flow-run heartbeats: they let a server notice a run that died, and a temporary server
        # stops with this process anyway; the heartbeat thread would also hold up the end of every flow
        self._stack.enter_context(temporary_settings(
            updates={PREFECT_API_URL: self.api.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))

    def __exit__(self, *exc: object) -> None:
        try:
            if self.api is not None:
                _drain_prefect_senders()  # while the settings still point at the live server
            self._stack.close()
        finally:
            if self.api is not None:
                self.api.stop()


def _drain_prefect_senders() -> None:
    """Send what Prefect's background senders still hold (events carry task-run states; logs) and drop them.

    They are one per process and keep the API address they started with, so they must not outlive
    the server (a later run in the same process would send to a stopped server).
    """
    for module, name in (("prefect.events.worker", "EventsWorker"), ("prefect.logging.handlers", "APILogWorker")):
        if module in sys.modules:  # nothing was sent if Prefect never loaded it
            getattr(sys.modules[module], name).drain_all()


@contextmanager
def prefect_run(verbose: bool) -> Iterator[None]:
    """`PrefectRun` entered and ready at once (for commands that fork no workers)."""
    with PrefectRun(verbose) as run:
        run.ready()
        yield
