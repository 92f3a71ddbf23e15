"""litmeta: PubMed and PMC metadata into a DuckDB warehouse, and the citation networks around seed articles.

The package is the repository's four folders, one per stage: `litmeta.extractors` (HTTP clients and
parsers: bytes in, Arrow batches out), `litmeta.schemas` (one definition of every table),
`litmeta.warehouse` (DuckDB: every SQL statement) and `litmeta.flows` (Prefect flows and the CLI,
which only wire the other three). `python -m litmeta` runs the CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("litmeta")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"
