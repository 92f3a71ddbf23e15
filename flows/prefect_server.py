"""Prefect's temporary API server process: uvicorn serving Prefect's app, booted with the garbage collector paused.

`litmeta.flows.prefect_runtime.TemporaryApi` runs ``python -m flows.prefect_server --app-dir DIR --port N``:
uvicorn serving Prefect's app factory on 127.0.0.1, as Prefect's `SubprocessASGIServer` does
(log level error, lifespan on), with two differences:

- Booting imports Prefect's whole server package, which allocates millions of objects that live
  as long as the server; CPython's collector, run every 700 net allocations, keeps rescanning them
  and finds almost nothing (about 20 % of the boot's CPU time). So the collector is off until the
  app is built, then the boot's objects are frozen (left out of later collections) and it runs as
  usual.
- Once it has been up a second, it stops as soon as it gets SIGTERM: uvicorn looks for the signal
  every 0.1 s, then waits 0.1 s more for open connections to close, also when there are none
  (litmeta has closed its own by then). Prefect's shutdown (its services flush what they hold) runs
  as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
from types import FrameType
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


# Prefect's services start in tasks of their own once the app is up; stopped before they have, the
# shutdown fails ("Reactive triggers not started") and the process lingers. Until the server has
# been up this long, it stops as uvicorn does (its 0.1 s tick and wait leave them the time).
SETTLE_S = 1.0


def _server_class() -> type:
    import uvicorn

    class PromptServer(uvicorn.Server):
        """uvicorn's server, woken by the stop signal instead of finding it at its next 0.1 s tick,
        and not waiting for connections to close when none is open, once it has been up SETTLE_S."""

        _wake: asyncio.Event | None = None
        _up_since = float("inf")

        def _settled(self) -> bool:
            return time.monotonic() - self._up_since >= SETTLE_S

        async def main_loop(self) -> None:
            self._up_since = time.monotonic()
            wake = self._wake = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._set_wake = lambda: loop.call_soon_threadsafe(wake.set)
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 1) % 864000
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), 0.1)
                should_exit = await self.on_tick(counter)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self._wake is not None and self._settled():
                self._set_wake()

        async def shutdown(self, sockets: list | None = None) -> None:
            if self.server_state.connections or not hasattr(self, "servers") or not self._settled():
                await super().shutdown(sockets)  # uvicorn's own, with its wait for the connections
                return
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            if not self.force_exit:
                await self.lifespan.shutdown()

    return PromptServer


def main(argv: list[str] | None = None) -> None:
    gc.disable()
    parser = argparse.ArgumentParser(prog="python -m flows.prefect_server")
    parser.add_argument("--app-dir", required=True, help="the folder holding the prefect package")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, args.app_dir)  # as uvicorn's --app-dir: prefect from there, whatever the working folder holds
    import uvicorn

    config = uvicorn.Config(FACTORY, factory=True, host="127.0.0.1", port=args.port, log_level="error", lifespan="on")
    server = _server_class()(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()  # SIGTERM: a graceful stop, then uvicorn raises the signal again (the process ends by it)
    if not server.started:  # as uvicorn's command: the port was taken, or the app did not start
        raise SystemExit(3)


if __name__ == "__main__":
    main()
