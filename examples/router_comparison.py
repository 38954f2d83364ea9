"""Compare routing policies on a P/D cluster: prefix-cache hit rate (prefill side) and latency.

Usage (from the repository root, with `../shared` beside it):
    .venv/bin/python examples/router_comparison.py --num-requests 4000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sglsim.config.scenario import validate_scenario
from sglsim.simulation import simulate

DEFAULT_TRACE = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "mooncake_conversation.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="trace file (default: Mooncake conversation)")
    parser.add_argument("--num-requests", type=int, default=4000, help="first N requests (default 4000)")
    parser.add_argument("--prefill-workers", type=int, default=4)
    parser.add_argument("--decode-workers", type=int, default=4)
    parser.add_argument("--policies", nargs="+", default=["cache_aware", "round_robin"])
    args = parser.parse_args()
    if not args.trace.is_file():
        raise SystemExit(f"trace not found: {args.trace} (pass --trace)")
    print("| router | prefix hit rate (prefill) | TTFT p50 (s) | TTFT p99 (s) | TPOT mean (ms) | output tok/s |")
    print("|---|---|---|---|---|---|")
    for policy in args.policies:
        summary = simulate(validate_scenario({
            "model": "llama-3.1-70b", "gpu": "h100", "server": {"tp": 4},
            "cluster": {"router": policy, "prefill": {"workers": args.prefill_workers},
                        "decode": {"workers": args.decode_workers}},
            "workload": {"trace": str(args.trace), "num_requests": args.num_requests},
        }, "router_comparison")).summary
        print(f"| {policy} | {summary['cache_hit_rate'] * 100:.1f} % | {summary['ttft_s']['p50']:.2f} "
              f"| {summary['ttft_s']['p99']:.2f} | {summary['tpot_s']['mean'] * 1e3:.1f} "
              f"| {summary['output_throughput_tok_s']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
