"""Shared fixtures: a real emulator over loopback.

``emulator`` is one server for the whole session (default dataset, seed 7, thread mode);
``emu`` is the same server with its request counters reset, and ``con`` a DuckDB connection
registered against it. ``emulator_factory`` makes
emulators with other knobs and stops every one of them at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from duckdb_openai.emulator import Emulator
from tests.helpers import connect

EmulatorFactory = Callable[..., Emulator]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=7, mode="thread") as emu:
        yield emu


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    made: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emu = Emulator(**kwargs)
        made.append(emu)
        return emu.start()

    yield make
    for emu in made:
        emu.stop()


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The session's emulator with its request counters reset, for tests that count requests."""
    emulator.reset()
    return emulator


@pytest.fixture
def con(emu: Emulator) -> Iterator[Any]:
    """A connection with duckdb_openai registered against `emu`, closed after the test."""
    connection, registration = connect(emu.base_url)
    yield connection
    registration.close()
    connection.close()
