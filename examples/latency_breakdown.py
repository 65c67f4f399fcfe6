"""How long each kind of step takes (completed_at minus created_at), as a table and a PNG chart.

    python examples/latency_breakdown.py --emulator [--png latency.png]

Only completed steps have both ends. The chart needs matplotlib (`pip install -e '.[plot]'` in a clone,
or `pip install matplotlib`); without it the table is printed and a note says how to get the chart.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from _session import STEP_KIND, parser, session

SQL = f"""
WITH timed AS (
    SELECT {STEP_KIND} AS kind,
           epoch(completed_at - created_at) AS seconds
    FROM steps
    WHERE status = 'completed'
)
SELECT kind,
       count(*) AS steps,
       quantile_cont(seconds, 0.5) AS p50_s,
       quantile_cont(seconds, 0.9) AS p90_s,
       max(seconds) AS max_s,
       sum(seconds) AS total_s
FROM timed
GROUP BY kind
ORDER BY total_s DESC, kind
"""


def query(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    return con.sql(SQL)


def save_chart(rows: list[tuple[str, int, float, float, float, float]], path: Path) -> Path:
    """A horizontal bar chart of p50 and p90 seconds per kind of step, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    kinds = [row[0] for row in rows]
    positions = range(len(kinds))
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(kinds) + 1.5))
    axes.barh([p + 0.2 for p in positions], [row[3] for row in rows], height=0.4, label="p90")
    axes.barh([p - 0.2 for p in positions], [row[2] for row in rows], height=0.4, label="p50")
    axes.set_yticks(list(positions), kinds)
    axes.invert_yaxis()
    axes.set_xlabel("seconds from created_at to completed_at")
    axes.set_title("Run step latency by kind (completed steps)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
    return path


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--png", type=Path, default=Path("latency_breakdown.png"), help="chart file")
    args = cli.parse_args()
    with session(args) as con:
        relation = query(con)
        relation.show()
        rows = relation.fetchall()
    try:
        print(f"chart: {save_chart(rows, args.png)}")
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "matplotlib":
            raise
        # The table is the answer; the chart is optional, so its missing extra is a note, not a failure.
        print(f"chart: none, matplotlib is not installed (pip install matplotlib) to draw {args.png}")


if __name__ == "__main__":
    main()
