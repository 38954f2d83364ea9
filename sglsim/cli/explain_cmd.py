"""`sglsim explain METRIC [SCENARIO.yaml]`: a metric's expression, value, frozen inputs and sensitivities."""

from __future__ import annotations

import argparse

STEADY_METRICS = ("ttft", "tpot", "e2e_latency", "throughput", "peak_memory", "compute_utilization",
                  "memory_bandwidth_utilization", "network_utilization", "cost_per_token", "power_consumption",
                  "goodput")


def add_explain_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .simulate_cmd import add_scenario_flags

    parser = subparsers.add_parser(
        "explain", help="print a metric as a SymPy expression, its value and its sensitivities",
        description="Simulate the scenario, then print METRIC as an expression of the configuration, its value "
                    "there, the workload averages frozen from the simulation and the symbols it is most sensitive "
                    "to. Steady-state metrics: " + ", ".join(STEADY_METRICS) + ". Trace metrics (--source trace): "
                    "makespan, throughput, mean_ttft, mean_tpot.")
    parser.add_argument("metric", help="metric name (see above)")
    parser.add_argument("scenario", nargs="?", help="scenario YAML file (default: the built-in demo; flags override)")
    parser.add_argument("--source", choices=("steady", "trace"), default="steady",
                        help="steady: the steady-state model (default); trace: the simulated schedule, exact")
    parser.add_argument("--format", choices=("text", "latex", "json", "python"), default="text",
                        help="how to print the expression (default text)")
    parser.add_argument("--top", type=int, default=8, help="number of sensitivities to print (default 8)")
    add_scenario_flags(parser)
    parser.set_defaults(run=run_explain)
    return parser


def run_explain(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..symbolic.explain import explain_metric
    from .simulate_cmd import scenario_from_args

    if args.top < 0:
        raise ConfigError(f"invalid --top {args.top}: expected a count >= 0")
    scenario = scenario_from_args(args)
    explanation = explain_metric(scenario, args.metric, source=args.source, top=args.top)
    print(explanation.render(args.format))
    return 0
