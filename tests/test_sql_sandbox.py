"""`litmeta sql` reads the warehouse and nothing else: no files, no ATTACH, no extensions, no configuration."""

from __future__ import annotations

import pytest

from litmeta.errors import UsageError
from litmeta.flows.cli import main
from litmeta.warehouse.db import connect
from litmeta.warehouse.queries import run_sql


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    connect(path).close()
    return str(path)


REFUSED = {
    "COPY TO a file": "COPY (SELECT 42) TO '{out}'",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_parquet": "SELECT * FROM read_parquet('{out}')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "ATTACH": "ATTACH '{out}.duckdb' AS other",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "SET": "SET threads = 1",
    "SET external access": "SET enable_external_access = true",
    "PRAGMA": "PRAGMA threads = 1",
    "EXPORT DATABASE": "EXPORT DATABASE '{out}.dir'",
}


@pytest.mark.parametrize("what", list(REFUSED))
def test_sql_refuses_what_reaches_outside_the_warehouse(db, tmp_path, what):
    out = tmp_path / "outside.csv"
    with pytest.raises(UsageError) as exc:
        run_sql(db, REFUSED[what].format(out=out))
    assert "\n" not in str(exc.value)
    assert not out.exists() and not (tmp_path / "outside.csv.duckdb").exists()


def test_allow_files_lets_file_functions_work(db, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("a,b\n1,2\n")
    assert run_sql(db, f"SELECT a + b AS s FROM read_csv('{data}')", allow_files=True) == (["s"], [(3,)])
    out = tmp_path / "out.csv"
    run_sql(db, f"COPY (SELECT 42 AS answer) TO '{out}'", allow_files=True)
    assert out.read_text().split() == ["answer", "42"]
    with pytest.raises(UsageError):  # the configuration stays locked
        run_sql(db, "SET threads = 1", allow_files=True)
    with pytest.raises(UsageError):  # and the warehouse read-only
        run_sql(db, "DROP TABLE articles", allow_files=True)


def test_the_cli_refuses_in_one_line_with_exit_2(db, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["--db", db, "sql", f"COPY (SELECT 42) TO '{out}'"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reads the warehouse only" in err[0] and "--allow-files" in err[0]
    assert not out.exists()
    assert main(["--db", db, "sql", "--allow-files", f"COPY (SELECT 42) TO '{out}'"]) == 0
    assert out.exists()
