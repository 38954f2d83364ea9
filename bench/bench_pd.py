"""Wall time of the whole-trace P/D run and of the aggregated main job, as whole CLI commands.

Targets: the P/D run (3 prefill + 1 decode TP4 servers of Llama-3.1-70B on
H100, cache_aware) within 30 s, and the aggregated job (4 TP4 replicas)
within 10 s, each measured from process start to exit, trace reading
included. Prints one line per command; the exit status is 1 if a run fails
or misses its target.

Usage (from the repository root, with `../shared` beside it):
    .venv/bin/python bench/bench_pd.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO.parent / "shared" / "traces" / "mooncake_conversation.jsonl"
COMMON = ["simulate", "--trace", str(TRACE), "--model", "llama-3.1-70b", "--gpu", "h100", "--tp", "4",
          "--no-progress", "--quiet"]
JOBS = [
    ("P/D 3P1D cache_aware", ["--prefill-workers", "3", "--decode-workers", "1", "--router", "cache_aware"], 30.0),
    ("aggregated 4 x TP4", ["--replicas", "4"], 10.0),
]


def wall_time(argv: list[str]) -> float:
    """Seconds the `sglsim` command takes from process start to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sglsim.cli.main", *argv], cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the best time counts")
    args = parser.parse_args()
    if not TRACE.is_file():
        print(f"trace not found: {TRACE}", file=sys.stderr)
        return 1
    ok = True
    for name, flags, target_s in JOBS:
        best = min(wall_time(COMMON + flags) for _ in range(args.repeat))
        verdict = "ok" if best <= target_s else "SLOW"
        ok = ok and best <= target_s
        print(f"{name:<24} {best:6.2f} s  (target {target_s:.0f} s)  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
