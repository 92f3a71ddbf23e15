"""The codebase's structure: one installed package, flows that only orchestrate, Prefect and uvicorn
used through their public interfaces only."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE_DIRS = ("flows", "extractors", "schemas", "warehouse")
SQL_START = re.compile(
    r"\s*(SELECT\b.*\bFROM\b|SELECT\s+\S+\s*$|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"(CREATE|DROP)\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?(TABLE|VIEW|INDEX|MACRO|SEQUENCE|SCHEMA|TYPE)|ALTER\s+TABLE|"
    r"WITH\s+\w+\s+AS\s*\(|BEGIN(\s+TRANSACTION)?\s*$|COMMIT\s*$|ROLLBACK\s*$|COPY\b.*\bTO\b|ATTACH\b|"
    r"DETACH\b|PRAGMA\b|SET\s+\w+\s*=|INSTALL\s+\w+\s*$|LOAD\s+\w+\s*$|CHECKPOINT\s*$)",
    re.IGNORECASE | re.DOTALL)
CONNECTING = {"connect", "session"}  # what opens a DuckDB connection (warehouse.db)


def package_sources() -> list[Path]:
    """Every Python file of the installed package: the root's own and those of its four folders."""
    files = sorted(REPO.glob("*.py"))
    for d in PACKAGE_DIRS:
        files += sorted((REPO / d).rglob("*.py"))
    return files


def _strings(node: ast.AST):
    """String constants, with each f-string's literal parts joined."""
    for n in ast.walk(node):
        if isinstance(n, ast.JoinedStr):
            yield n.lineno, "".join(v.value for v in n.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.lineno, n.value


def flows_violations(path: Path) -> list[str]:
    """Where a flows/ module runs SQL, opens a DuckDB connection or holds an SQL statement."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(REPO)
    out: list[str] = []
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in n.names] + ([n.module] if isinstance(n, ast.ImportFrom) and n.module else [])
            if any(m == "duckdb" or m.startswith("duckdb.") for m in names):
                out.append(f"{rel}:{n.lineno}: imports duckdb")
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("litmeta.warehouse"):
                bad = [a.name for a in n.names if a.name in CONNECTING]
                if bad:
                    out.append(f"{rel}:{n.lineno}: imports {', '.join(bad)} (opens a DuckDB connection)")
        elif isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in {"execute", "executemany", "sql"}:
                out.append(f"{rel}:{n.lineno}: calls {name}()")
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and id(n) in docstrings:
            continue
        if isinstance(n, (ast.Constant, ast.JoinedStr)):
            for line, text in _strings(n):
                if SQL_START.match(text):
                    out.append(f"{rel}:{line}: holds an SQL statement {text.strip()[:40]!r}")
    return sorted(set(out))


def test_flows_hold_no_sql_and_open_no_connection():
    found = [v for p in sorted((REPO / "flows").glob("*.py")) for v in flows_violations(p)]
    assert not found, "flows/ only orchestrates; move these into warehouse/:\n" + "\n".join(found)


def test_the_flows_check_finds_what_it_looks_for(tmp_path):
    bad = REPO / "flows" / "_structure_probe.py"
    bad.write_text('import duckdb\nfrom litmeta.warehouse.db import session\n'
                   'def f(con):\n    con.execute("UPDATE seeds SET depth = 1")\n    return f"SELECT {1} FROM x"\n')
    try:
        found = flows_violations(bad)
    finally:
        bad.unlink()
    assert [v.split(": ", 1)[1].split(" ")[0] for v in found] == ["imports", "imports", "calls", "holds", "holds"]
    assert all(v.startswith("flows/_structure_probe.py:") for v in found)


def _rooted_in(node: ast.AST, roots: set[str]) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) and node.id in roots else None


def library_internals_used(path: Path, libraries: tuple[str, ...] = ("prefect", "uvicorn")) -> list[str]:
    """Subclasses of, or assignments into, Prefect's or uvicorn's objects; Prefect's private variables."""
    text = path.read_text()
    tree = ast.parse(text, filename=str(path))
    rel = path.relative_to(REPO)
    out = [f"{rel}:{n}: names a private Prefect variable" for n, line in enumerate(text.splitlines(), 1)
           if "PREFECT__" in line]
    roots: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            roots |= {(a.asname or a.name).split(".")[0] for a in n.names if a.name.split(".")[0] in libraries}
        elif isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in libraries:
            roots |= {a.asname or a.name for a in n.names}
    for n in ast.walk(tree):
        if isinstance(n, ast.ClassDef):
            out += [f"{rel}:{n.lineno}: class {n.name} subclasses {ast.unparse(b)}" for b in n.bases
                    if _rooted_in(b, roots)]
        elif isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            out += [f"{rel}:{n.lineno}: assigns to {ast.unparse(t)}" for t in targets
                    if isinstance(t, ast.Attribute) and _rooted_in(t, roots)]
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setattr" and n.args:
            if _rooted_in(n.args[0], roots):
                out.append(f"{rel}:{n.lineno}: setattr on {ast.unparse(n.args[0])}")
    return out


def test_prefect_and_uvicorn_only_through_public_interfaces():
    found = [v for p in package_sources() for v in library_internals_used(p)]
    assert not found, "\n".join(found)


def test_the_internals_check_finds_what_it_looks_for(tmp_path):
    probe = REPO / "flows" / "_internals_probe.py"
    probe.write_text('import uvicorn\nfrom prefect import settings as s\nENV = "PREFECT__SERVER_FINAL"\n'
                     'class S(uvicorn.Server):\n    pass\ns.X = 1\nsetattr(uvicorn, "run", None)\n')
    try:
        found = library_internals_used(probe)
    finally:
        probe.unlink()
    assert len(found) == 4, found


def test_prefect_is_pinned_to_a_range():
    prefect = re.findall(r'^\s*"(prefect[<>=!~][^"]*)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert len(prefect) == 1 and "==" not in prefect[0] and "<" in prefect[0] and ">=" in prefect[0], prefect


def test_every_import_is_namespaced():
    """No module of the package, the tests or bench/ imports the folders by their bare names."""
    bare = re.compile(r"^\s*(from|import)\s+(flows|extractors|schemas|warehouse)\b", re.M)
    files = package_sources() + sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "bench").glob("*.py"))
    found = [f"{p.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}" for p in files
             for text in [p.read_text()] for m in bare.finditer(text)]
    assert not found, found


