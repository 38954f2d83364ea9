"""Helpers for the benchmark scripts: locating shared data and timing whole commands."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MOONCAKE = SHARED / "traces" / "mooncake_conversation.jsonl"
VIDUR_CSV = SHARED / "anchors" / "vidur" / "splitwise_conv.csv"


def sglsim_command() -> list[str]:
    """The installed `sglsim` entry point next to this interpreter, else `python -m`."""
    exe = Path(sys.executable).with_name("sglsim")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("sglsim")
    return [found] if found else [sys.executable, "-m", "sglsim.cli.main"]


def time_command(args: list[str], repeats: int = 3) -> tuple[float, float]:
    """Run a command `repeats` times; return (best, median) wall seconds. Raises on failure."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr}")
    return min(times), statistics.median(times)


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"shared data not found: {path}")
    return path
