"""A local server that speaks OpenAI's Assistants API (its GET endpoints), over generated data.

    >>> from duckdb_openai.emulator import Emulator, DatasetConfig
    >>> with Emulator(seed=7, dataset=DatasetConfig(threads=5)) as emu:  # doctest: +SKIP
    ...     emu.base_url
    'http://127.0.0.1:54321/v1'

Modules: :mod:`.data` (the ground truth: runs and steps), :mod:`.family` (assistants, threads,
runs and messages derived from them), :mod:`.successors` (responses, conversations, stored chat
completions), :mod:`.organization` (the organization: projects, users, keys, audit log, usage and
costs; :mod:`.organization_usage`, :mod:`.organization_routes`), :mod:`.app` (the ASGI app and its rules),
:mod:`.paging`, :mod:`.errors`, :mod:`.faults`, :mod:`.ratelimit`, :mod:`.stats`,
:mod:`.settings`, :mod:`.server` (thread / process / foreground), :mod:`.cli`, :mod:`.live` (runs
that progress in real time, ``--live N``).
"""

from __future__ import annotations

from .data import Dataset, DatasetConfig, RunInfo
from .family import Family
from .organization import Attribution, Organization
from .server import Emulator, EmulatorError
from .settings import EmulatorSettings

__all__ = [
    "Attribution",
    "Dataset",
    "DatasetConfig",
    "Emulator",
    "EmulatorError",
    "EmulatorSettings",
    "Family",
    "Organization",
    "RunInfo",
]
