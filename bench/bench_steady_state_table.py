"""Steady-state predictions against simulations at saturation (and TTFT against load).

Each configuration runs as a closed loop with twice as many clients as
decode-batch slots, so the deployment stays saturated. The script measures
output throughput and mean TPOT in the middle half of the run (ramp-up and
drain excluded), freezes the workload averages from the same run and
evaluates the steady-state model at the scenario's configuration. It prints
a Markdown table and the largest errors. A second table compares the mean
TTFT of open-loop Poisson runs at several loads with the model's queueing
terms.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

DEFAULT_LENGTHS = ((500, 1500), (100, 300))
# (label, model, gpu, server args, cluster, lengths)
CONFIGS: list[tuple[str, str, str, dict, dict, tuple]] = [
    ("8B H100 TP1 B32 c512", "llama-3.1-8b", "h100", {"max_running_requests": 32, "chunked_prefill_size": 512}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP1 B32 c8192", "llama-3.1-8b", "h100", {"max_running_requests": 32, "chunked_prefill_size": 8192}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP1 B128 c512", "llama-3.1-8b", "h100", {"max_running_requests": 128, "chunked_prefill_size": 512}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP1 B128 c2048", "llama-3.1-8b", "h100", {"max_running_requests": 128, "chunked_prefill_size": 2048}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP1 B256 c8192", "llama-3.1-8b", "h100", {"max_running_requests": 256, "chunked_prefill_size": 8192}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP2 B256 c4096", "llama-3.1-8b", "h100", {"tp": 2, "max_running_requests": 256, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("8B H100 TP1 B128 KV 60k", "llama-3.1-8b", "h100", {"max_running_requests": 128, "chunked_prefill_size": 2048, "kv_pool_tokens": 60000}, {}, DEFAULT_LENGTHS),
    ("70B H100 TP4 B32 c2048", "llama-3.1-70b", "h100", {"tp": 4, "max_running_requests": 32, "chunked_prefill_size": 2048}, {}, DEFAULT_LENGTHS),
    ("70B H100 TP4 B128 c8192", "llama-3.1-70b", "h100", {"tp": 4, "max_running_requests": 128, "chunked_prefill_size": 8192}, {}, DEFAULT_LENGTHS),
    ("70B FP8 H200 TP8 B128 c4096", "llama-3.1-70b", "h200", {"tp": 8, "quantization": "fp8", "max_running_requests": 128, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("70B B200 TP2 B64 c8192", "llama-3.1-70b", "b200", {"tp": 2, "max_running_requests": 64, "chunked_prefill_size": 8192}, {}, DEFAULT_LENGTHS),
    ("Qwen3-8B H200 TP1 B64 c4096", "qwen3-8b", "h200", {"max_running_requests": 64, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("Qwen3-32B H200 TP2 B64 c2048", "qwen3-32b", "h200", {"tp": 2, "max_running_requests": 64, "chunked_prefill_size": 2048}, {}, DEFAULT_LENGTHS),
    ("Mixtral H100 TP2 B32 c4096", "mixtral-8x7b", "h100", {"tp": 2, "max_running_requests": 32, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("Mixtral H100 TP2 B128 c4096", "mixtral-8x7b", "h100", {"tp": 2, "max_running_requests": 128, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("Qwen3-30B-A3B H100 TP2 EP2 B64", "qwen3-30b-a3b", "h100", {"tp": 2, "ep": 2, "max_running_requests": 64, "chunked_prefill_size": 4096}, {}, DEFAULT_LENGTHS),
    ("P/D 8B 1P1D B64 c8192", "llama-3.1-8b", "h100", {"max_running_requests": 64, "chunked_prefill_size": 8192}, {"prefill": 1, "decode": 1}, DEFAULT_LENGTHS),
    ("P/D 8B 2P1D B128 c8192", "llama-3.1-8b", "h100", {"max_running_requests": 128, "chunked_prefill_size": 8192}, {"prefill": 2, "decode": 1}, DEFAULT_LENGTHS),
    ("P/D 8B 1P2D B64 c4096", "llama-3.1-8b", "h100", {"max_running_requests": 64, "chunked_prefill_size": 4096}, {"prefill": 1, "decode": 2}, DEFAULT_LENGTHS),
    ("P/D 8B 1P1D B128 c2048 long prompts", "llama-3.1-8b", "h100", {"max_running_requests": 128, "chunked_prefill_size": 2048}, {"prefill": 1, "decode": 1}, ((2000, 4000), (50, 150))),
    ("P/D 70B TP4 1P1D B64 c8192", "llama-3.1-70b", "h100", {"tp": 4, "max_running_requests": 64, "chunked_prefill_size": 8192}, {"prefill": 1, "decode": 1}, DEFAULT_LENGTHS),
    ("P/D 70B TP4 2P1D B128 c4096", "llama-3.1-70b", "h100", {"tp": 4, "max_running_requests": 128, "chunked_prefill_size": 4096}, {"prefill": 2, "decode": 1}, DEFAULT_LENGTHS),
    ("P/D Mixtral TP2 1P1D B64 c4096", "mixtral-8x7b", "h100", {"tp": 2, "max_running_requests": 64, "chunked_prefill_size": 4096}, {"prefill": 1, "decode": 1}, DEFAULT_LENGTHS),
]


def scenario_dict(model: str, gpu: str, server: dict, cluster: dict, lengths: tuple, workload: dict) -> dict:
    (in_lo, in_hi), (out_lo, out_hi) = lengths
    data: dict[str, Any] = {"model": model, "gpu": gpu, "server": server,
                            "workload": {**workload, "seed": 1,
                                         "input_len": {"dist": "uniform", "min": in_lo, "max": in_hi},
                                         "output_len": {"dist": "uniform", "min": out_lo, "max": out_hi}}}
    if cluster:
        data["cluster"] = {"prefill": {"workers": cluster["prefill"]}, "decode": {"workers": cluster["decode"]}}
    return data


def window(result: Any) -> tuple[float, float]:
    """Output throughput and mean TPOT of the middle half of a run."""
    q = result.requests
    t0, t1 = q["arrived_at"].min(), q["finished_at"].max()
    a, b = t0 + 0.25 * (t1 - t0), t0 + 0.75 * (t1 - t0)
    done = (q["finished_at"] >= a) & (q["finished_at"] <= b)
    inside = (q["first_token_at"] >= a) & (q["finished_at"] <= b) & (q["output_len"] > 1)
    tpot = ((q["finished_at"] - q["first_token_at"]) / (q["output_len"] - 1))[inside]
    return float(q["output_len"][done].sum() / (b - a)), float(np.mean(tpot))


class Models:
    """Steady-state metrics per (model, deployment), built once."""

    def __init__(self) -> None:
        from sglsim import ConfigSymbols

        self.symbols = ConfigSymbols()
        self._built: dict[tuple[str, str], Any] = {}

    def metrics(self, model: str, deployment: str) -> Any:
        from sglsim import SymbolicMetricBuilder

        key = (model, deployment)
        if key not in self._built:
            self._built[key] = SymbolicMetricBuilder(self.symbols, model=model, deployment=deployment).build_all_expressions()
        return self._built[key]

    def evaluate(self, scenario: Any, result: Any, names: list[str]) -> list[float]:
        from sglsim import compile_expression, freeze
        from sglsim.symbolic.points import deployment_of, scenario_point

        metrics = self.metrics(scenario.model, deployment_of(scenario))
        point = scenario_point(self.symbols, scenario, freeze(result))
        return [float(compile_expression(metrics.get_expression(n), bind_values=point)()) for n in names]


def saturation_table(models: Models) -> list[tuple[float, float]]:
    from sglsim import simulate
    from sglsim.config.scenario import validate_scenario

    print("| configuration | throughput sim (tok/s) | model | error | TPOT sim (ms) | model | error | batch sim |")
    print("|---|---|---|---|---|---|---|---|")
    errors = []
    for label, model, gpu, server, cluster, lengths in CONFIGS:
        slots = server["max_running_requests"] * (cluster.get("decode", 1) if cluster else 1)
        data = scenario_dict(model, gpu, server, cluster, lengths,
                             {"num_requests": max(10 * slots, 400), "concurrency": 2 * slots})
        scenario = validate_scenario(data)
        result = simulate(scenario)
        throughput, tpot = window(result)
        model_throughput, model_tpot = models.evaluate(scenario, result, ["throughput", "tpot"])
        e_thr, e_tpot = model_throughput / throughput - 1, model_tpot / tpot - 1
        errors.append((e_thr, e_tpot))
        print(f"| {label} | {throughput:,.0f} | {model_throughput:,.0f} | {e_thr:+.1%} | {tpot * 1e3:.2f} | "
              f"{model_tpot * 1e3:.2f} | {e_tpot:+.1%} | {result.summary['decode_batch_size']['mean']:.1f} |",
              flush=True)
    return errors


def ttft_table(models: Models) -> None:
    from sglsim import simulate
    from sglsim.config.scenario import validate_scenario

    print("\n| configuration | load | TTFT sim (ms) | model | TPOT sim (ms) | model |")
    print("|---|---|---|---|---|---|")
    for label, cluster in (("8B H100 TP1 B64, co-located", {}), ("8B H100 TP1 B64, P/D 1P1D", {"prefill": 1, "decode": 1})):
        server = {"max_running_requests": 64, "chunked_prefill_size": 4096}
        saturated = validate_scenario(scenario_dict("llama-3.1-8b", "h100", server, cluster, DEFAULT_LENGTHS,
                                                    {"num_requests": 640, "concurrency": 128}))
        capacity = models.evaluate(saturated, simulate(saturated), ["request_rate"])[0]
        for load in (0.3, 0.6, 0.8, 0.9):
            scenario = validate_scenario(scenario_dict("llama-3.1-8b", "h100", server, cluster, DEFAULT_LENGTHS,
                                                       {"num_requests": 3000, "rate": load * capacity}))
            result = simulate(scenario)
            ttft, tpot = models.evaluate(scenario, result, ["ttft", "tpot"])
            print(f"| {label} | {load:.0%} | {result.summary['ttft_s']['mean'] * 1e3:.1f} | {ttft * 1e3:.1f} | "
                  f"{result.summary['tpot_s']['mean'] * 1e3:.2f} | {tpot * 1e3:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ttft", action="store_true", help="print the saturation table only")
    args = parser.parse_args()
    start = time.perf_counter()
    models = Models()
    errors = saturation_table(models)
    worst_thr = max(abs(e[0]) for e in errors)
    worst_tpot = max(abs(e[1]) for e in errors)
    print(f"\n{len(errors)} configurations; largest error: throughput {worst_thr:.1%}, TPOT {worst_tpot:.1%}")
    if not args.skip_ttft:
        ttft_table(models)
    print(f"\n(run time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
