"""CPU time of the parse workers' work on a PubMed file, measured in one process, and a hash of its output.

    PYTHONPATH=. .venv/bin/python bench/parse_cpu.py [FILE] [--repeat N] [--profile OUT.prof]
                                                     [--hash-out H.json] [--hash-check H.json]

The file (default: ``bench/out/pubmed_bench_30000.xml.gz``) is gunzipped once into memory and cut
into pieces with `litmeta.extractors.record_split.RecordSplitter` exactly as `litmeta.extractors.parallel` does
(same piece size); every piece then goes through `litmeta.extractors.pubmed_xml.parse_piece` here, one
after the other. Reported, as process CPU seconds (``time.process_time``), best of ``--repeat``:

- walk: parsing the pieces with the hardened pull parser and freeing each record, nothing else;
- parse_piece: the whole worker-side work (walk + extraction + ``RowSink.to_arrow``);
- to_arrow: the part of it spent in ``RowSink.to_arrow`` (timed by wrapping it);
- extraction: parse_piece - walk - to_arrow.

``--hash-out`` writes a sha256 per table over every batch's Arrow table (IPC stream, in piece and
batch order) plus the rejects, deletions and record counts; ``--hash-check`` compares with such a
file and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

import pyarrow as pa

from litmeta.extractors import pubmed_xml
from litmeta.extractors.parallel import DEFAULT_PIECE
from litmeta.extractors.record_split import CLOSE, Piece, RecordSplitter
from litmeta.extractors.xmlsource import iter_piece_elements
from litmeta.schemas import RowSink

DEFAULT_FILE = Path(__file__).parent / "out" / "pubmed_bench_30000.xml.gz"


def split(data: bytes, name: str) -> tuple[list[Piece], bytes]:
    """The pieces of ``data`` and the head passed with each, as `litmeta.extractors.parallel.ParsePool` cuts them."""
    splitter = RecordSplitter(data, name, target=DEFAULT_PIECE)
    pieces = list(splitter)
    if any(p.stream is not None for p in pieces):
        sys.exit(f"{name}: the splitter streams (part of) this input; pick a file it cuts into pieces")
    return pieces, splitter.head


def walk(pieces: list[Piece], head: bytes, name: str) -> int:
    """Parse every piece (same data and options as `parse_piece`) and free each record; the record count."""
    n = 0
    for piece in pieces:
        data = head + piece.body if piece.final else b"".join((head, piece.body, CLOSE))
        for _elem in iter_piece_elements(data, pubmed_xml.RECORD_TAGS, name, accept=pubmed_xml._not_nested,
                                         complete=piece.error is None):
            n += 1
    return n


def parse_all(pieces: list[Piece], head: bytes, name: str, hasher: Hasher | None = None) -> float:
    """CPU seconds of `parse_piece` over every piece; each result goes to ``hasher`` (untimed), then is dropped."""
    seconds = 0.0
    for piece in pieces:
        t0 = time.process_time()
        result = pubmed_xml.parse_piece(piece, head, name)
        seconds += time.process_time() - t0
        if hasher is not None:
            hasher.add(result)
    return seconds


class ArrowTimer:
    """Wraps ``RowSink.to_arrow`` to add up the CPU time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = RowSink.to_arrow

    def __enter__(self) -> ArrowTimer:
        original, timer = self.original, self

        def timed(sink: RowSink) -> dict[str, pa.Table]:
            t0 = time.process_time()
            try:
                return original(sink)
            finally:
                timer.seconds += time.process_time() - t0

        RowSink.to_arrow = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        RowSink.to_arrow = self.original  # type: ignore[method-assign]


def cpu(fn, *args) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn(*args)
    return time.process_time() - t0, out


class Hasher:
    """sha256 per table (IPC of each batch's table, in order) and of the rejects, deletions and counts."""

    def __init__(self) -> None:
        self.tables: dict[str, hashlib._Hash] = {}
        self.meta = hashlib.sha256()

    def add(self, result: pubmed_xml.PieceResult) -> None:
        self.meta.update(repr((result.n_records, result.broken, len(result.batches))).encode())
        for batch in result.batches:
            self.meta.update(repr((batch.kind, batch.source, batch.n_records, batch.deleted_pmids,
                                   [(r.source, r.record_key, r.reason, r.excerpt) for r in batch.rejects])).encode())
            for name, table in batch.tables.items():
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table.combine_chunks())
                self.tables.setdefault(name, hashlib.sha256()).update(sink.getvalue().to_pybytes())

    def digests(self) -> dict[str, str]:
        return {**{name: h.hexdigest() for name, h in self.tables.items()}, "_batches": self.meta.hexdigest()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", help="write a cProfile of one parse_piece pass here")
    ap.add_argument("--hash-out")
    ap.add_argument("--hash-check")
    args = ap.parse_args()

    raw = Path(args.file).read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    del raw
    name = Path(args.file).name
    pieces, head = split(data, name)
    del data
    print(f"{name}: {len(pieces)} pieces, {sum(len(p.body) for p in pieces) / 1e6:.0f} MB")

    best: dict[str, float] = {}
    for i in range(args.repeat):
        t_walk, n = cpu(walk, pieces, head, name)
        with ArrowTimer() as timer:
            t_full = parse_all(pieces, head, name)
        run = {"walk": t_walk, "parse_piece": t_full, "to_arrow": timer.seconds,
               "extraction": t_full - t_walk - timer.seconds}
        print(f"run {i + 1}: {n} records; " + ", ".join(f"{k} {v:.2f} s" for k, v in run.items()), flush=True)
        for k, v in run.items():
            best[k] = min(best.get(k, v), v)
    print("best:   " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items()))
    print(f"extraction + to_arrow: {best['extraction'] + best['to_arrow']:.2f} CPU s")

    if args.profile:
        cProfile.runctx("parse_all(pieces, head, name)", globals(), {"pieces": pieces, "head": head, "name": name},
                        args.profile)
        print(f"profile written to {args.profile}")

    if args.hash_out or args.hash_check:
        hasher = Hasher()
        parse_all(pieces, head, name, hasher)
        got = hasher.digests()
        if args.hash_out:
            Path(args.hash_out).write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
            print(f"hashes written to {args.hash_out}")
        if args.hash_check:
            want = json.loads(Path(args.hash_check).read_text())
            diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
            if diff:
                print(f"OUTPUT DIFFERS in: {', '.join(diff)}")
                return 1
            print(f"output identical to {args.hash_check} ({len(got)} hashes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
