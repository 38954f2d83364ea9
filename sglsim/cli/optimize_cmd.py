"""`sglsim optimize`: size a deployment analytically, then verify the best candidates by simulation."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SIZE_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

MIN_GPU_MEMORY_BYTES = 1e9
"""Smallest --gpu-memory accepted: a smaller budget is a forgotten unit, not a GPU."""


def parse_size(text: str, flag: str = "--gpu-memory") -> float:
    """Bytes of a size such as 80GB (10^9 bytes each), 80GiB (2^30 bytes each) or 85899345920."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if match is None or unit not in SIZE_UNITS or not 0 < float(match.group(1)) * SIZE_UNITS[unit] < math.inf:
        raise ConfigError(f"invalid {flag} {text!r}: expected a size like 80GB (10^9 bytes) or 80GiB (2^30 bytes)")
    size = float(match.group(1)) * SIZE_UNITS[unit]
    if size < MIN_GPU_MEMORY_BYTES:
        # A plain number is bytes, so "80" is almost surely a forgotten unit.
        raise ConfigError(f"invalid {flag} {text!r}: {size:g} bytes is below 1GB; expected a size with a unit, "
                          "like 80GB or 80GiB")
    return size


def parse_domain_flag(text: str) -> tuple[str, Any]:
    """NAME=SPEC with SPEC a list (1,2,4), a range (1:16 or 1:16:2) or powers of two (pow2:1:8)."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise ConfigError(f"invalid --domain {text!r}: expected NAME=SPEC, e.g. B_req=16,32,64 or TP=pow2:1:8")
    name, spec = name.strip(), spec.strip()
    try:
        if spec.startswith("pow2:"):
            low, high = spec[5:].split(":")
            return name, {"pow2": [int(low), int(high)]}
        if ":" in spec:
            return name, {"range": [int(p) for p in spec.split(":")]}
        return name, [float(p) for p in spec.split(",")]
    except ValueError:
        raise ConfigError(f"invalid --domain {text!r}: expected numbers, e.g. B_req=16,32,64, N_p=1:8 "
                          "or TP=pow2:1:8") from None


def add_optimize_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..optimizer.choices import EXECUTORS, METHODS, OBJECTIVE_NAMES
    from .simulate_cmd import add_scenario_flags

    parser = subparsers.add_parser(
        "optimize", help="find the deployment with the highest throughput under SLO, memory and GPU limits",
        description="Search deployments (colocated and P/D; TP, server counts, chunk size, batch caps) over the "
                    "symbolic steady-state model, then re-simulate the best candidates on the workload.")
    parser.add_argument("scenario", nargs="?", help="scenario YAML file with the model, GPU and workload")
    add_scenario_flags(parser)
    goal = parser.add_argument_group("problem")
    goal.add_argument("--gpus", type=int, required=True, help="GPU budget of the whole deployment")
    goal.add_argument("--gpu-memory", help="memory budget per GPU: 80GB (10^9 bytes) or 80GiB (2^30 bytes), at least 1GB "
                                           "(a bare number is bytes); default: the GPU's capacity")
    goal.add_argument("--memory-margin", type=float, default=0.9,
                      help="share of the memory budget peak memory may use (default 0.9)")
    goal.add_argument("--ttft", type=float, help="TTFT target, seconds")
    goal.add_argument("--tpot", type=float, help="TPOT target, seconds")
    goal.add_argument("--ttft-percentile", default="p90", help="simulated TTFT statistic checked (default p90)")
    goal.add_argument("--tpot-percentile", default="p90", help="simulated TPOT statistic checked (default p90)")
    goal.add_argument("--objective", default="throughput", choices=OBJECTIVE_NAMES,
                      help="what to optimise (default throughput: output tokens/s)")
    goal.add_argument("--pareto", default="throughput,tpot",
                      help="comma-separated objectives of the Pareto front (default throughput,tpot)")
    goal.add_argument("--deployments", default=None,
                      help="comma-separated deployment shapes: colocated, disaggregated (default: both)")
    goal.add_argument("--per-pool-tp", action="store_true", help="search prefill and decode TP separately")
    goal.add_argument("--domain", action="append", default=[], metavar="NAME=SPEC",
                      help="domain of a decision variable (N_r, N_p, N_d, TP, c, B_tok, B_req, ...): "
                           "16,32,64 or 1:16 or 1:16:2 or pow2:1:8; repeatable")
    goal.add_argument("--method", default="auto", choices=METHODS, help="analytic search method (default auto)")
    check = parser.add_argument_group("verification by simulation")
    check.add_argument("--verify", type=int, default=5, metavar="N",
                       help="simulate the analytic top N candidates (default 5; 0 turns verification off)")
    check.add_argument("--verify-pareto", type=int, default=3, metavar="N",
                       help="also simulate N points spread along the Pareto front (default 3)")
    check.add_argument("--verify-requests", type=int, default=2000, help="requests per simulation (default 2000)")
    check.add_argument("--rate-tolerance", type=float, default=0.05,
                       help="relative precision of the goodput rate search (default 0.05)")
    check.add_argument("--max-iterations", type=int, default=3, help="ranking / re-freeze iterations (default 3)")
    check.add_argument("--rate-search", choices=("auto", "on", "off"), default="auto",
                       help="search the highest rate meeting the SLOs: auto (default) does so unless the "
                            "workload sets --rate or --concurrency")
    check.add_argument("--executor", default="local", choices=EXECUTORS,
                       help="where simulations run: local process pool (default), serial or ray")
    check.add_argument("--workers", type=int, help="parallel simulations (default: one per CPU core)")
    check.add_argument("--ray-address", help="Ray cluster to join (default: start a local Ray instance)")
    check.add_argument("--store", help="SQLite results store; an interrupted run resumes from it "
                                       "(default: OUTPUT.runs.sqlite with --output)")
    parser.add_argument("--output", help="write the chosen configuration, candidates, Pareto front and verification as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(run=run_optimize)
    return parser


def _spec(args: argparse.Namespace, base: Any) -> Any:
    from ..optimizer.planner import PlanSpec
    from ..optimizer.rate_search import SLOSpec

    for flag, value in (("--verify", args.verify), ("--verify-pareto", args.verify_pareto)):
        if value < 0:
            raise ConfigError(f"invalid {flag} {value}: expected 0 or more candidates")
    for flag, value in (("--verify-requests", args.verify_requests), ("--max-iterations", args.max_iterations)):
        if value < 1:
            raise ConfigError(f"invalid {flag} {value}: expected at least 1")
    slo = SLOSpec(args.ttft if args.ttft is not None else base.slo.ttft_s,
                  args.tpot if args.tpot is not None else base.slo.tpot_s,
                  args.ttft_percentile, args.tpot_percentile)
    wl = base.workload
    goodput = {"on": True, "off": False}.get(args.rate_search, wl.rate is None and wl.concurrency is None)
    return PlanSpec(gpus=args.gpus, slo=slo,
                    gpu_memory_bytes=parse_size(args.gpu_memory) if args.gpu_memory else None,
                    memory_safety_margin=args.memory_margin, objective=args.objective,
                    pareto=tuple(p.strip() for p in args.pareto.split(",") if p.strip()), goodput=goodput,
                    domains=dict(parse_domain_flag(d) for d in args.domain), method=args.method,
                    top_k=max(args.verify, 5))


def _bar(args: argparse.Namespace, desc: str, unit: str) -> Any:
    if args.no_progress or args.quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, leave=False, mininterval=0.3)


def run_optimize(args: argparse.Namespace) -> int:
    from ..optimizer.analytic import symbolic_models
    from ..optimizer.executors import make_executor
    from ..optimizer.planner import DeploymentPlanner
    from ..optimizer.report import build_output, summary_text, write_output
    from ..optimizer.runner import SimulationRunner
    from ..optimizer.store import ResultStore
    from ..optimizer.verify import VerificationSettings, verify
    from ..optimizer.workload import initial_frozen
    from .simulate_cmd import check_output_path, scenario_from_args

    if args.output:
        check_output_path(Path(args.output))
    base = scenario_from_args(args)
    spec = _spec(args, base)
    deployments = [d.strip() for d in args.deployments.split(",")] if args.deployments else None
    models = symbolic_models(base, deployments, args.per_pool_tp)
    planner = DeploymentPlanner(base, models, spec, args.verify_requests)
    frozen = initial_frozen(base, args.verify_requests, max(planner.space_tp_values()))

    bar = _bar(args, "analytic search", "config")
    analytic = planner.rank(frozen, progress=_progress(bar))
    if bar is not None:
        bar.close()
    verification = None
    if args.verify > 0 and analytic.x is not None:
        store_path = args.store or (f"{args.output}.runs.sqlite" if args.output else None)
        executor = make_executor(args.executor, args.workers, args.ray_address)
        bar = _bar(args, "verifying", "run")
        try:
            runner = SimulationRunner(executor, ResultStore(store_path), _progress(bar))
            settings = VerificationSettings(top_k=args.verify, max_pareto=args.verify_pareto,
                                            max_iterations=args.max_iterations, rate_search=spec.goodput,
                                            tolerance=args.rate_tolerance)
            verification = verify(planner, runner, spec.slo, frozen, settings)
            analytic = verification.analytic
            frozen = verification.frozen
        finally:
            executor.shutdown()
            if bar is not None:
                bar.close()
    doc = build_output(planner, analytic, frozen, verification)
    if args.output:
        write_output(args.output, doc)
    if not args.quiet:
        print(summary_text(doc, analytic, verification, spec.slo))
        if args.output:
            print(f"wrote {args.output}")
    return 0 if doc["best"] is not None else 1


def _progress(bar: Any) -> Any:
    """A (done, total) callback that drives a tqdm bar; totals may grow or restart per problem."""
    if bar is None:
        return None
    state = {"base": 0, "last": 0, "total": 0}

    def update(done: int, total: int) -> None:
        if done < state["last"]:
            state["base"] += state["last"]
        state["last"] = done
        grand = state["base"] + total
        if grand != bar.total:
            bar.total = grand
            bar.refresh()
        bar.n = state["base"] + done
        bar.refresh()
    return update
