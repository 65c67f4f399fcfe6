"""The predicates a catalog table applies itself: which DuckDB offers it accepts, what they state about
its columns, and the rows they select (applied again to every batch, so a server that ignores a
parameter cannot make the WHERE clause false).

A predicate arrives as a tree of `duckdb._sources.nodes` (`Binary`, `In`, `Col`, `Lit`, ...). Three
kinds of column are understood:

- `value` columns (text): `col = 'x'`, `col IN ('x', 'y')`, an AND of those, an OR of them over one
  column; a key, an id or text filter, the item column, an option column (`bucket_width`);
- `bool` columns: `col = true` (usage's `batch`);
- `time` columns: `col >= t`, `>`, `<`, `<=`, `=` and an AND of those (`BETWEEN`): a range, which
  becomes the request's time bounds (`start_time`, `end_time`; audit logs' `effective_at[gte]`).

Everything else (another column, `!=`, `LIKE`, a struct field, NOT, IS NULL, an OR across columns) is
declined and left to DuckDB above the scan.

>>> constraint = Constraint(values={"run_id": ("run_a", "run_b")})
>>> intersect(constraint, Constraint(values={"run_id": ("run_b",)})).values
{'run_id': ('run_b',)}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ColumnKind", "Constraint", "intersect", "row_mask", "translate"]

ColumnKind = Literal["value", "bool", "time"]
#: A bound on a time column: microseconds since the epoch, and whether the bound itself is included.
Bound = tuple[int, bool]
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
_COMPARE = {"=": pc.equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}
_TIME_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP")


@dataclass(frozen=True)
class Constraint:
    """What predicates state: per value column the values it may hold (in order, without repeats), per
    time column its lower and upper bounds, and whether they contradict each other (`empty`)."""

    values: dict[str, tuple[object, ...]] = field(default_factory=dict)
    lower: dict[str, Bound] = field(default_factory=dict)
    upper: dict[str, Bound] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        if any(not values for values in self.values.values()):
            return True
        for column, (low, low_in) in self.lower.items():
            if column in self.upper:
                high, high_in = self.upper[column]
                if low > high or (low == high and not (low_in and high_in)):
                    return True
        return False


def _tighter(a: Bound | None, b: Bound, *, lower: bool) -> Bound:
    if a is None:
        return b
    if a[0] == b[0]:
        return (a[0], a[1] and b[1])
    return max(a, b) if lower else min(a, b)


def intersect(a: Constraint, b: Constraint) -> Constraint:
    """Both constraints at once: a column in both may hold only values in both; bounds tighten."""
    values = dict(a.values)
    for column, allowed in b.values.items():
        if column in values:
            keep = set(allowed)
            values[column] = tuple(v for v in values[column] if v in keep)
        else:
            values[column] = allowed
    lower = dict(a.lower)
    for column, bound in b.lower.items():
        lower[column] = _tighter(lower.get(column), bound, lower=True)
    upper = dict(a.upper)
    for column, bound in b.upper.items():
        upper[column] = _tighter(upper.get(column), bound, lower=False)
    return Constraint(values, lower, upper)


def _literal(node: Any, nodes: Any, kind: ColumnKind) -> object | None:
    """The Python value of a literal a `kind` column can be compared with exactly, else None."""
    if not isinstance(node, nodes.Lit):
        return None
    if kind == "value":
        return node.value if node.type == "VARCHAR" and isinstance(node.value, str) else None
    if kind == "bool":
        return node.value if node.type == "BOOLEAN" and isinstance(node.value, bool) else None
    if node.type in _TIME_TYPES and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _column(node: Any, nodes: Any, columns: Mapping[str, ColumnKind]) -> str | None:
    if isinstance(node, nodes.Col) and len(node.parts) == 1 and node.parts[0] in columns:
        return str(node.parts[0])
    return None


def translate(node: Any, nodes: Any, columns: Mapping[str, ColumnKind]) -> Constraint | None:
    """What `node` states about `columns` (name -> kind), or None when it states anything else."""
    if isinstance(node, nodes.In):
        column = _column(node.operand, nodes, columns)
        if column is None or columns[column] == "time":
            return None
        literals = [_literal(v, nodes, columns[column]) for v in node.values]
        if not literals or any(v is None for v in literals):
            return None
        return Constraint(values={column: tuple(dict.fromkeys(literals))})
    if not isinstance(node, nodes.Binary):
        return None
    if node.op in ("AND", "OR"):
        left, right = translate(node.left, nodes, columns), translate(node.right, nodes, columns)
        if left is None or right is None:
            return None
        if node.op == "AND":
            return intersect(left, right)
        # An OR is exact only as a union of values of one column; across columns it is no product.
        if left.lower or left.upper or right.lower or right.upper:
            return None
        if len(left.values) != 1 or left.values.keys() != right.values.keys():
            return None
        [(column, values)] = left.values.items()
        return Constraint(values={column: tuple(dict.fromkeys([*values, *right.values[column]]))})
    op = node.op
    column, literal_node = _column(node.left, nodes, columns), node.right
    if column is None:
        column, literal_node, op = _column(node.right, nodes, columns), node.left, _FLIP.get(op, "")
    if column is None or op not in _COMPARE:
        return None
    kind = columns[column]
    value = _literal(literal_node, nodes, kind)
    if value is None:
        return None
    if kind != "time":
        return Constraint(values={column: (value,)}) if op == "=" else None
    assert isinstance(value, int)
    lower: dict[str, Bound] = {}
    upper: dict[str, Bound] = {}
    if op in ("=", ">=", ">"):
        lower[column] = (value, op != ">")
    if op in ("=", "<=", "<"):
        upper[column] = (value, op != "<")
    return Constraint(lower=lower, upper=upper)


def _scalar(node: Any, arrow_type: pa.DataType) -> pa.Scalar:
    return pa.scalar(node.value, arrow_type)


def row_mask(node: Any, nodes: Any, batch: pa.RecordBatch) -> pa.Array:
    """Which rows of `batch` satisfy `node`, one of the predicates `translate` understood (by DuckDB's
    semantics: NULL is not true)."""
    if isinstance(node, nodes.In):
        column = batch.column(node.operand.parts[0])
        values = pa.array([v.value for v in node.values], column.type)
        return pc.fill_null(pc.is_in(column, value_set=values), False)
    if node.op in ("AND", "OR"):
        left, right = row_mask(node.left, nodes, batch), row_mask(node.right, nodes, batch)
        return pc.and_(left, right) if node.op == "AND" else pc.or_(left, right)
    op, column_node, literal = node.op, node.left, node.right
    if not isinstance(column_node, nodes.Col):
        op, column_node, literal = _FLIP[op], node.right, node.left
    column = batch.column(column_node.parts[0])
    return pc.fill_null(_COMPARE[op](column, _scalar(literal, column.type)), False)
