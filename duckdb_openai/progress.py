"""A progress bar for long fan-outs, shown only after a couple of seconds: tqdm's text bar on stderr in a
terminal, its widget in a Jupyter notebook (unless forced on or off).

`choose_display` decides where it goes: `'auto'` shows the widget inside an IPython kernel (Jupyter,
VS Code) when ipywidgets is installed (the `[notebook]` extra), the text bar inside a kernel without it
(the kernel renders stderr under the cell), and the text bar elsewhere only when stderr is a terminal,
so logs and pipes get none. `'on'` shows one everywhere, `'off'` nowhere.
"""

from __future__ import annotations

import importlib.util
import sys
from types import TracebackType
from typing import Any, Literal, TextIO

from tqdm import tqdm

from duckdb_openai.config import Progress
from duckdb_openai.http.requester import RequestStats

__all__ = ["SHOW_AFTER", "Display", "FanOutProgress", "choose_display"]

#: Seconds a fan-out runs before its bar appears, so short queries print nothing.
SHOW_AFTER = 2.0

#: Where a bar is drawn: tqdm's Jupyter widget, or its text bar on stderr.
Display = Literal["notebook", "text"]


def _kernel_shell() -> Any:
    """The running IPython shell, if IPython is loaded (never imported here: it is slow and optional)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    return get_ipython() if callable(get_ipython) else None


def _has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def choose_display(
    mode: Progress,
    *,
    stream: TextIO | None = None,
    shell: Any = None,
    widgets: bool | None = None,
) -> Display | None:
    """Where a bar for `mode` goes, or None for no bar.

    `stream` is where a text bar would go (default: stderr), `shell` the IPython shell (default: the
    running one, if any; a Jupyter kernel's has a `kernel`, a terminal IPython's does not), `widgets`
    whether ipywidgets is installed (default: looked up).
    """
    if mode == "off":
        return None
    in_kernel = getattr(shell if shell is not None else _kernel_shell(), "kernel", None) is not None
    if in_kernel:
        return "notebook" if (widgets if widgets is not None else _has_widgets()) else "text"
    if mode == "on":
        return "text"
    stream = stream if stream is not None else sys.stderr
    return "text" if stream is not None and stream.isatty() else None


class FanOutProgress:
    """Lists (or items) done of total, with their rows, requests and retries in the postfix; `units` names
    them as the resource declares (`("runs", "steps")` for run steps, `("threads", "messages")`...)."""

    def __init__(
        self, total: int, stats: RequestStats, mode: Progress, *, units: tuple[str, str] = ("lists", "rows")
    ) -> None:
        label, self._rows_label = units
        self.stats = stats
        self.steps = 0
        self._start_requests = stats.requests
        self._start_retries = stats.retries
        display = choose_display(mode)
        self._bar: tqdm[None] | None = None
        if display is not None:
            options: dict[str, Any] = {
                "total": total,
                "unit": label[:-1] if label.endswith("s") else label,
                "desc": label,
                "file": sys.stderr,
                "delay": 0.0 if mode == "on" else SHOW_AFTER,
                "dynamic_ncols": True,
                # Asked for explicitly: leave the final tally; shown automatically: clean up after.
                "leave": mode == "on",
            }
            if display == "notebook":
                from tqdm import notebook

                # None when tqdm found no usable ipywidgets; its widget bar would then raise.
                if getattr(notebook, "IProgress", None) is not None:
                    self._bar = notebook.tqdm(**options)
            if self._bar is None:
                self._bar = tqdm(**options)

    def advance(self, rows: int) -> None:
        self.steps += rows
        if self._bar is not None:
            postfix = {
                self._rows_label: self.steps,
                "requests": self.stats.requests - self._start_requests,
                "retries": self.stats.retries - self._start_retries,
            }
            self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(1)

    def __enter__(self) -> FanOutProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.close()
