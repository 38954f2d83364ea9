"""Aggregate statistics of a finished simulation, in the units an SGLang operator reads.

Latency statistics carry `mean`, `p50`, `p90`, `p95`, `p99`, `max` and
`count`. A statistic over no samples has `count` 0 and null values (never NaN):
for example TPOT when every request produced a single token.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .collector import MetricsCollector
from .pools import pool_summaries
from .sketch import LogHistogram

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def latency_stats(values: np.ndarray) -> dict[str, Any]:
    if len(values) == 0:
        return {"mean": None, **{k: None for k in QUANTILES}, "max": None, "count": 0}
    qs = np.quantile(values, list(QUANTILES.values()))
    return {"mean": float(values.mean()), **{k: float(v) for k, v in zip(QUANTILES, qs)},
            "max": float(values.max()), "count": int(len(values))}


def sketch_stats(hist: LogHistogram) -> dict[str, Any]:
    return {"mean": hist.mean(), **{k: hist.quantile(q) for k, q in QUANTILES.items()},
            "max": hist.max if hist.total else None, "count": int(hist.total)}


def request_arrays(collector: MetricsCollector) -> dict[str, np.ndarray]:
    """Per-request columns as numpy arrays, plus derived latencies (seconds)."""
    cols = {name: np.frombuffer(col, dtype=np.float64).copy() for name, col in collector.columns.items()}
    cols["ttft_s"] = cols["first_token_at"] - cols["arrived_at"]
    cols["e2e_s"] = cols["finished_at"] - cols["arrived_at"]
    cols["queue_s"] = cols["first_scheduled_at"] - cols["arrived_at"]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = (cols["finished_at"] - cols["first_token_at"]) / (cols["output_len"] - 1)
    cols["tpot_s"] = np.where(cols["output_len"] > 1, tpot, np.nan)
    return cols


def decode_batch_stats(collector: MetricsCollector, pool: str | None = None) -> dict[str, Any]:
    """Decode batch size over decode steps, of every server or of one pool's."""
    steps: dict[int, int] = {}
    for stats in collector.workers.values():
        if pool is not None and stats.pool != pool:
            continue
        for size, count in stats.decode_batch_steps.items():
            steps[size] = steps.get(size, 0) + count
    if not steps:
        return {"mean": None, "p50": None, "p99": None, "max": None, "steps": 0}
    sizes = np.array(sorted(steps))
    counts = np.array([steps[s] for s in sizes], dtype=float)
    cum = np.cumsum(counts) / counts.sum()
    pick = lambda q: int(sizes[min(int(np.searchsorted(cum, q)), len(sizes) - 1)])  # noqa: E731
    return {"mean": float((sizes * counts).sum() / counts.sum()), "p50": pick(0.5), "p99": pick(0.99),
            "max": int(sizes.max()), "steps": int(counts.sum())}


def summarize(collector: MetricsCollector, num_requests: int, slo_ttft_s: float | None,
              slo_tpot_s: float | None, extra_times: float = 0.0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return (summary dict, per-request arrays)."""
    cols = request_arrays(collector)
    n_done = len(cols["rid"])
    start = collector.first_arrival or 0.0
    end = float(cols["finished_at"].max()) if n_done else start
    duration = max(end - start, 0.0)
    tpot = cols["tpot_s"][~np.isnan(cols["tpot_s"])]
    in_tokens = float(cols["input_len"].sum())
    out_tokens = float(cols["output_len"].sum())
    per_s = (lambda x: x / duration) if duration > 0 else (lambda x: None)
    summary: dict[str, Any] = {
        "num_requests": num_requests,
        "num_completed": n_done,
        "num_rejected": int(sum(collector.rejected.values())),
        "rejected_reasons": dict(collector.rejected),
        "duration_s": duration,
        "ttft_s": latency_stats(cols["ttft_s"]),
        "tpot_s": latency_stats(tpot),
        "tpot_excluded_single_token": int(n_done - len(tpot)),
        "itl_s": sketch_stats(collector.itl),
        "e2e_s": latency_stats(cols["e2e_s"]),
        "queue_s": latency_stats(cols["queue_s"]),
        "input_tokens": int(in_tokens),
        "output_tokens": int(out_tokens),
        "input_throughput_tok_s": per_s(in_tokens),
        "output_throughput_tok_s": per_s(out_tokens),
        "total_throughput_tok_s": per_s(in_tokens + out_tokens),
        "request_throughput_req_s": per_s(float(n_done)),
        "cache_hit_rate": float(cols["cached_tokens"].sum() / in_tokens) if in_tokens else None,
        "cached_tokens": int(cols["cached_tokens"].sum()),
        "retractions": int(sum(s.retractions for s in collector.workers.values())),
        "decode_batch_size": decode_batch_stats(collector),
        "prefill_batch_tokens": sketch_stats(collector.prefill_batch_tokens),
    }
    if slo_ttft_s is not None or slo_tpot_s is not None:
        ok = np.ones(n_done, dtype=bool)
        if slo_ttft_s is not None:
            ok &= cols["ttft_s"] <= slo_ttft_s
        if slo_tpot_s is not None:
            ok &= np.nan_to_num(cols["tpot_s"], nan=0.0) <= slo_tpot_s
        good = int(ok.sum())
        summary["goodput"] = {"ttft_slo_s": slo_ttft_s, "tpot_slo_s": slo_tpot_s, "num_good": good,
                              "fraction": good / n_done if n_done else None,
                              "rate_req_s": per_s(float(good))}
    disaggregated = cols["prefill_worker_id"] >= 0
    if any(stats.pool == "prefill" for stats in collector.workers.values()):
        summary["kv_transfer_s"] = latency_stats(cols["transfer_s"][disaggregated])
        summary["kv_transfer_queue_s"] = latency_stats(cols["transfer_queue_s"][disaggregated])
    summary["workers"] = worker_summaries(collector, start, end)
    summary["pools"] = pool_summaries(collector, cols, summary["workers"], start, end)
    return summary, cols


def worker_summaries(collector: MetricsCollector, start: float, end: float) -> list[dict[str, Any]]:
    span = max(end - start, 1e-30)
    rows = []
    for stats in collector.workers.values():
        window = max(stats.last_sample_t - start, 1e-30)
        rows.append({
            "worker_id": stats.worker_id,
            "pool": stats.pool,
            "utilization": stats.busy_s / span,
            "prefill_steps": stats.prefill_steps,
            "decode_steps": stats.decode_steps,
            "prefill_tokens": stats.prefill_tokens,
            "decode_tokens": stats.decode_tokens,
            "kv_usage_mean": stats.kv_used_integral / window / stats.capacity_tokens,
            "kv_usage_max": stats.max_kv_used / stats.capacity_tokens,
            "queue_len_mean": stats.queue_integral / window,
            "queue_len_max": stats.max_queue,
            "running_mean": stats.running_integral / window,
            "retractions": stats.retractions,
            "kv_capacity_tokens": stats.capacity_tokens,
        })
    return rows
