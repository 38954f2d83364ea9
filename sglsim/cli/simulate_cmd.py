"""`sglsim simulate`: run a scenario from a YAML file and/or SGLang-style flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config.scenario import Scenario, load_scenario
from ..errors import ConfigError

# flag -> (scenario path, type, help). Flags are named like SGLang's server arguments.
SERVER_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--tp", "server.tp", int, "tensor-parallel size: GPUs of one pipeline stage of a server"),
    ("--dp", "server.dp", int, "data-parallel size: DP-attention ranks with --enable-dp-attention, "
                               "else copies of the TP group in one server"),
    ("--ep", "server.ep", int, "expert-parallel size: GPUs the routed experts are split over (divides --tp)"),
    ("--pp", "server.pp", int, "pipeline-parallel size: stages of layers"),
    ("--moe-a2a-backend", "server.moe_a2a_backend", str,
     "MoE token exchange: none (all-reduce, default) or deepep (all-to-all; sets ep to tp)"),
    ("--deepep-mode", "server.deepep_mode", str, "DeepEP kernels: auto (default), normal or low_latency"),
    ("--ep-num-redundant-experts", "server.ep_num_redundant_experts", int,
     "extra expert replicas placed by EPLB (default 0)"),
    ("--moe-dense-tp-size", "server.moe_dense_tp_size", int,
     "TP size of the dense MLP layers of an MoE model: only 1 (replicated) is accepted"),
    ("--chunked-prefill-size", "server.chunked_prefill_size", int,
     "max new tokens per prefill chunk (-1 disables chunking; default: SGLang's GPU-memory rule)"),
    ("--max-prefill-tokens", "server.max_prefill_tokens", int, "token budget of one prefill batch (default 16384)"),
    ("--max-running-requests", "server.max_running_requests", int, "cap on running requests (default: derived)"),
    ("--schedule-policy", "server.schedule_policy", str, "waiting-queue order: fcfs (default) or lpm"),
    ("--schedule-conservativeness", "server.schedule_conservativeness", float,
     "scales the decode-token reservation of admission (default 1.0)"),
    ("--mem-fraction-static", "server.mem_fraction_static", float,
     "fraction of GPU memory for weights and KV cache (default: SGLang's rule)"),
    ("--page-size", "server.page_size", int, "KV page size in tokens (default 1)"),
    ("--cuda-graph-max-bs", "server.cuda_graph_max_bs", int, "largest decode batch replayed from a CUDA graph"),
    ("--max-total-tokens", "server.max_total_tokens", int, "upper bound on the KV pool, tokens"),
    ("--kv-pool-tokens", "server.kv_pool_tokens", int, "simulation only: KV pool size in tokens, ignoring memory"),
    ("--context-length", "server.context_length", int, "context window, tokens (default: the model's)"),
    ("--kv-cache-dtype", "server.kv_cache_dtype", str, "KV-cache dtype: auto, bf16, fp8_e4m3 or fp8_e5m2"),
    ("--quantization", "server.quantization", str,
     "weight quantization: fp8, w8a8_fp8, modelopt_fp8 (FP8) or fp4, modelopt_fp4 (NVFP4)"),
]
SERVER_SWITCHES = [
    ("--enable-mixed-chunk", "server.enable_mixed_chunk", "run decodes in the same batch as a prefill chunk"),
    ("--disable-overlap-schedule", "server.disable_overlap_schedule", "add the scheduler's CPU time to each step"),
    ("--disable-cuda-graph", "server.disable_cuda_graph", "launch every decode kernel eagerly"),
    ("--disable-radix-cache", "server.disable_radix_cache", "turn the prefix cache off"),
    ("--enable-dp-attention", "server.enable_dp_attention",
     "run attention per DP rank, each with its own scheduler and KV pool, and the MoE/MLP over all ranks"),
    ("--enable-two-batch-overlap", "server.enable_two_batch_overlap",
     "split each batch in two so DeepEP dispatch and combine overlap computation"),
    ("--enable-eplb", "server.enable_eplb", "rebalance expert placement across EP ranks (EPLB)"),
    ("--enable-dp-lm-head", "server.enable_dp_lm_head", "run the LM head per DP rank on its own rows"),
]
# Router knobs, named as SGLang's `launch_router` flags.
ROUTER_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--router", "cluster.router", str,
     "routing policy of every pool: cache_aware (default), power_of_two, random, round_robin, shortest_queue"),
    ("--cache-threshold", "cluster.cache_aware.cache_threshold", float,
     "cache_aware: min prefix match ratio for cache-affine routing (default 0.3)"),
    ("--balance-abs-threshold", "cluster.cache_aware.balance_abs_threshold", int,
     "cache_aware: imbalanced when max - min load exceeds this (default 64)"),
    ("--balance-rel-threshold", "cluster.cache_aware.balance_rel_threshold", float,
     "cache_aware: ...and max load exceeds min load x this (default 1.5)"),
    ("--eviction-interval-secs", "cluster.cache_aware.eviction_interval_secs", float,
     "cache_aware: simulated seconds between trims of the prefix tree (default 120)"),
    ("--max-tree-size", "cluster.cache_aware.max_tree_size", int,
     "cache_aware: tokens per server the prefix tree keeps after a trim (default 2^26)"),
    ("--router-seed", "cluster.seed", int, "seed of the routers' random choices (default 0)"),
    ("--inter-node-link", "cluster.inter_node_link", str,
     "network between nodes for KV transfers: infiniband (default) or ethernet"),
]
# P/D pools: their size, GPU and policy; every server flag also exists as --prefill-X / --decode-X.
PD_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--prefill-workers", "cluster.prefill.workers", int, "prefill servers of a P/D pair"),
    ("--decode-workers", "cluster.decode.workers", int, "decode servers of a P/D pair"),
    ("--prefill-gpu", "cluster.prefill.gpu", str, "GPU preset of the prefill servers (default: --gpu)"),
    ("--decode-gpu", "cluster.decode.gpu", str, "GPU preset of the decode servers (default: --gpu)"),
    ("--prefill-policy", "cluster.prefill.policy", str, "routing policy of the prefill pool (default: --router)"),
    ("--decode-policy", "cluster.decode.policy", str, "routing policy of the decode pool (default: --router)"),
    ("--num-reserved-decode-tokens", "cluster.decode.num_reserved_decode_tokens", int,
     "decode tokens a decode server keeps free per active request (default 512)"),
]
POOLS = ("prefill", "decode")
WORKLOAD_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--trace", "workload.trace", str, "trace file: Mooncake JSONL, Azure CSV or Vidur CSV (detected)"),
    ("--trace-format", "workload.trace_format", str, "auto (default), mooncake, azure or vidur"),
    ("--trace-sampling", "workload.trace_sampling", str, "in_order (default), shuffle or with_replacement"),
    ("--num-requests", "workload.num_requests", int, "requests to send (with a trace: the first N)"),
    ("--rate", "workload.rate", float, "arrival rate, requests/s (with a trace: replaces its timestamps; "
                                       "unset, synthetic requests all arrive at t = 0; with --concurrency: "
                                       "the pace at which requests queue for a free slot, as bench_serving "
                                       "--request-rate with --max-concurrency)"),
    ("--arrival", "workload.arrival", str, "arrival process with --rate: poisson (default), gamma or constant"),
    ("--cv", "workload.cv", float, "coefficient of variation of gamma inter-arrival gaps"),
    ("--time-scale", "workload.time_scale", float, "multiply the trace's timestamps by this factor"),
    ("--concurrency", "workload.concurrency", int,
     "requests in flight at most; alone, a closed loop of this many clients (bench_serving --max-concurrency)"),
    ("--concurrency-ramp-duration", "workload.concurrency_ramp_s", float,
     "seconds over which the concurrency cap grows from 1 to --concurrency, one slot at a time (as aiperf)"),
    ("--max-request-tokens", "workload.max_request_tokens", int,
     "shrink requests longer than this many tokens proportionally (Vidur's cap)"),
    ("--seed", "workload.seed", int, "random seed of the workload (default 0)"),
]


def add_simulate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("simulate", help="simulate a serving cluster on a workload",
                                   description="Simulate SGLang servers on a workload and print the summary.")
    parser.add_argument("scenario", nargs="?", help="scenario YAML file (flags override its values)")
    add_scenario_flags(parser)
    parser.add_argument("--output", help="write the result as JSON to this file")
    parser.add_argument("--include-requests", action="store_true", help="add per-request records to --output")
    parser.add_argument("--explain-memory", action="store_true", help="print the memory plan of each server")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def add_scenario_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by commands that build a scenario."""
    group = parser.add_argument_group("model and hardware")
    group.add_argument("--model", help="model preset id or path to a Hugging Face config.json")
    group.add_argument("--gpu", help="GPU preset: a100, h100, h200, h800, b200, b300, gb200, gb300")
    group.add_argument("--replicas", type=int,
                       help="aggregated servers behind the router (default: 1, or 0 with P/D pools)")
    _add_router_flags(parser)
    server = parser.add_argument_group("SGLang server arguments")
    for flag, _, kind, text in SERVER_FLAGS:
        server.add_argument(flag, type=kind, help=text)
    for flag, _, text in SERVER_SWITCHES:
        server.add_argument(flag, action="store_true", default=None, help=text)
    _add_pool_flags(parser)
    work = parser.add_argument_group("workload")
    for flag, _, kind, text in WORKLOAD_FLAGS:
        work.add_argument(flag, type=kind, help=text)
    work.add_argument("--input-len", type=int, help="fixed prompt length, tokens")
    work.add_argument("--output-len", type=int, help="fixed output length, tokens")
    work.add_argument("--random-range-ratio", type=float,
                      help="draw each length uniformly from [int(len x ratio), len] for --input-len and "
                           "--output-len, as bench_serving's random dataset does (default: fixed lengths)")
    work.add_argument("--shared-prefix-groups", type=int, help="sessions in this many groups share a system prompt")
    work.add_argument("--system-prompt-len", type=int, help="tokens of each group's system prompt (default 1024)")
    work.add_argument("--turns", type=int, help="turns per multi-turn session (default 1)")
    slo = parser.add_argument_group("service-level objectives (for goodput)")
    slo.add_argument("--slo-ttft", type=float, help="TTFT target, seconds")
    slo.add_argument("--slo-tpot", type=float, help="TPOT target, seconds")


