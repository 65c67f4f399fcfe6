"""`duckdb-openai sync`: the sync from a shell or a scheduler (mounted in `duckdb_openai/cli.py`).

::

    $ duckdb-openai sync                                        # into ./openai_history.duckdb
    $ duckdb-openai sync history.duckdb --table chat_completions --since 2025-01-01
    $ duckdb-openai sync --parquet history/ --log calls.csv     # responses and conversations of a log
    $ duckdb-openai sync lake --attach 'ducklake:metadata.ducklake' --log runs.csv
    $ duckdb-openai sync --dry-run                              # what would be read; nothing sent
    $ duckdb-openai sync --compact                              # and rewrite the file without free blocks

The summary goes to stdout. Warnings print one line each, `warning: ...`, on stderr
(`cli_lines.py`). Errors print one line, `error: ...`, on stderr with exit status 1 (2 for a
wrong command line); a target another sync holds exits with 75 (EX_TEMPFAIL: try again later), so a
scheduler can tell "busy" from "broken"; Ctrl-C exits with 130.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

from duckdb_openai.cli_lines import warnings_as_lines
from duckdb_openai.errors import DuckDBOpenAIError
from duckdb_openai.sync.lock import BusyError
from duckdb_openai.sync.run import DEFAULT_TARGET, sync
from duckdb_openai.sync.tables import TABLES

__all__ = ["EXIT_BUSY", "sync_command"]

#: The exit status when another sync holds the target (sysexits' EX_TEMPFAIL).
EXIT_BUSY = 75
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def sync_command(
    target: Annotated[
        str | None,
        typer.Argument(
            help=f"A DuckDB database file (default {DEFAULT_TARGET}), or with --attach the name to attach "
            "the catalog as.",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            "-t",
            help="A table to sync (repeat for several; default: every table the log allows). One of: "
            + ", ".join(t.name for t in TABLES),
            show_default=False,
        ),
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="Write a Parquet dataset into this folder instead.")
    ] = None,
    attach: Annotated[
        str | None,
        typer.Option(
            "--attach",
            help="ATTACH this (a DuckDB file, 'md:db', 'ducklake:meta.ducklake', a Postgres DSN with its "
            "extension) as TARGET and sync into that catalog.",
        ),
    ] = None,
    log: Annotated[
        str | None,
        typer.Option(
            "--log",
            help="The ids to read (response_id, conversation_id, thread_id, run_id columns): a file "
            "DuckDB reads, or a table of the target database.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="YYYY-MM-DD (UTC): bounds the first backfill, and the log's rows."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be read; send nothing, write nothing.")
    ] = False,
    compact: Annotated[
        bool | None,
        typer.Option(
            "--compact/--no-compact",
            help="Rewrite the DuckDB file without its free blocks after the sync (default: when they make "
            "up a fifth of it).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for another sync of the target.")
    ] = 0.0,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The API's base URL (default: $OPENAI_BASE_URL).")
    ] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Requests in flight at most.")
    ] = None,
    progress: Annotated[
        str, typer.Option("--progress", help="Progress bars: auto (in a terminal), on or off.")
    ] = "auto",
) -> None:
    """Sync OpenAI data into a DuckDB database or a Parquet dataset, reading only what is new."""
    settings: dict[str, Any] = {"progress": progress}
    if base_url is not None:
        settings["base_url"] = base_url
    if max_concurrency is not None:
        settings["max_concurrency"] = max_concurrency
    con = None
    try:
        if attach is not None:
            if target is None:
                raise typer.BadParameter("name the catalog: duckdb-openai sync NAME --attach ...")
            if parquet is not None:
                raise typer.BadParameter("--attach and --parquet are two targets; pick one")
            con = duckdb.connect()
            name = '"' + target.replace('"', '""') + '"'
            con.execute(f"ATTACH ? AS {name}", [attach])
        with warnings_as_lines():
            result = sync(
                target,
                table or None,
                parquet=parquet,
                con=con,
                log=log,
                since=since,
                dry_run=dry_run,
                compact=compact,
                wait=wait,
                **settings,
            )
    except BusyError as exc:
        raise _fail(str(exc), EXIT_BUSY) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (DuckDBOpenAIError, duckdb.Error) as exc:
        raise _fail(str(exc).strip().splitlines()[0]) from None
    finally:
        if con is not None:
            con.close()
    typer.echo(str(result))
