"""Evaluate a compiled steady-state throughput expression over a million configurations.

Builds the disaggregated throughput of Llama-3.1-8B on H100s, binds the
model, GPU, efficiency and workload values, compiles the rest (N_p, N_d,
TP, B_req, c, B_tok) once into a NumPy function, and evaluates it on
arrays of random configurations. Prints the build and compile times and
the best of five evaluation rates (target >= 1,000,000 configurations/s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

WORKLOAD = {"cache_hit_rate": 0.3, "avg_prompt_len": 1000.0, "avg_output_len": 200.0, "avg_prefix_match": 0.8,
            "prompt_len_scv": 0.25, "output_len_scv": 0.25, "arrival_rate": 20.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1_000_000, help="configurations per evaluation")
    parser.add_argument("--repeats", type=int, default=5, help="evaluations to time (the best is reported)")
    args = parser.parse_args()

    from sglsim import ConfigSymbols, SymbolicMetricBuilder, compile_expression

    symbols = ConfigSymbols()
    start = time.perf_counter()
    metrics = SymbolicMetricBuilder(symbols).build_all_expressions()
    build_s = time.perf_counter() - start

    values = {**symbols.values(model="llama-3.1-8b", gpu="h100"),
              **{getattr(symbols, name): v for name, v in WORKLOAD.items()}}
    start = time.perf_counter()
    compiled = compile_expression(metrics.throughput, bind_values=values)
    compile_s = time.perf_counter() - start

    rng = np.random.default_rng(0)
    n = args.configs
    columns = {"N_p": rng.integers(1, 17, n).astype(float), "N_d": rng.integers(1, 17, n).astype(float),
               "TP": rng.choice([1.0, 2.0, 4.0, 8.0], n), "B_req": rng.integers(1, 1025, n).astype(float),
               "c": rng.choice([512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0], n),
               "B_tok": rng.choice([4096.0, 8192.0, 16384.0, 32768.0], n)}
    missing = [name for name in compiled.names if name not in columns]
    if missing:
        raise SystemExit(f"the throughput expression has symbols this benchmark does not vary: {missing}")
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = compiled(**{name: columns[name] for name in compiled.names})
        best = min(best, time.perf_counter() - start)
    finite = np.isfinite(out).mean()
    print(f"build {build_s:.2f} s, compile {compile_s:.2f} s, arguments {compiled.names}")
    print(f"{n:,} configurations in {best * 1e3:.1f} ms (best of {args.repeats}): {n / best:,.0f} configurations/s; "
          f"{finite:.1%} finite, median {np.median(out):,.0f} output tokens/s")


if __name__ == "__main__":
    main()
