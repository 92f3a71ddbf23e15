"""``python -m litmeta.extractors.sandbox --snapshot DIR [--port P] [--faults SPEC] [--no-rate-limit]``."""

from __future__ import annotations

import argparse
import sys

from .faults import FaultSpec
from .server import run_sandbox
from .snapshot import SnapshotError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C; exit 2 on bad usage or a bad snapshot."""
    ap = argparse.ArgumentParser(prog="python -m litmeta.extractors.sandbox", description=__doc__)
    ap.add_argument("--snapshot", required=True, help="snapshot directory to serve")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--faults", default=None, help="e.g. 429=0.1,500=0.05,truncate=0.05,seed=7")
    ap.add_argument("--no-rate-limit", action="store_true", help="disable the NCBI-style rate limit")
    ap.add_argument("--api-key", action="append", default=[], help="accept this api_key too (10 req/s)")
    args = ap.parse_args(argv)
    try:
        FaultSpec.parse(args.faults)
        run_sandbox(
            args.snapshot,
            port=args.port,
            faults=args.faults,
            host=args.host,
            rate_limit=not args.no_rate_limit,
            api_keys=args.api_key,
        )
    except (SnapshotError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