def _add_router_flags(parser: argparse.ArgumentParser) -> None:
    router = parser.add_argument_group("router (SGLang's launch_router flags)")
    for flag, _, kind, text in ROUTER_FLAGS:
        router.add_argument(flag, type=kind, help=text)
    router.add_argument("--dp-aware", action="store_true", default=None,
                        help="route to each DP rank of a server as a target of its own")


def _add_pool_flags(parser: argparse.ArgumentParser) -> None:
    """P/D pool flags, and --prefill-X / --decode-X for every server flag (hidden from --help)."""
    pools = parser.add_argument_group(
        "prefill/decode disaggregation",
        "A P/D pair needs --prefill-workers and --decode-workers. Each server argument above also "
        "exists per pool as --prefill-ARG and --decode-ARG (e.g. --prefill-tp 8). Unset, it takes "
        "the shared value.")
    for flag, _, kind, text in PD_FLAGS:
        pools.add_argument(flag, type=kind, help=text)
    for pool in POOLS:
        for flag, _, kind, _ in SERVER_FLAGS:
            pools.add_argument(_pool_flag(pool, flag), type=kind, help=argparse.SUPPRESS)
        for flag, _, _ in SERVER_SWITCHES:
            pools.add_argument(_pool_flag(pool, flag), action="store_true", default=None, help=argparse.SUPPRESS)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _pool_flag(pool: str, flag: str) -> str:
    """`--tp` -> `--prefill-tp`."""
    return f"--{pool}-{flag.lstrip('-')}"


