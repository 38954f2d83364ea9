"""Wall time of the whole-trace P/D run and of the aggregated main job, as whole commands.

Targets on a 2-core machine: the P/D run (3 prefill + 1 decode TP4 servers
of Llama-3.1-70B on H100, cache_aware) within 30 s, and the aggregated job
(4 TP4 replicas, the default cache_aware router) within 10 s, each timed
from process start to exit, trace reading included. Exits with status 1
when a command misses its target.
"""

from __future__ import annotations

import argparse
import sys

from common import MOONCAKE, require, sglsim_command, time_command

COMMON = ["--model", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--no-progress", "--quiet"]
JOBS = [
    ("P/D 3 prefill + 1 decode, cache_aware",
     ["--prefill-workers", "3", "--decode-workers", "1", "--router", "cache_aware"], 30.0),
    ("aggregated 4 replicas, cache_aware", ["--replicas", "4"], 10.0),
    ("aggregated 4 replicas, round_robin", ["--replicas", "4", "--router", "round_robin"], 10.0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (best and median shown)")
    args = parser.parse_args()
    require(MOONCAKE)
    missed = 0
    for name, flags, target_s in JOBS:
        cmd = sglsim_command() + ["simulate", "--trace", str(MOONCAKE), *COMMON, *flags]
        best, median = time_command(cmd, args.repeats)
        missed += best > target_s
        print(f"{name} (12,031 Mooncake requests, TP4 llama-3.1-70b on h100): whole command "
              f"best {best:.2f} s, median {median:.2f} s (target <= {target_s:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
