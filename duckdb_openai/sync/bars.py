"""A progress bar per table while a sync runs (tqdm on stderr; a widget in Jupyter), following the
`progress` setting as the package's fan-out bar does (`duckdb_openai.progress.choose_display`).

Each bar counts the requests sent for its table, with the rows read so far; a watcher thread moves the
bar while a fan-out runs, since one fan-out may take minutes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

from duckdb_openai.config import Progress
from duckdb_openai.progress import choose_display

__all__ = ["Bars"]

#: Seconds between two updates of a bar while its table's requests run.
REFRESH_S = 0.25


class Bars:
    """One bar per table name, stacked in the order first used."""

    def __init__(self, mode: Progress, requests: Callable[[], int]) -> None:
        self._display = choose_display(mode)
        self._requests = requests
        self._bars: dict[str, Any] = {}
        self._rows: dict[str, int] = {}

    def _bar(self, name: str) -> Any:
        bar = self._bars.get(name)
        if bar is None and self._display is not None:
            options: dict[str, Any] = {
                "desc": name,
                "unit": " requests",
                "position": len(self._bars),
                "file": sys.stderr,
                "dynamic_ncols": True,
                "leave": True,
            }
            if self._display == "notebook":
                from tqdm import notebook

                if getattr(notebook, "IProgress", None) is not None:
                    bar = notebook.tqdm(**options)
            if bar is None:
                bar = tqdm(**options)
            self._bars[name] = bar
            self._rows[name] = 0
        return bar

    @contextmanager
    def requests_of(self, name: str) -> Iterator[None]:
        """Count the requests sent during the block for `name`'s bar."""
        bar = self._bar(name)
        if bar is None:
            yield
            return
        start = self._requests()
        base = bar.n
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(REFRESH_S):
                bar.n = base + self._requests() - start
                bar.refresh()

        watcher = threading.Thread(target=watch, name=f"duckdb-openai-sync-bar-{name}", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            bar.n = base + self._requests() - start
            bar.refresh()

    def rows(self, name: str, count: int) -> None:
        """Add `count` rows read to `name`'s bar."""
        bar = self._bar(name)
        if bar is not None:
            self._rows[name] += count
            bar.set_postfix(rows=self._rows[name], refresh=True)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
