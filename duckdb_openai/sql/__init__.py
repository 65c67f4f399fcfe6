"""The DuckDB binding: `register(con)` makes each resource's table macros (`register.py`) and its
StackQL-style catalog table with pushdown (`catalog.py`)."""

from duckdb_openai.sql.register import Registration, register

__all__ = ["Registration", "register"]
