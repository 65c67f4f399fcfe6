"""The emulator's knobs, in one frozen value shared by the CLI, the app and :class:`Emulator`.

>>> EmulatorSettings(seed=3, latency_ms=50).to_argv()[:4]
['--seed', '3', '--threads', '60']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import DatasetConfig
from .live import LiveConfig
from .successors import DEFAULT_DAYS

__all__ = [
    "ADMIN_KEY_ENV",
    "API_KEY_ENV",
    "DEFAULT_HOST",
    "DEFAULT_SEED",
    "DEFAULT_SLOW_MS",
    "EmulatorSettings",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_SEED = 7
DEFAULT_SLOW_MS = 1000.0
#: Where ``python -m duckdb_openai.emulator`` reads the accepted key when ``--api-key`` is
#: not given, so a parent process need not put a key on a command line.
API_KEY_ENV = "DUCKDB_OPENAI_EMULATOR_API_KEY"
#: The same for the admin key (``--admin-key``) of the organization endpoints.
ADMIN_KEY_ENV = "DUCKDB_OPENAI_EMULATOR_ADMIN_KEY"


@dataclass(frozen=True)
class EmulatorSettings:
    """How the emulated API behaves. ``api_key=None`` accepts any non-empty key; ``admin_key`` is the only
    key the organization endpoints accept (and the others refuse), None: any non-empty key there.
    ``days`` is how many days the Responses-era population (and the organization's usage) spans;
    ``now`` (Unix seconds) the organization's clock, None: the real one."""

    seed: int = DEFAULT_SEED
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    latency_ms: float = 0.0
    rate_limit: float | None = None
    fault_rate: float = 0.0
    slow_ms: float = DEFAULT_SLOW_MS
    api_key: str | None = field(default=None, repr=False)
    #: Runs that progress in real time (``--live N``; :mod:`.live`); none by default.
    live: LiveConfig = field(default_factory=LiveConfig)
    admin_key: str | None = field(default=None, repr=False)
    days: int = DEFAULT_DAYS
    now: int | None = None

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive (requests per second), got {self.rate_limit}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate}")
        if self.slow_ms < 0:
            raise ValueError(f"slow_ms must be >= 0, got {self.slow_ms}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must be non-empty (or None to accept any key)")
        if self.admin_key is not None and not self.admin_key:
            raise ValueError("admin_key must be non-empty (or None to accept any key)")
        if self.admin_key is not None and self.admin_key == self.api_key:
            raise ValueError("admin_key and api_key must differ: each opens only its own endpoints")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")

    def to_argv(self) -> list[str]:
        """CLI options that reproduce these settings, except the keys (pass them via API_KEY_ENV and
        ADMIN_KEY_ENV)."""
        argv = [
            "--seed",
            str(self.seed),
            "--threads",
            str(self.dataset.threads),
            "--runs-per-thread",
            str(self.dataset.runs_per_thread),
            "--mean-steps",
            repr(self.dataset.mean_steps),
            "--latency-ms",
            repr(self.latency_ms),
            "--fault-rate",
            repr(self.fault_rate),
            "--slow-ms",
            repr(self.slow_ms),
            "--days",
            str(self.days),
        ]
        if not self.dataset.edge_runs:
            argv.append("--no-edge-runs")
        if self.rate_limit is not None:
            argv += ["--rate-limit", repr(self.rate_limit)]
        if self.live.runs:
            argv += ["--live", str(self.live.runs), "--live-step-seconds", repr(self.live.step_seconds)]
        if self.now is not None:
            argv += ["--now", str(self.now)]
        return argv
