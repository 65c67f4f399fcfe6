"""``python -m duckdb_openai.emulator``: serve the emulated API until SIGINT/SIGTERM.

Prints exactly one line on stdout when ready, the base URL (tools parse it), then on stderr a short
banner saying how to use it (``--quiet`` leaves the banner out), then serves::

    $ python -m duckdb_openai.emulator --port 0 --manifest runs.csv
    http://127.0.0.1:54321/v1
    duckdb-openai emulator: OpenAI's API over generated data (seed 7): the Assistants family (run steps,
    runs, messages, assistants, threads) and responses, conversations and stored chat completions
    To use it (duckdb-openai, the openai SDK):
      export OPENAI_BASE_URL=http://127.0.0.1:54321/v1
      export OPENAI_API_KEY=sk-any    # any non-empty key works (--api-key KEY to require one)
    ...

``main(argv)`` takes the arguments after the command name, so a wrapping command (the
package's ``duckdb-openai emulator ...``) can forward its argv unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .data import MANIFEST_COLUMNS, Dataset, DatasetConfig
from .family import Family
from .live import DEFAULT_STEP_SECONDS, LiveConfig, LiveRuns, write_manifest
from .organization import ORG_MANIFEST_COLUMNS, Organization
from .server import serve
from .settings import (
    ADMIN_KEY_ENV,
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_SEED,
    DEFAULT_SLOW_MS,
    EmulatorSettings,
)
from .successors import DEFAULT_DAYS

__all__ = ["banner", "build_parser", "main", "settings_from_args"]

#: What the manifest's columns hold, for the banner (a run log as a user of the API keeps one).
_MANIFEST_MEANING = {
    "thread_id": "the run's thread id",
    "run_id": "the run's id",
    "customer": "who it ran for",
    "app_version": "the app version that started it",
    "started_at": "when it started (ISO 8601, UTC)",
}
assert set(_MANIFEST_MEANING) == set(MANIFEST_COLUMNS)

_DEFAULTS = DatasetConfig()


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _moment(text: str) -> int:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be Unix seconds or an ISO 8601 time (2025-01-15T12:00:00Z), got {text!r}"
        ) from None
    return int((when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp())


def build_parser(prog: str | None = "python -m duckdb_openai.emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local server that speaks OpenAI's Assistants API (run steps, runs, messages, "
        "assistants, threads), its successors (responses, conversations, stored chat completions) and the "
        "organization's endpoints (usage, costs, audit logs, projects, users: an admin key's) over generated "
        "data.",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: %(default)s)")
    net.add_argument(
        "--port", type=int, default=0, metavar="N", help="0 picks a free port (default: %(default)s)"
    )
    net.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the only key the API endpoints accept; unset: ${API_KEY_ENV}, else any non-empty key",
    )
    net.add_argument(
        "--admin-key",
        metavar="KEY",
        help="the only key the organization endpoints (/v1/organization/...: usage, costs, audit logs, "
        f"projects, users) accept, and one the others refuse; unset: ${ADMIN_KEY_ENV}, else any "
        "non-empty key there",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help="seed of all data and faults (default: %(default)s)",
    )
    data.add_argument(
        "--threads",
        type=int,
        default=_DEFAULTS.threads,
        metavar="N",
        help="number of threads (default: %(default)s)",
    )
    data.add_argument(
        "--runs-per-thread",
        type=int,
        default=_DEFAULTS.runs_per_thread,
        metavar="N",
        help="runs in each thread (default: %(default)s)",
    )
    data.add_argument(
        "--mean-steps",
        type=_non_negative,
        default=_DEFAULTS.mean_steps,
        metavar="N",
        help="mean steps per run (default: %(default)s)",
    )
    data.add_argument(
        "--no-edge-runs",
        dest="edge_runs",
        action="store_false",
        help="leave out the runs with 0, 1, 100, 101, 200 and 10,000 steps",
    )
    data.add_argument(
        "--live",
        type=int,
        default=0,
        metavar="N",
        help="add N runs, in a thread of their own, that progress in real time (default: %(default)s)",
    )
    data.add_argument(
        "--live-step-seconds",
        type=_positive,
        default=DEFAULT_STEP_SECONDS,
        metavar="S",
        help="seconds between a live run's steps (default: %(default)s)",
    )
    data.add_argument(
        "--manifest",
        metavar="PATH",
        help="write the runs as CSV to PATH, then serve (with --live, a 'live' column marks the live runs)",
    )
    data.add_argument(
        "--threads-manifest",
        metavar="PATH",
        help="write the threads as CSV to PATH (thread_id, customer, created_at), then serve",
    )
    data.add_argument(
        "--responses-manifest",
        metavar="PATH",
        help="write the responses as CSV to PATH (response_id, conversation_id, customer, app_version, "
        "started_at), then serve",
    )
    data.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        metavar="N",
        help="days the responses, chat completions and the organization's usage span, from "
        "2024-10-01 (default: %(default)s)",
    )
    data.add_argument(
        "--now",
        type=_moment,
        metavar="WHEN",
        help="the organization's clock (Unix seconds or ISO 8601): usage, costs and audit logs are "
        "reported up to it, a partial bucket holds what came before it (default: the real clock)",
    )
    data.add_argument(
        "--org-manifest",
        metavar="PATH",
        help=f"write the organization's projects as CSV to PATH ({', '.join(ORG_MANIFEST_COLUMNS)}: "
        "the first and last UTC day with usage), then serve",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print only the base URL line, no banner on stderr"
    )
    knobs = parser.add_argument_group("behaviour")
    knobs.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        metavar="MS",
        help="added to every API response (default: %(default)s)",
    )
    knobs.add_argument("--rate-limit", type=_positive, metavar="RPS", help="requests per second, beyond: 429")
    knobs.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        metavar="P",
        help="share of requests given a random fault (default: %(default)s)",
    )
    knobs.add_argument(
        "--slow-ms",
        type=_non_negative,
        default=DEFAULT_SLOW_MS,
        metavar="MS",
        help="extra delay of a slow fault (default: %(default)s)",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        seed=args.seed,
        dataset=DatasetConfig(
            threads=args.threads,
            runs_per_thread=args.runs_per_thread,
            mean_steps=args.mean_steps,
            edge_runs=args.edge_runs,
        ),
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        fault_rate=args.fault_rate,
        slow_ms=args.slow_ms,
        api_key=args.api_key if args.api_key is not None else (os.environ.get(API_KEY_ENV) or None),
        live=LiveConfig(runs=args.live, step_seconds=args.live_step_seconds),
        admin_key=args.admin_key if args.admin_key is not None else (os.environ.get(ADMIN_KEY_ENV) or None),
        days=args.days,
        now=args.now,
    )


def banner(
    base_url: str,
    settings: EmulatorSettings,
    manifest: Path | None,
    runs: int,
    written: Sequence[tuple[str, Path]] = (),
) -> str:
    """How to use the running emulator: the two variables to export, the key rule, the manifest, and the
    other logs it wrote (`written`: what each is, and where)."""
    key = (
        "export OPENAI_API_KEY=...        # the key given with --api-key (/_emulator/ controls need it too)"
        if settings.api_key is not None
        else "export OPENAI_API_KEY=sk-any     # any non-empty key works (--api-key KEY requires one)"
    )
    admin = (
        "Organization endpoints (usage, costs, audit logs): the key given with --admin-key"
        if settings.admin_key is not None
        else "Organization endpoints (usage, costs, audit logs): any non-empty key (--admin-key KEY "
        "requires one)"
    )
    lines = [
        f"duckdb-openai emulator: OpenAI's API over generated data (seed {settings.seed}): the Assistants "
        "family (run steps, runs, messages, assistants, threads) and responses, conversations and stored "
        "chat completions",
        "To use it (duckdb-openai, the openai SDK):",
        f"  export OPENAI_BASE_URL={base_url}",
        f"  {key}",
        admin,
    ]
    if manifest is None:
        lines.append(f"No manifest: --manifest runs.csv writes its {runs:,} runs as CSV, one row each.")
    else:
        lines.append(f"Manifest: {manifest}, its {runs:,} runs as CSV, one row each, to join with run_steps:")
        lines += [f"  {name:<12} {_MANIFEST_MEANING[name]}" for name in MANIFEST_COLUMNS]
    lines += [f"{what}: {path}" for what, path in written]
    lines.append("Serving until Ctrl-C.")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the emulator; returns the exit code (0 after SIGINT/SIGTERM). ``prog`` names the command in
    usage and help (a wrapping command passes its own)."""
    parser = build_parser(prog) if prog is not None else build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    dataset = Dataset(settings.seed, settings.dataset)
    manifest = None
    if args.manifest is not None:
        if settings.live.runs:
            live = LiveRuns(settings.seed, settings.live, assistant_ids=dataset.assistant_ids)
            manifest = write_manifest(dataset, live, args.manifest).resolve()
        else:
            manifest = dataset.write_manifest(args.manifest).resolve()
    written: list[tuple[str, Path]] = []
    if args.threads_manifest is not None:
        Family(dataset).write_threads_manifest(args.threads_manifest)
        written.append(
            ("Threads manifest (thread_id, customer, created_at: a my_threads log)", args.threads_manifest)
        )
    organization = Organization(settings.seed, days=settings.days, now=settings.now)
    if args.responses_manifest is not None:
        organization.successors.write_manifest(args.responses_manifest)
        written.append(
            (
                "Responses manifest (response_id, conversation_id, ...: a my_calls log)",
                args.responses_manifest,
            )
        )
    if args.org_manifest is not None:
        organization.write_manifest(args.org_manifest)
        written.append((f"Projects manifest ({', '.join(ORG_MANIFEST_COLUMNS)})", args.org_manifest))

    def announce(base_url: str) -> None:
        # The URL line first and alone on stdout: tests and tools read it; the banner is for people.
        sys.stdout.write(base_url + "\n")
        sys.stdout.flush()
        if not args.quiet:
            resolved = [(what, Path(path).resolve()) for what, path in written]
            sys.stderr.write(banner(base_url, settings, manifest, len(dataset.runs), resolved) + "\n")
            sys.stderr.flush()

    try:
        serve(settings, host=args.host, port=args.port, on_ready=announce, organization=organization)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
