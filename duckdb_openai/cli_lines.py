"""What the command line prints besides its result: each warning as one line, `warning: ...`, on
stderr, whether it comes from Python's `warnings` (rows skipped under `on_error := 'skip'`) or from the
package's logger (a retried connection, a cache folder set aside), not as Python's two lines with the
source line that raised it, nor as a bare logged message.

A program that configured logging itself (a handler on the root logger or on `duckdb_openai`) keeps
its own: the logger's records are left to it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import IO

import typer

__all__ = ["warning_line", "warnings_as_lines"]

_LOGGER = "duckdb_openai"


def warning_line(message: object) -> str:
    """`message` as the one line the command line prints."""
    return f"warning: {' '.join(str(message).split())}"


class _Lines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            typer.echo(warning_line(record.getMessage()), err=True)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Within the block, warnings (and the package's logged warnings) print as `warning: ...` lines."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: IO[str] | None = None,
        line: str | None = None,
    ) -> None:
        typer.echo(warning_line(message), err=True)

    logger = logging.getLogger(_LOGGER)
    handler: logging.Handler | None = None
    if not logger.handlers and not logging.getLogger().handlers:
        handler = _Lines(logging.WARNING)
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
