"""Rows built by column name: `row_builder` makes a table's `Table.row`, `inline_rows` compiles its calls away.

``TABLES["authors"].row(pmid=..., position=..., ...)`` returns the plain tuple, in the table's
extracted-column order, that `litmeta.schemas.batch.RowSink` takes; a missing or unknown column is a
TypeError naming ``authors.row`` and the column. Parsers build millions of rows, and a keyword call
costs a Python frame and the matching of its keywords per row: `inline_rows` recompiles a function
with each such call replaced by the tuple display it returns, checking the names once, at import.
"""

from __future__ import annotations
import __future__

import ast
import inspect
from collections.abc import Callable, Sequence
from keyword import iskeyword
from types import FunctionType
from typing import TypeVar
from weakref import WeakSet

F = TypeVar("F", bound=Callable)

_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag

_BUILDERS: WeakSet[Callable] = WeakSet()


def row_builder(table: str, columns: Sequence[str]) -> Callable[..., tuple]:
    """A keyword-only function returning its arguments as a plain tuple in ``columns`` order.

    Generated from source, as `collections.namedtuple` does, so that Python's own argument checks name a
    missing or unknown column. Its ``table`` and ``columns`` attributes say what it builds.
    """
    for name in columns:
        if not name.isidentifier() or iskeyword(name):
            raise ValueError(f"table {table}: column {name!r} cannot be passed by keyword")
    args = ", ".join(columns)
    namespace: dict = {}
    exec(f"def row({'*, ' + args if columns else ''}):\n    return ({args}{',' if columns else ''})\n", namespace)
    row = namespace["row"]
    row.__qualname__ = f"{table}.row"
    row.__doc__ = f"One {table} row: ({args})."
    row.table, row.columns = table, tuple(columns)
    _BUILDERS.add(row)
    return row


def is_row_builder(obj: object) -> bool:
    """Whether ``obj`` is a function made by `row_builder`."""
    return isinstance(obj, FunctionType) and obj in _BUILDERS


def inline_rows(fn: F) -> F:
    """``fn`` recompiled with each call of a row builder (`Table.row`, bound to a global name) replaced by
    the tuple display the call would return: the same rows, at the cost of the positional tuple.

    The call must name every column of the table by keyword, in the table's order (the display then
    evaluates the values in the order written); otherwise the decoration, i.e. the import, fails with a
    TypeError naming the line, the table and the column. Use it as the innermost decorator, on a function
    without closures. A function whose source is not at hand is returned as it is (keyword calls).
    """
    try:
        lines, first = inspect.getsourcelines(fn)
    except OSError:
        return fn
    code = fn.__code__
    if code.co_freevars:
        raise TypeError(f"inline_rows: {fn.__qualname__} uses variables of an enclosing scope")
    source = "".join(lines)
    # parsed at its place in the file (a method inside a block), so that lines and columns stay the file's
    nested = source[:1].isspace()
    tree = ast.parse("\n" * (first - 1 - nested) + ("if 1:\n" if nested else "") + source, code.co_filename)
    (fdef,) = tree.body[0].body if nested else tree.body
    if not fdef.decorator_list or _name(fdef.decorator_list[-1]) != "inline_rows":
        raise TypeError(f"inline_rows: must be the innermost decorator of {fn.__qualname__}")
    fdef.decorator_list = []
    _Inline(fn.__globals__, code.co_filename).visit(tree)
    namespace: dict = {}
    exec(compile(tree, code.co_filename, "exec", flags=code.co_flags & _FUTURE_FLAGS, dont_inherit=True),
         fn.__globals__, namespace)
    new = namespace[fn.__name__]
    new.__qualname__, new.__defaults__, new.__kwdefaults__ = fn.__qualname__, fn.__defaults__, fn.__kwdefaults__
    return new


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


class _Inline(ast.NodeTransformer):
    """Replaces calls of row builders named in ``scope`` by tuple displays, checking their keywords."""

    def __init__(self, scope: dict, filename: str) -> None:
        self.scope, self.filename = scope, filename

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        row = self.scope.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if not is_row_builder(row):
            return node
        columns = row.columns
        where = f"{self.filename}:{node.lineno}: {row.__qualname__}()"
        given = [k.arg for k in node.keywords]
        if node.args or None in given:
            raise TypeError(f"{where} takes every column by keyword, nothing positional or unpacked")
        missing = [c for c in columns if c not in given]
        if missing:
            raise TypeError(f"{where} missing {len(missing)} required keyword-only argument"
                            f"{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}")
        unknown = [k for k in given if k not in columns]
        if unknown:
            raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
        if tuple(given) != columns:
            raise TypeError(f"{where} names the columns out of the table's order ({', '.join(columns)})")
        return ast.copy_location(ast.Tuple([k.value for k in node.keywords], ast.Load()), node)
