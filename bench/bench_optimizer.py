"""Time a reference sizing problem: the analytic search alone, and the whole `sglsim optimize` command.

Problem: Llama-3.1-70B BF16 on H100, 4000 input / 500 output tokens, at most
16 GPUs, 80 GB per GPU (0.9 margin), TTFT <= 0.5 s, TPOT <= 50 ms.

Prints three times. The first is the time to build and compile the symbolic
metrics, paid once per model and deployment shape. The second is the
analytic search over the compiled metrics (best of 5). The third is the
whole command's wall time with the default verification: top 5 and 3
Pareto points, 2,000 requests per run, rate search to 5 %, at most 3
re-freeze iterations.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import sglsim_command, time_command

PROBLEM_FLAGS = ["--model", "llama-3.1-70b", "--gpu", "h100", "--input-len", "4000", "--output-len", "500",
              "--gpus", "16", "--gpu-memory", "80GB", "--ttft", "0.5", "--tpot", "0.05"]


def analytic_times() -> tuple[float, float, int]:
    """(compile seconds, best search seconds of 5, configurations searched)."""
    from sglsim.config.scenario import validate_scenario
    from sglsim.optimizer.analytic import symbolic_models
    from sglsim.optimizer.planner import DeploymentPlanner, PlanSpec
    from sglsim.optimizer.rate_search import SLOSpec
    from sglsim.optimizer.workload import initial_frozen

    base = validate_scenario({"model": "llama-3.1-70b", "gpu": "h100",
                              "workload": {"input_len": 4000, "output_len": 500}})
    start = time.perf_counter()
    models = symbolic_models(base)
    spec = PlanSpec(gpus=16, slo=SLOSpec(0.5, 0.05), gpu_memory_bytes=80e9)
    planner = DeploymentPlanner(base, models, spec)
    compile_s = time.perf_counter() - start
    frozen = initial_frozen(base, 2000)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        result = planner.rank(frozen)
        times.append(time.perf_counter() - start)
    return compile_s, min(times), result.nfev


def main() -> int:
    compile_s, search_s, nfev = analytic_times()
    print(f"symbolic metrics built and compiled: {compile_s:.2f} s (once per model and deployment shape)")
    print(f"analytic search of the reference problem: {search_s:.3f} s for {nfev:,} configurations "
          f"(target <= 1 s): {'ok' if search_s <= 1.0 else 'MISSED'}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "best.json"
        best, median = time_command(sglsim_command() + ["optimize", *PROBLEM_FLAGS, "--output", str(out),
                                                        "--no-progress", "--quiet"], repeats=1)
        doc = json.loads(out.read_text())
    answer = doc["best"]
    config = " ".join(f"{k}={v:g}" for k, v in answer["config"].items())
    print(f"whole command with default verification: {best:.1f} s (target <= 60 s): "
          f"{'ok' if best <= 60 else 'MISSED'}")
    sim = answer["simulated"] or {}
    print(f"answer: {answer['deployment']} {config}; simulated {sim.get('throughput_tok_s_per_gpu', 0):.1f} "
          f"tok/s/GPU, p90 TTFT {sim.get('ttft_s', 0):.3f} s, p90 TPOT {sim.get('tpot_s', 0) * 1e3:.1f} ms; "
          f"{doc['verification']['simulations']} simulations, "
          f"{len(doc['verification']['iterations'])} ranking iterations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
