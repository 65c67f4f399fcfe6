"""`make demo`: start the bundled emulator with a run manifest, run the quickstart against it, stop.

Needs no key and no network: the emulator serves generated run steps on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from duckdb_openai.emulator import Emulator

HERE = Path(__file__).resolve().parent


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch, Emulator(seed=7, mode="process") as emu:
        manifest = emu.dataset.write_manifest(Path(scratch) / "runs.csv")
        print(f"emulator at {emu.base_url}; manifest of {len(emu.dataset.runs)} runs at {manifest}\n")
        env = dict(os.environ, OPENAI_API_KEY="sk-demo", OPENAI_BASE_URL=emu.base_url)
        return subprocess.call([sys.executable, str(HERE / "quickstart.py"), str(manifest)], env=env)


if __name__ == "__main__":
    sys.exit(main())
