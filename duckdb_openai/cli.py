"""`duckdb-openai`: run SQL over OpenAI API data from a shell, and serve the local emulator.

The tables are the package's: the Assistants family (run steps, runs, messages, assistants, threads) and
what replaced it, responses, conversations and stored chat completions.

::

    $ export OPENAI_API_KEY=sk-...
    $ duckdb-openai query "SELECT id, status FROM openai.assistants.run_steps
    >     WHERE thread_id = 'thread_abc123' AND run_id = 'run_abc123'"
    $ duckdb-openai query --format csv "SELECT * FROM run_steps('thread_abc123', 'run_abc123')" > steps.csv
    $ duckdb-openai query --format parquet --output steps.parquet "SELECT * FROM run_steps(...)"
    $ duckdb-openai query --database runs.duckdb \\
    >     "SELECT r.customer, s.* FROM my_runs r, run_steps(r.thread_id, r.run_id) s"
    $ duckdb-openai emulator --port 8000        # the same as python -m duckdb_openai.emulator
    $ duckdb-openai cache info                  # entries, runs, bytes and location of the disk cache
    $ duckdb-openai cache clear

`query` opens DuckDB (in memory, or `--database FILE` so the SQL can join that file's tables), registers
the package on it (key and base URL from OPENAI_API_KEY, OPENAI_BASE_URL and the other variables
`register` reads; `--base-url` overrides) and runs the SQL; several statements separated by `;` run in
order and the last one's result is written. Formats:

- `table` (default): DuckDB's box rendering, as in the duckdb shell: long results show their first and
  last rows (`--max-rows` shows more); for every row use another format.
- `csv`: DuckDB's CSV writer (COPY ... FORMAT csv) with a header; nested values (STRUCT, LIST, MAP)
  as JSON text, which any CSV reader can hand to a JSON parser.
- `json`: newline-delimited JSON, one object per row (COPY ... FORMAT json), not one array: nested
  values stay nested, and a stream of lines suits `jq` and large results.
- `parquet`: DuckDB's Parquet writer; needs `--output`.

With `--output FILE` the result is written to a new file beside FILE, which replaces FILE only once the
whole result is written: a query that fails leaves an existing FILE as it was. An output that is the
database (`--database`, under any spelling or through a symlink) is refused. Without `--output`, csv and
json are written by DuckDB to a temporary file that is then copied to stdout, so a shell's `>>` appends
rather than DuckDB truncating what stdout points at.

`cache info` and `cache clear` act on the cache directory (`--cache-dir`, else
$DUCKDB_OPENAI_CACHE_DIR); `query --cache-dir DIR` keeps its cache there (the `cache_dir` setting), as it
does in $DUCKDB_OPENAI_CACHE_DIR when that is set, else in memory for the one query.

Errors print one line, `error: ...`, on stderr: exit status 1, or 2 for a wrong command line. A call
of the package's table functions with an argument they do not take (`sortt := 'desc'`) names the
closest parameter. Warnings (rows skipped under `on_error := 'skip'`, a retried connection)
print one line each, `warning: ...`, on stderr (`cli_lines.py`). Ctrl-C cancels the query's requests
and prints `interrupted`: exit status 130, as shells report SIGINT.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

from duckdb_openai._version import __version__
from duckdb_openai.cli_lines import warnings_as_lines
from duckdb_openai.config import ENV_CACHE_DIR
from duckdb_openai.engine.cache_store import clear_folder, folder_info
from duckdb_openai.engine.runtime import interrupted
from duckdb_openai.errors import DuckDBOpenAIError
from duckdb_openai.sql.register import register
from duckdb_openai.sync.cli import sync_command

__all__ = ["ABOUT", "Format", "app", "macro_hint", "main", "one_line"]

#: The name the query's result is registered under while it is written.
RESULT_VIEW = "__duckdb_openai_cli_result"

#: The exit status after Ctrl-C: 128 + SIGINT, what a shell reports for a process SIGINT ended.
EXIT_INTERRUPTED = 130
#: The exit status of a wrong command line (click's own).
EXIT_USAGE = 2

#: What the package makes a table of, for the help texts.
ABOUT = (
    "OpenAI API data as typed DuckDB tables: the Assistants family (run steps, runs, messages, "
    "assistants, threads) and responses, conversations and stored chat completions."
)

app = typer.Typer(
    name="duckdb-openai",
    help=f"{ABOUT} Run SQL over the API, or serve the local emulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


#: The help text of --format.
_FORMAT_HELP = (
    "How to write the result: table (DuckDB's box rendering), csv (a header, nested values as JSON text), "
    "json (newline-delimited: one JSON object per line, not an array), parquet (needs --output)."
)
#: DuckDB type ids whose values CSV writes as JSON text.
_NESTED = frozenset({"struct", "list", "map", "array", "union"})

#: COPY options of each file format.
_COPY_OPTIONS = {
    Format.csv: "FORMAT csv, HEADER true",
    Format.json: "FORMAT json",
    Format.parquet: "FORMAT parquet",
}

# DuckDB wraps an exception raised in Python code it called: keep the exception's own words.
_WRAPPERS = (
    re.compile(r"^Invalid Input Error: (?:exporting|reading) (?:a |the )?stream .*? failed: (?:Invalid: )?"),
    re.compile(r"^Invalid Input Error: Python exception occurred while executing the UDF: "),
)


def one_line(error: BaseException) -> str:
    """The error's message on one line, without the wrapping DuckDB adds around a Python exception."""
    text = str(error).strip() or type(error).__name__
    text = text.split(". Detail: Python exception:", 1)[0]
    text = text.splitlines()[0] if text else text
    for wrapper in _WRAPPERS:
        text = wrapper.sub("", text)
    return text