def _pool_path(pool: str, path: str) -> str:
    """`server.tp` -> `cluster.prefill.server.tp`."""
    return f"cluster.{pool}.{path}"


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """Load the scenario file (or defaults) and apply the flags given on the command line."""
    base = load_scenario(args.scenario) if getattr(args, "scenario", None) else default_scenario(args)
    overrides: dict[str, Any] = {}
    simple = {"--model": "model", "--gpu": "gpu", "--replicas": "cluster.replicas",
              "--slo-ttft": "slo.ttft_s", "--slo-tpot": "slo.tpot_s"}
    for flag, path in simple.items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            overrides[path] = value
    overrides.update(_table_overrides(args))
    for name in ("input_len", "output_len"):
        length = getattr(args, name)
        if length is not None:
            overrides[f"workload.{name}"] = _length_spec(name, length, args.random_range_ratio)
    if args.random_range_ratio is not None and args.input_len is None and args.output_len is None:
        raise ConfigError(f"invalid --random-range-ratio {args.random_range_ratio}: it needs --input-len "
                          "or --output-len")
    prefix = {k: v for k, v in (("num_groups", args.shared_prefix_groups), ("system_prompt_len", args.system_prompt_len),
                                ("turns", args.turns)) if v is not None}
    if prefix:
        for key, value in prefix.items():
            overrides[f"workload.shared_prefix.{key}"] = value
    return _apply(base, overrides, "command line")


