"""Prefect's temporary API server process, booted with the garbage collector paused.

`flows.prefect_runtime.TemporaryApi` runs ``python -m flows.prefect_server <uvicorn options>``:
uvicorn's own command line serving Prefect's app factory, as Prefect's `SubprocessASGIServer`
does, with one difference. Booting imports Prefect's whole server package, which allocates
millions of objects that live as long as the server; CPython's collector, run every 700 net
allocations, keeps rescanning them and finds almost nothing (about 20 % of the boot's CPU time).
So the collector is off until the app is built, then the boot's objects are frozen (left out of
later collections) and it runs as usual.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

FACTORY = "flows.prefect_server:create_app"


def create_app() -> Any:
    """Prefect's server app (`prefect.server.api.server.create_app`), then the collector back on.

    When the app cannot be built (e.g. invalid Prefect settings, which litmeta reports itself), the
    process says so in one line and exits with code 1 instead of printing a traceback.
    """
    try:
        from prefect.server.api.server import create_app as prefect_app

        return prefect_app()
    except Exception as exc:  # noqa: BLE001 - reported in one line; litmeta names the cause and what to do
        first = (str(exc).splitlines() or [""])[0]
        print(f"Prefect's temporary API server could not start: {type(exc).__name__}: {first}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    gc.disable()
    from uvicorn.main import main as uvicorn

    try:
        uvicorn(prog_name="uvicorn")  # exits (SystemExit) once stopped
    finally:
        gc.freeze()  # a quicker interpreter teardown: see flows.cli.entry


if __name__ == "__main__":
    main()