def _version(value: bool) -> None:
    if value:
        typer.echo(f"duckdb-openai {__version__} (duckdb {duckdb.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """OpenAI API data as typed DuckDB tables: the Assistants family and responses, conversations and
    stored chat completions."""


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(relation: duckdb.DuckDBPyRelation, fmt: Format) -> str:
    """The select list that writes `relation` in `fmt`: for CSV, nested values as JSON text (DuckDB's own
    text for a STRUCT, `{'a': 1}`, is no format a CSV reader can parse further)."""
    if fmt is not Format.csv:
        return "*"
    columns = []
    for name, kind in zip(relation.columns, relation.types, strict=True):
        quoted = _identifier(name)
        columns.append(f"to_json({quoted}) AS {quoted}" if kind.id in _NESTED else quoted)
    return ", ".join(columns) or "*"


def _copy(con: duckdb.DuckDBPyConnection, fmt: Format, columns: str, target: Path) -> None:
    query = f"SELECT {columns} FROM {RESULT_VIEW}"
    con.execute(f"COPY ({query}) TO {_sql_text(str(target))} ({_COPY_OPTIONS[fmt]})")


@contextlib.contextmanager
def _staged(output: Path) -> Iterator[Path]:
    """A new file beside `output` for the result, which replaces `output` only when the block succeeds.

    A query fails while it streams, after the first rows were written: writing `output` in place would
    leave it emptied or cut. Through a symlink the file it points at is replaced and the link kept; an
    existing file's permissions carry over.

    >>> with _staged(Path("steps.csv")) as path:  # doctest: +SKIP
    ...     path.write_text("id")                  # steps.csv is replaced only now
    """
    target = output.resolve()
    staged = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield staged
        if target.exists():
            shutil.copymode(target, staged)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two spellings name one file: through symlinks, `..`, a relative path, or a hard link."""
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_output(output: Path | None, database: Path | None) -> None:
    """Refuse an output that is an input: writing the result over the database would destroy it."""
    if output is None or database is None:
        return
    for name in (database, Path(f"{database}.wal")):
        if _same_file(output, name):
            what = "the database" if name == database else "the database's write-ahead log"
            raise _fail(
                f"--output {output} is {what} (--database {database}): the result would destroy it; "
                "write the result to another file",
                EXIT_USAGE,
            )


def _write(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    fmt: Format,
    output: Path | None,
    max_rows: int | None,
) -> None:
    if fmt is Format.table:
        if output is None:
            relation.show(max_rows=max_rows)
            return
        with (
            _staged(output) as staged,
            staged.open("x", encoding="utf-8") as handle,
            contextlib.redirect_stdout(handle),
        ):
            relation.show(max_rows=max_rows)
        return
    columns = _columns(relation, fmt)
    con.register(RESULT_VIEW, relation)
    try:
        if output is not None:
            with _staged(output) as staged:
                _copy(con, fmt, columns, staged)
            return
        with tempfile.TemporaryDirectory(prefix="duckdb-openai-") as folder:
            staged = Path(folder) / f"result.{fmt.value}"
            _copy(con, fmt, columns, staged)
            sys.stdout.flush()
            with staged.open("rb") as source:
                shutil.copyfileobj(source, sys.stdout.buffer)
            sys.stdout.flush()
    finally:
        con.unregister(RESULT_VIEW)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


#: DuckDB's words when the arguments of a call match no macro of that name.
_MACRO_MISMATCH = re.compile(
    r"Macro (\w+)\(\) does not support the supplied arguments\.?"
    r"(?: You might need to add explicit type casts\.)?"
)
#: A named argument in SQL text: `name := value`.
_NAMED_ARGUMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*:=")


def macro_hint(con: duckdb.DuckDBPyConnection, sql: str, message: str, macros: Sequence[str]) -> str:
    """`message` (DuckDB's one line) with the parameters of the package's macro it names, when DuckDB
    reports that the macro does not take the supplied arguments: a misspelled `name :=` is named with the
    closest parameter. DuckDB lists the candidates on lines that one line leaves out.

    "Macro run_steps() does not support the supplied arguments" with `sortt := 'desc'` in the SQL becomes
    "... arguments: no parameter 'sortt' (did you mean 'sort'?); run_steps takes thread_id, run_id, sort,
    ...".
    """
    match = _MACRO_MISMATCH.search(message)
    if match is None or match.group(1) not in macros:
        return message
    macro = match.group(1)
    found = con.execute(
        "SELECT parameters FROM duckdb_functions() WHERE function_name = ? AND function_type = 'table_macro'",
        [macro],
    ).fetchall()
    parameters = list(dict.fromkeys(name for (names,) in found for name in names))
    known = {name.lower() for name in parameters}
    unknown = list(dict.fromkeys(n for n in _NAMED_ARGUMENT.findall(sql) if n.lower() not in known))
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), parameters, n=1, cutoff=0.6)
        hints.append(f"no parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    takes = f"{macro} takes {', '.join(parameters)}"
    head = message[: match.start()] + f"Macro {macro}() does not support the supplied arguments"
    return f"{head}: {'; '.join([*hints, takes])}{message[match.end() :]}"


def _interrupted() -> typer.Exit:
    typer.echo("interrupted", err=True)
    return typer.Exit(EXIT_INTERRUPTED)


class _Sigint:
    """Turns Ctrl-C into `con.interrupt()` at once, and remembers that it came.

    While DuckDB runs plain SQL the main thread never runs Python code, so a Python SIGINT handler (the
    package installs one to cancel requests) would wait for the query's end; but Python's C-level handler
    writes every signal to the wakeup fd at once, and a thread reading it interrupts the connection (which
    also cancels the package's in-flight requests). A Ctrl-C then surfaces in several forms
    (KeyboardInterrupt, a DuckDB error wrapping it, "Interrupted!"), so the flag, not the exception's
    type, tells an interruption from a failure. The handler is this command's only while it runs."""

    def __init__(self) -> None:
        self.seen = False

    def _note(self, signum: int, frame: object) -> None:
        # Cancel every in-flight request of this process, but raise nothing here: a KeyboardInterrupt
        # raised into whatever Python code runs (a generator's cleanup, say) only adds noise; the
        # interrupted query fails on its own and the flag tells why.
        self.seen = True
        interrupted(None)

    @contextlib.contextmanager
    def watching(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        # An ignored SIGINT (a background job) stays ignored; the wakeup fd is the main thread's to set.
        if (
            not callable(signal.getsignal(signal.SIGINT))
            or threading.current_thread() is not threading.main_thread()
        ):
            yield
            return
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        previous_handler = signal.signal(signal.SIGINT, self._note)

        def watch() -> None:
            while data := reader.recv(64):
                if signal.SIGINT in data:
                    self.seen = True
                    interrupted(None)  # every request in flight, the catalog form's too
                    con.interrupt()

        thread = threading.Thread(target=watch, name="duckdb-openai-cli-sigint", daemon=True)
        thread.start()
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            signal.set_wakeup_fd(previous)
            writer.close()  # ends the watcher's recv
            thread.join(timeout=5)
            reader.close()


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="The SQL; with several statements, the last one's result.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help=_FORMAT_HELP)] = Format.table,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (required for parquet); it is replaced only once the whole result is "
            "written, and never the database.",
        ),
    ] = None,
    database: Annotated[
        Path | None,
        typer.Option("--database", "-d", help="Open this DuckDB file so the SQL can use its tables."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The API's base URL (default: $OPENAI_BASE_URL).")
    ] = None,
    max_rows: Annotated[
        int | None, typer.Option("--max-rows", min=1, help="Rows the table format shows at most.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help=f"Keep the cache of finished runs' steps in this folder (default: ${ENV_CACHE_DIR}, else "
            "in memory for this query).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run SQL with the package's tables registered (run steps, runs, messages, assistants, threads,
    responses, conversations, chat completions), and write the result."""
    if fmt is Format.parquet and output is None:
        raise typer.BadParameter("the parquet format needs --output FILE", param_hint="--format")
    _check_output(output, database)
    try:
        con = duckdb.connect(str(database) if database is not None else ":memory:")
    except duckdb.Error as exc:
        raise _fail(one_line(exc)) from None
    registration = None
    sigint = _Sigint()
    try:
        if not sys.stdout.isatty():
            # DuckDB draws its progress bar on stdout: in a pipe or a file it would corrupt the result.
            con.execute("SET enable_progress_bar = false")
        settings: dict[str, Any] = {"base_url": base_url}
        if cache_dir is not None:
            settings["cache_dir"] = cache_dir
        registration = register(con, **settings)
        with sigint.watching(con), warnings_as_lines():
            relation = con.sql(sql)
            if relation is not None:
                _write(con, relation, fmt, output, max_rows)
        if sigint.seen:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise _interrupted() from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except Exception as exc:
        if sigint.seen:
            raise _interrupted() from None
        if isinstance(exc, duckdb.Error) and registration is not None:
            raise _fail(macro_hint(con, sql, one_line(exc), registration.macros)) from None
        if isinstance(exc, DuckDBOpenAIError | duckdb.Error):
            raise _fail(one_line(exc)) from None
        if isinstance(exc, OSError):
            raise _fail(str(exc)) from None  # [Errno 21] Is a directory: 'out.csv', say
        raise
    finally:
        if registration is not None:
            registration.close()
        con.close()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def emulator(ctx: typer.Context) -> None:
    """Serve the local emulator of the API (`duckdb-openai emulator --help` for its options)."""
    try:
        from duckdb_openai.emulator.cli import main as emulator_main
    except ImportError as exc:
        raise _fail(f"the emulator needs its extra: pip install 'duckdb-openai[emulator]' ({exc})") from None
    raise typer.Exit(emulator_main(list(ctx.args), prog="duckdb-openai emulator"))


# `duckdb-openai sync`: its own module (duckdb_openai/sync/cli.py).
app.command("sync")(sync_command)

cache_app = typer.Typer(
    name="cache",
    help="The disk cache of data that can no longer change (finished runs' steps).",
    no_args_is_help=True,
)
app.add_typer(cache_app)

_CACHE_DIR_OPTION = typer.Option(
    "--cache-dir", help=f"The cache directory (default: ${ENV_CACHE_DIR}).", show_default=False
)


def _cache_dir(given: str | None) -> Path:
    # A str, not a Path: Path("") is the working directory, and an empty value means no folder.
    if given:
        return Path(given)
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    raise _fail(
        f"no cache directory: pass --cache-dir DIR or set {ENV_CACHE_DIR} (without one, each client "
        "keeps its cache in memory, and it goes with the process)"
    )


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


@cache_app.command("info")
def cache_info(cache_dir: Annotated[str | None, _CACHE_DIR_OPTION] = None) -> None:
    """Print what the disk cache holds: entries, runs, bytes and its location."""
    info = folder_info(_cache_dir(cache_dir))
    typer.echo(f"location  {info.location}")
    typer.echo(f"entries   {info.entries}")
    typer.echo(f"runs      {info.runs} with steps kept, {info.finished} known finished")
    typer.echo(f"bytes     {info.bytes} ({_size(info.bytes)})")


@cache_app.command("clear")
def cache_clear(cache_dir: Annotated[str | None, _CACHE_DIR_OPTION] = None) -> None:
    """Remove the files the cache wrote in its directory (nothing else in it), and list what was left."""
    folder = _cache_dir(cache_dir)
    cleared = clear_folder(folder)
    typer.echo(f"cleared {folder} ({_size(cleared.freed)} freed)")
    if cleared.left:
        typer.echo(f"left {len(cleared.left)} files the cache did not write:")
        for path in cleared.left:
            typer.echo(f"  {path}")


def main() -> None:
    """The console script `duckdb-openai`."""
    try:
        app(prog_name="duckdb-openai")
    except KeyboardInterrupt:  # outside a command (click turns one inside into "Aborted!")
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
