"""Turn a finished simulation into the `RunRecord` verification reads, and run one simulation as a task."""

from __future__ import annotations

from typing import Any, Mapping

from .store import RunRecord

LATENCY_KEYS = ("mean", "p50", "p90", "p95", "p99", "max")


def workload_parameters(result: Any) -> dict[str, float]:
    """The frozen workload parameters measured in one run, named as `ConfigSymbols` attributes.

    avg_prompt_len, avg_output_len: mean prompt and output tokens of completed
    requests; cache_hit_rate: share of requests with a prefix-cache hit;
    avg_prefix_match: cached share of the prompts of those requests
    (token-weighted); prompt_len_scv: squared coefficient of variation of the
    uncached prompt tokens; arrival_rate: requests per second over the arrival
    span (infinite when all arrive at once).
    """
    req = result.requests
    n = len(req["rid"])
    if n == 0:
        return {}
    input_len = req["input_len"].astype(float)
    cached = req["cached_tokens"].astype(float)
    hits = cached > 0
    uncached = input_len - cached
    mean_uncached = float(uncached.mean())
    arrivals = req["arrived_at"]
    span = float(arrivals.max() - arrivals.min())
    return {
        "avg_prompt_len": float(input_len.mean()),
        "avg_output_len": float(req["output_len"].mean()),
        "cache_hit_rate": float(hits.mean()),
        "avg_prefix_match": float(cached[hits].sum() / input_len[hits].sum()) if hits.any() else 0.0,
        "prompt_len_scv": float(uncached.var() / mean_uncached**2) if mean_uncached > 0 else 0.0,
        "arrival_rate": (n - 1) / span if span > 0 else float("inf"),
    }


def record_from_result(result: Any) -> RunRecord:
    s = result.summary
    return RunRecord(
        ttft_s={k: s["ttft_s"][k] for k in LATENCY_KEYS},
        tpot_s={k: s["tpot_s"][k] for k in LATENCY_KEYS},
        output_throughput_tok_s=float(s["output_throughput_tok_s"] or 0.0),
        request_throughput_req_s=float(s["request_throughput_req_s"] or 0.0),
        num_gpus=int(result.config["num_gpus"]),
        num_requests=int(s["num_requests"]),
        num_completed=int(s["num_completed"]),
        num_rejected=int(s["num_rejected"]),
        duration_s=float(s["duration_s"]),
        workload=workload_parameters(result),
    )


def simulate_record(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one scenario dict; return its `RunRecord` as a dict (picklable, for executors)."""
    from ..simulation import simulate

    return record_from_result(simulate(dict(scenario))).to_dict()