@pytest.mark.e2e
def test_the_wheel_installs_one_package_and_runs_the_demo(tmp_path):
    """A wheel of the checkout holds one top-level package, litmeta; installed alone in a fresh venv,
    `import flows` fails, `litmeta demo` works and `export --format png` right after it too."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                             "*.duckdb*", "out", ".pytest_cache", ".ruff_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("litmeta-*.whl")
    with zipfile.ZipFile(wheel) as z:
        top = {n.split("/")[0] for n in z.namelist() if not n.split("/")[0].endswith(".dist-info")}
        assert "litmeta/extractors/sandbox/snapshots/39047240/meta.json" in z.namelist()
    assert top == {"litmeta"}

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    fresh_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from this environment's site-packages (listed in a .pth: its own .pth
    # files, among them litmeta's editable install, are not processed there)
    Path(fresh_site, "litmeta_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PYTHON"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for name in ("flows", "schemas"):
        r = subprocess.run([str(py), "-c", f"import {name}"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert r.returncode == 1 and f"No module named '{name}'" in r.stderr, r.stderr
    where = subprocess.run([str(py), "-c", "import litmeta; print(litmeta.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, env=env, check=True).stdout
    assert where.startswith(fresh_site), where
    demo = subprocess.run([str(venv / "bin" / "litmeta"), "--db", str(tmp_path / "demo.duckdb"), "demo"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "Seed 39047240" in demo.stdout and "grants 31" in demo.stdout
    png = subprocess.run([str(venv / "bin" / "litmeta"), "--db", str(tmp_path / "demo.duckdb"), "export", "--format",
                          "png", "--out", str(tmp_path / "exports"), "--seed", "39047240"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert png.returncode == 0, png.stderr[-2000:]
    assert [p.stat().st_size > 10_000 for p in (tmp_path / "exports").rglob("*.png")] == [True]
