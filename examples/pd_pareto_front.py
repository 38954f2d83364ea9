"""Sweep N_p:N_d on the Mooncake trace and plot the Pareto front of throughput per GPU against p90 TTFT.

Every (N_p, N_d) pair with N_p + N_d <= `--max-servers` runs the first
`--num-requests` requests of the trace at its own timestamps (compressed by
`--time-scale`) on P/D pools of TP`--tp` servers. Runs go through the
optimizer's executor (a process pool) and results store (SQLite), so a
rerun, or a run that was interrupted, simulates only what is missing. The
front is computed by the optimizer's exact Pareto search over the simulated
points: more GPUs cut TTFT but serve the same trace, so throughput per GPU
falls; the front shows which splits are worth their GPUs.

The plot needs matplotlib: pip install 'sglsim[plot]' (without it the script
prints the table only).

Usage (from the repository root, with `../shared` beside it):
    .venv/bin/python examples/pd_pareto_front.py --plot pd_front.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sglsim.optimizer import DecisionSpace, ObjectiveDirection, ObjectiveSpec, Problem, optimize
from sglsim.optimizer.executors import make_executor
from sglsim.optimizer.rate_search import SLOSpec, fixed_check
from sglsim.optimizer.runner import SimulationRunner
from sglsim.optimizer.store import ResultStore

DEFAULT_TRACE = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "mooncake_conversation.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--model", default="llama-3.1-70b")
    parser.add_argument("--gpu", default="h100")
    parser.add_argument("--tp", type=int, default=4, help="TP of every server (default 4)")
    parser.add_argument("--max-servers", type=int, default=8, help="largest N_p + N_d (default 8)")
    parser.add_argument("--num-requests", type=int, default=2000, help="first requests of the trace (default 2000)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply the trace's timestamps (default 1: the trace's own load; 0.5 doubles it)")
    parser.add_argument("--store", default=None, help="SQLite results store (default: in memory)")
    parser.add_argument("--workers", type=int, default=None, help="parallel simulations (default: CPU cores)")
    parser.add_argument("--plot", type=Path, default=None, help="write the front as a PNG (needs matplotlib)")
    return parser.parse_args(argv)


def scenario(args: argparse.Namespace, n_p: int, n_d: int) -> dict:
    return {"model": args.model, "gpu": args.gpu, "server": {"tp": args.tp},
            "cluster": {"prefill": {"workers": n_p}, "decode": {"workers": n_d}},
            "workload": {"trace": str(args.trace), "num_requests": args.num_requests,
                         "time_scale": args.time_scale}}


def sweep(args: argparse.Namespace) -> dict[tuple[int, int], dict]:
    """Simulate every split; return figures by (N_p, N_d)."""
    pairs = [(n_p, n_d) for n_p in range(1, args.max_servers) for n_d in range(1, args.max_servers - n_p + 1)]
    executor = make_executor("local", args.workers)
    try:
        runner = SimulationRunner(executor, ResultStore(args.store))
        searches = {pair: fixed_check(scenario(args, *pair), SLOSpec()) for pair in pairs}
        results = runner.run(searches)
    finally:
        executor.shutdown()
    figures = {}
    for pair, result in results.items():
        record = result.record
        figures[pair] = {"gpus": record.num_gpus, "tok_s_per_gpu": record.output_tok_s_per_gpu,
                         "ttft_p90_s": record.ttft_s["p90"], "tpot_p90_s": record.tpot_s["p90"]}
    print(f"{len(pairs)} splits, {runner.simulated} simulated, {runner.store.hits} from the store", file=sys.stderr)
    return figures


def pareto_front(figures: dict[tuple[int, int], dict], max_servers: int) -> list:
    """Find the exact front of the simulated points with the optimizer's Pareto search over (N_p, N_d)."""
    def lookup(key: str):
        def fn(values):
            return np.array([figures.get((int(p), int(d)), {}).get(key, np.nan)
                             for p, d in zip(values["N_p"], values["N_d"])])
        return fn

    space = DecisionSpace({"N_p": range(1, max_servers), "N_d": range(1, max_servers)})
    problem = Problem(space, [ObjectiveSpec("tok_s_per_gpu", lookup("tok_s_per_gpu"), ObjectiveDirection.MAXIMIZE),
                              ObjectiveSpec("ttft_p90_s", lookup("ttft_p90_s"), ObjectiveDirection.MINIMIZE)],
                      [("max_servers", lambda v: max_servers - v["N_p"] - v["N_d"])])
    return optimize(problem, "pareto").pareto


def plot(path: Path, figures: dict, front: list) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: pip install 'sglsim[plot]' to draw the plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [f["ttft_p90_s"] for f in figures.values()]
    ys = [f["tok_s_per_gpu"] for f in figures.values()]
    ax.scatter(xs, ys, color="0.7", label="simulated split")
    fx = [c.objectives["ttft_p90_s"] for c in front]
    fy = [c.objectives["tok_s_per_gpu"] for c in front]
    order = np.argsort(fx)
    ax.plot(np.array(fx)[order], np.array(fy)[order], "o-", color="C0", label="Pareto front")
    for c in front:
        ax.annotate(f"{c.config['N_p']}:{c.config['N_d']}", (c.objectives["ttft_p90_s"], c.objectives["tok_s_per_gpu"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("p90 TTFT (s)")
    ax.set_ylabel("output tokens/s per GPU")
    ax.set_title("P/D splits on the Mooncake trace (N_p:N_d)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.trace.exists():
        print(f"trace not found: {args.trace}", file=sys.stderr)
        return 2
    figures = sweep(args)
    front = pareto_front(figures, args.max_servers)
    on_front = {(c.config["N_p"], c.config["N_d"]) for c in front}
    print("| N_p:N_d | GPUs | output tok/s/GPU | p90 TTFT (s) | p90 TPOT (ms) | Pareto |")
    print("|---|---|---|---|---|---|")
    for (n_p, n_d), f in sorted(figures.items(), key=lambda kv: -kv[1]["tok_s_per_gpu"]):
        print(f"| {n_p}:{n_d} | {f['gpus']} | {f['tok_s_per_gpu']:.1f} | {f['ttft_p90_s']:.3g} "
              f"| {f['tpot_p90_s'] * 1e3:.1f} | {'yes' if (n_p, n_d) in on_front else ''} |")
    if args.plot is not None:
        plot(args.plot, figures, front)
    return 0


if __name__ == "__main__":
    sys.exit(main())
