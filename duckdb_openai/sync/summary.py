"""What a sync did, per table: rows new, updated (changed) and unchanged, rows removed from re-read
buckets, and requests sent; printed at the end of a sync and returned by `sync()`.

>>> result = SyncResult("the DuckDB database h.duckdb")
>>> result.table("chat_completions").counts.new = 250
>>> result.table("chat_completions").requests = 3
>>> print(result)  # doctest: +NORMALIZE_WHITESPACE
synced the DuckDB database h.duckdb
table              new  updated  unchanged  requests
chat_completions   250        0          0         3
total              250        0          0         3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duckdb_openai.sync.upsert import Counts

__all__ = ["SyncResult", "TableSummary"]


@dataclass
class TableSummary:
    """One table's figures, and notes (ids the API no longer has, columns added)."""

    name: str
    counts: Counts = field(default_factory=Counts)
    requests: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class SyncResult:
    """The summary of one sync (or, with `dry_run`, its plan: `plan` says what would be fetched)."""

    target: str
    tables: dict[str, TableSummary] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, name: str) -> TableSummary:
        if name not in self.tables:
            self.tables[name] = TableSummary(name)
        return self.tables[name]

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.tables.values())

    @property
    def rows_written(self) -> int:
        """Rows inserted, replaced or removed, over every table."""
        return sum(t.counts.written for t in self.tables.values())

    def __str__(self) -> str:
        if self.dry_run:
            lines = [f"dry run: nothing sent, nothing written; a sync into {self.target} would read:"]
            lines += [f"  {line}" for line in self.plan]
            lines += [f"note: {note}" for note in self.notes]
            return "\n".join(lines)
        removed = any(t.counts.removed for t in self.tables.values())
        header = ["table", "new", "updated", "unchanged", *(["removed"] if removed else []), "requests"]
        rows = []
        total = Counts()
        for t in self.tables.values():
            total += t.counts
            rows.append(_row(t.name, t.counts, t.requests, removed))
        rows.append(_row("total", total, self.requests, removed))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [f"synced {self.target}" + (f" in {self.seconds:.1f} s" if self.seconds else "")]
        for r in [header, *rows]:
            cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
        for t in self.tables.values():
            lines += [f"{t.name}: {note}" for note in t.notes]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _row(name: str, counts: Counts, requests: int, removed: bool) -> list[str]:
    values = [counts.new, counts.updated, counts.unchanged, *([counts.removed] if removed else []), requests]
    return [name, *(str(v) for v in values)]
