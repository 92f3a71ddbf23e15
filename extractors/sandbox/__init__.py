"""E-utilities-compatible sandbox server (DESIGN.md, "Sandbox server").

>>> from litmeta.extractors.sandbox import SandboxServer, run_sandbox
>>> with SandboxServer(snapshot_dir, faults="429=0.2,seed=3") as sb:  # doctest: +SKIP
...     sb.base_url, sb.stats()

Run it as a program with ``python -m litmeta.extractors.sandbox --snapshot DIR [--port P]
[--faults SPEC] [--no-rate-limit]``; the base URL is the first line of stdout.
"""

from pathlib import Path

from .faults import FaultSpec, parse_faults
from .responses import RETSTART_CAP_ERROR
from .server import SandboxServer, run_sandbox
from .snapshot import Snapshot, SnapshotError

#: the seed snapshot shipped with the package (PMID 39047240), served by `litmeta demo`
BUNDLED_SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "39047240"

__all__ = [
    "BUNDLED_SNAPSHOT",
    "RETSTART_CAP_ERROR",
    "FaultSpec",
    "SandboxServer",
    "Snapshot",
    "SnapshotError",
    "parse_faults",
    "run_sandbox",
]
