"""A progress bar for long fan-outs: tqdm on stderr, shown only after a couple of seconds and only on a
terminal (unless forced on or off).
"""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm

from duckdb_openai.client import RequestStats
from duckdb_openai.config import Progress

__all__ = ["SHOW_AFTER", "FanOutProgress"]

#: Seconds a fan-out runs before its bar appears, so short queries print nothing.
SHOW_AFTER = 2.0


class FanOutProgress:
    """Runs done of total, with steps, requests and retries in the postfix."""

    def __init__(self, total: int, stats: RequestStats, mode: Progress, *, label: str = "runs") -> None:
        self.stats = stats
        self.steps = 0
        self._start_requests = stats.requests
        self._start_retries = stats.retries
        enabled = mode == "on" or (mode == "auto" and sys.stderr is not None and sys.stderr.isatty())
        self._bar: tqdm[None] | None = None
        if enabled:
            self._bar = tqdm(
                total=total,
                unit=label[:-1] if label.endswith("s") else label,
                desc=label,
                file=sys.stderr,
                delay=0.0 if mode == "on" else SHOW_AFTER,
                dynamic_ncols=True,
                # Asked for explicitly: leave the final tally; shown automatically: clean up after.
                leave=mode == "on",
            )

    def advance(self, rows: int) -> None:
        self.steps += rows
        if self._bar is not None:
            self._bar.set_postfix(
                steps=self.steps,
                requests=self.stats.requests - self._start_requests,
                retries=self.stats.retries - self._start_retries,
                refresh=False,
            )
            self._bar.update(1)

    def __enter__(self) -> FanOutProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.close()
