"""Prefect's temporary API server process: ``python -m litmeta.flows.prefect_server --port N``.

uvicorn serving Prefect's server app built as an ephemeral server (`create_app(ephemeral=True)`:
no UI, only the services an ephemeral server runs) on loopback, as Prefect's own temporary server
does. litmeta starts this process itself (`litmeta.flows.prefect_runtime.TemporaryApi`) so that it
boots while a command is still checking and parsing its input, and so that it ends with litmeta.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HOST = "127.0.0.1"


def create_app() -> Any:
    """Prefect's server app as an ephemeral server; a failure to build it is one line on stderr and exit 1.

    litmeta reports such a failure itself (Prefect settings it cannot use, a broken Prefect
    database), so the traceback would only bury that line.
    """
    try:  # importing Prefect validates its settings
        from prefect.server.api.server import create_app as prefect_app

        return prefect_app(ephemeral=True, final=True)
    except Exception as exc:  # noqa: BLE001 - reported in one line; litmeta names the cause and what to do
        first = (str(exc).splitlines() or [""])[0]
        print(f"Prefect's temporary API server could not start: {type(exc).__name__}: {first}", file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; exit code 3 when the port is taken or the app does not start (uvicorn's)."""
    parser = argparse.ArgumentParser(prog="python -m litmeta.flows.prefect_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(create_app, factory=True, host=HOST, port=args.port, log_level="error", lifespan="on")


if __name__ == "__main__":
    main()
