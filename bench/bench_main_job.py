"""The main job: the whole Mooncake conversation trace on 4 x TP4 Llama-3.1-70B H100 servers.

Prints the whole-command wall time (start-up included; target <= 10 s on a
2-core machine) and the memory growth per simulated request measured with
tracemalloc in-process (target <= 2 KB per request).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import tracemalloc
from pathlib import Path

from common import MOONCAKE, require, sglsim_command, time_command

ARGS = ["--model", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--replicas", "4"]


MAIN_SCENARIO = {"model": "llama-3.1-70b", "gpu": "h100", "server": {"tp": 4}, "cluster": {"replicas": 4}}


def memory_per_request(scenario: dict) -> tuple[int, int, int]:
    """Return (requests, peak bytes, retained bytes) of one in-process run under tracemalloc."""
    from sglsim import simulate

    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    result = simulate(scenario)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = result.summary["num_completed"] + result.summary["num_rejected"]
    del result
    return n, peak - base, current - base


def synthetic(num_requests: int) -> dict:
    """A Poisson workload generated lazily, so memory grows only with what the run keeps."""
    return {"model": "llama-3.1-8b", "gpu": "h100", "workload": {
        "num_requests": num_requests, "rate": 20.0, "input_len": {"dist": "lognormal", "mean": 1000, "cv": 1.0},
        "output_len": {"dist": "lognormal", "mean": 200, "cv": 1.0}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    require(MOONCAKE)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = sglsim_command() + ["simulate", "--trace", str(MOONCAKE), *ARGS, "--output", str(out),
                                  "--no-progress", "--quiet"]
        best, median = time_command(cmd, args.repeats)
    print(f"main job (12,031 Mooncake requests, 4 x TP4 llama-3.1-70b on h100): "
          f"whole command best {best:.2f} s, median {median:.2f} s (target <= 10 s)")
    # Run a short warm-up first so that lazy imports and cost memos do not count as growth.
    memory_per_request({**MAIN_SCENARIO, "workload": {"trace": str(MOONCAKE), "num_requests": 200}})
    n, peak, retained = memory_per_request({**MAIN_SCENARIO, "workload": {"trace": str(MOONCAKE)}})
    print(f"main job under tracemalloc: peak {peak / 2**20:.1f} MiB = {peak / n / 1024:.2f} KB per request "
          f"(the whole trace file is parsed up front), retained {retained / n / 1024:.2f} KB per request")
    first_n, first_peak, _ = memory_per_request({**MAIN_SCENARIO, "workload": {"trace": str(MOONCAKE),
                                                                            "num_requests": 6000}})
    print(f"main job memory growth per simulated request (peak, first {first_n:,} -> all {n:,} requests): "
          f"{(peak - first_peak) / (n - first_n) / 1024:.2f} KB (target <= 2 KB)")
    n1, peak1, _ = memory_per_request(synthetic(10_000))
    n2, peak2, _ = memory_per_request(synthetic(50_000))
    growth = (peak2 - peak1) / (n2 - n1)
    print(f"memory growth per simulated request (peak, 10,000 -> 50,000 synthetic requests): "
          f"{growth / 1024:.2f} KB (target <= 2 KB)")


if __name__ == "__main__":
    main()
