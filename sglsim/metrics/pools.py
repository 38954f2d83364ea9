"""Per-pool figures of a run: utilisation, queues (also over time), decode batches, KV transfers.

A pool is `aggregated`, `prefill` or `decode`. Per-server figures are
averaged over the pool's servers (`utilization`, `queue_len_mean`, ...);
`queue_len_series` is the pool's total queue length on a regular time
grid, each server's sampled queue held until its next sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .collector import MetricsCollector

SERIES_POINTS = 200
"""Grid points of each pool's queue-length series."""


def pool_summaries(collector: MetricsCollector, cols: dict[str, np.ndarray], worker_rows: list[dict[str, Any]],
                   start: float, end: float) -> dict[str, Any]:
    """Summarise each pool, keyed by pool name, in the order its servers were registered."""
    from .summary import decode_batch_stats, latency_stats  # summary imports this module

    pools: dict[str, Any] = {}
    for name in dict.fromkeys(row["pool"] for row in worker_rows):
        rows = [row for row in worker_rows if row["pool"] == name]
        ids = {row["worker_id"] for row in rows}
        entry: dict[str, Any] = {
            "num_workers": len(rows),
            "utilization": _mean(rows, "utilization"),
            "queue_len_mean": _mean(rows, "queue_len_mean"),
            "queue_len_max": max(row["queue_len_max"] for row in rows),
            "running_mean": _mean(rows, "running_mean"),
            "kv_usage_mean": _mean(rows, "kv_usage_mean"),
            "prefill_tokens": sum(row["prefill_tokens"] for row in rows),
            "decode_tokens": sum(row["decode_tokens"] for row in rows),
            "retractions": sum(row["retractions"] for row in rows),
            "decode_batch_size": decode_batch_stats(collector, name),
        }
        if name in ("prefill", "decode"):
            column = "prefill_worker_id" if name == "prefill" else "worker_id"
            mine = np.isin(cols[column], list(ids)) & (cols["prefill_worker_id"] >= 0)
            entry["kv_transfer_s"] = latency_stats(cols["transfer_s"][mine])
            entry["kv_transfer_queue_s"] = latency_stats(cols["transfer_queue_s"][mine])
        entry["queue_len_series"] = queue_series(collector, ids, start, end)
        pools[name] = entry
    return pools


def queue_series(collector: MetricsCollector, worker_ids: set[int], start: float, end: float,
                 points: int = SERIES_POINTS) -> dict[str, list[float]]:
    """Total queue length of some servers on a grid of `points` times from `start` to `end`."""
    grid = np.linspace(start, end, points) if end > start else np.array([start])
    total = np.zeros(len(grid))
    for worker_id in worker_ids:
        stats = collector.workers[worker_id]
        times = np.frombuffer(stats.series_t, dtype=np.float64)
        if len(times) == 0:
            continue
        values = np.frombuffer(stats.series_queue, dtype=np.float64)
        index = np.searchsorted(times, grid, side="right") - 1
        total += np.where(index >= 0, values[np.maximum(index, 0)], 0.0)
    return {"t": grid.tolist(), "queue_len": total.tolist()}


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([row[key] for row in rows]))
