"""Size a disaggregated Llama-3.1-8B deployment on H100s from symbolic metrics.

Builds the steady-state metrics over the configuration symbols and prints
the throughput expression and the constraints, each as `expr > 0`. Then it
freezes the workload averages from a short simulation and searches a grid
of configurations for the Pareto front of throughput against cost per token.

Run: python examples/seed_snippet.py
"""

from __future__ import annotations

from sglsim import (ConfigSymbols, ConstraintBuilder, MultiObjectiveOptimizer, ObjectiveDirection, ObjectiveSpec,
                    SymbolicMetricBuilder, freeze, simulate)
from sglsim.symbolic.bridge import to_readable

ARRIVAL_RATE_REQ_S = 20.0
"""Load the deployment must sustain while meeting the TTFT target, requests/s."""


def main() -> None:
    symbols = ConfigSymbols()
    metrics = SymbolicMetricBuilder(symbols).build_all_expressions()

    constraints = ConstraintBuilder(symbols, metrics)
    constraints.add_memory_constraint(80 * 1024**3)  # 80GB H100
    constraints.add_ttft_slo(0.5)  # 500ms TTFT
    constraints.add_tpot_slo(0.05)  # 50ms TPOT
    constraints.add_total_gpu_constraint(16)

    # The full expressions run to tens of thousands of characters, because every law term is
    # kept; to_readable names their shared subexpressions x0, x1, ... so they can be read.
    print("metrics.throughput:\n" + to_readable(metrics.throughput, "throughput"))
    for constraint in constraints.get_all_constraints():
        print(f"{constraint.name}:\n" + to_readable(constraint.expr, constraint.name, " > 0"))

    # Workload averages measured by a short simulation of the same traffic.
    result = simulate({"model": "llama-3.1-8b", "gpu": "h100",
                       "workload": {"num_requests": 300, "rate": 10.0, "seed": 0,
                                    "input_len": {"dist": "lognormal", "mean": 1000, "cv": 0.5, "max": 8000},
                                    "output_len": {"dist": "lognormal", "mean": 200, "cv": 0.5, "max": 2000}}})
    frozen = freeze(result)
    values = {**symbols.values(model="llama-3.1-8b", gpu="h100"), **frozen.values(symbols),
              symbols.arrival_rate: ARRIVAL_RATE_REQ_S, symbols.dp_size: 1, symbols.ep_size: 1,
              symbols.batch_cap_tokens: 16384}
    print("\nfrozen workload:", {k.name: round(v, 4) for k, v in frozen.values(symbols).items()})

    objectives = [ObjectiveSpec("throughput", metrics.throughput, ObjectiveDirection.MAXIMIZE),
                  ObjectiveSpec("cost_per_token", metrics.cost_per_token, ObjectiveDirection.MINIMIZE)]
    optimizer = MultiObjectiveOptimizer(objectives, constraints=constraints.get_all_constraints(), bind=values)
    grid = {symbols.N_p: [1, 2, 3, 4], symbols.N_d: [1, 2, 3, 4, 6], symbols.tp_size: [1, 2, 4],
            symbols.batch_cap_requests: [32, 64, 128, 256], symbols.chunk_size: [2048, 4096, 8192]}
    found = optimizer.pareto_grid_search(grid)
    print(f"\n{found.num_feasible} of {found.nfev} configurations feasible; Pareto front:")
    for point in found.pareto:
        knobs = ", ".join(f"{name}={value:g}" for name, value in point.config.items())
        throughput, cost = point.objectives["throughput"], point.objectives["cost_per_token"]
        print(f"  {knobs}: {throughput:,.0f} tokens/s, {cost * 1e6:.3f} USD per million tokens")


if __name__ == "__main__":
    main()