def _length_spec(name: str, length: int, ratio: float | None) -> dict[str, Any]:
    """Describe a fixed length, or bench_serving's uniform draw from [int(length x ratio), length]."""
    if ratio is None:
        return {"dist": "constant", "mean": length}
    if not 0 <= ratio <= 1:
        raise ConfigError(f"invalid --random-range-ratio {ratio}: expected a number in [0, 1]")
    if length < 1:
        raise ConfigError(f"invalid --{name.replace('_', '-')} {length}: expected at least 1 token")
    low = max(int(length * ratio), 1)
    return {"dist": "uniform", "mean": (low + length) / 2, "min": low, "max": length}


def _table_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Overrides from the flag tables: valued flags, then switches, shared and per pool."""
    overrides: dict[str, Any] = {}
    valued = SERVER_FLAGS + WORKLOAD_FLAGS + ROUTER_FLAGS + PD_FLAGS
    valued += [(_pool_flag(pool, flag), _pool_path(pool, path), kind, text)
               for pool in POOLS for flag, path, kind, text in SERVER_FLAGS]
    for flag, path, _, _ in valued:
        value = getattr(args, _dest(flag), None)
        if value is not None:
            overrides[path] = value

    switches = SERVER_SWITCHES + [("--dp-aware", "cluster.dp_aware", "")]
    switches += [(_pool_flag(pool, flag), _pool_path(pool, path), text)
                 for pool in POOLS for flag, path, text in SERVER_SWITCHES]
    for flag, path, _ in switches:
        if getattr(args, _dest(flag), None):
            overrides[path] = True
    return overrides


def _apply(base: Scenario, overrides: dict[str, Any], source: str) -> Scenario:
    try:
        return base.updated(overrides)
    except ConfigError as err:
        raise ConfigError(str(err).replace(" in scenario", f" in {source}")) from None


def default_scenario(args: argparse.Namespace) -> Scenario:
    """The built-in demo: multi-turn chat sessions on two Llama-3.1-8B servers, unless flags say otherwise.

    As soon as the command line names a workload (trace, lengths, rate or
    concurrency) the demo workload is dropped and the defaults of
    `WorkloadConfig` apply instead. `--num-requests` alone resizes the demo.
    """
    workload_flags = ("trace", "input_len", "output_len", "rate", "concurrency")
    if any(getattr(args, name, None) is not None for name in workload_flags):
        return Scenario()
    from ..config.defaults import DEMO_SCENARIO

    return DEMO_SCENARIO


def check_output_path(path: Path) -> None:
    """Reject an --output that cannot be written, before a long run rather than after it."""
    if path.is_dir():
        raise ConfigError(f"invalid --output {path}: {path} is a folder")
    if not path.parent.is_dir():
        raise ConfigError(f"invalid --output {path}: folder {path.parent} not found")


def run_simulate(args: argparse.Namespace) -> int:
    from ..reports.table import pool_table, summary_table, worker_table
    from ..simulation import Simulation

    if args.output:
        check_output_path(Path(args.output))
    scenario = scenario_from_args(args)
    sim = Simulation(scenario)
    if args.explain_memory and not args.quiet:
        for name, server in sim.servers.items():
            pool = "" if name == "aggregated" else f"{name} "
            print(f"Memory plan of each {pool}{server.gpu.name} server ({server.parallel.describe()}):")
            print(server.memory.explain())
            print()
    bar = None
    if not args.no_progress and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=sim.driver.num_requests, unit="req", desc="simulating", file=sys.stderr,
                   mininterval=0.5, leave=False)
        last = [0]

        def progress(done: int, total: int) -> None:
            if done - last[0] >= 200 or done == total:
                bar.update(done - last[0])
                last[0] = done

        sim.progress = progress
    try:
        result = sim.run()
    finally:
        if bar is not None:
            bar.close()
    if args.output:
        try:
            result.write_json(args.output, include_requests=args.include_requests)
        except OSError as exc:
            raise ConfigError(f"invalid --output {args.output}: {exc.strerror}") from None
    if not args.quiet:
        print(summary_table(result.summary, result.config))
        if len(result.summary["pools"]) > 1:
            print(pool_table(result.summary["pools"], result.config["pools"]))
        print(worker_table(result.summary["workers"]))
        if args.output:
            print(f"wrote {args.output}")
    return 0
