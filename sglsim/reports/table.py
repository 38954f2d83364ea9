"""Plain-text summary tables in the style of SGLang's `bench_serving` report."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value * scale:,.{digits}f}"


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:,.1f} %"


def summary_table(summary: dict[str, Any], config: dict[str, Any]) -> str:
    """Render the headline figures of a run."""
    server = config.get("server", {})
    width = 50
    lines = ["=" * width, " sglsim simulation result ".center(width, "="),
             f"{'Model / GPU:':<34}{server.get('model', '?')} / {server.get('gpu', '?')}",
             f"{'GPUs:':<34}{config.get('num_gpus', '?')}"]

    def row(label: str, value: str) -> None:
        # Long labels eat into the value column so that rows stay `width` characters wide.
        lines.append(f"{label:<34}{value:>{max(1, width - max(34, len(label)))}}")

    row("Requests completed:", f"{summary['num_completed']:,}")
    row("Requests rejected:", f"{summary['num_rejected']:,}")
    for reason, count in sorted(summary.get("rejected_reasons", {}).items()):
        row(f"  {reason}:", f"{count:,}")
    row("Duration (s):", _fmt(summary["duration_s"]))
    row("Input tokens:", f"{summary['input_tokens']:,}")
    row("Output tokens:", f"{summary['output_tokens']:,}")
    row("Request throughput (req/s):", _fmt(summary["request_throughput_req_s"], digits=3))
    row("Input throughput (tok/s):", _fmt(summary["input_throughput_tok_s"]))
    row("Output throughput (tok/s):", _fmt(summary["output_throughput_tok_s"]))
    row("Prefix cache hit rate:", _percent(summary["cache_hit_rate"]))
    row("Retractions:", f"{summary['retractions']:,}")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_s", "E2E latency")):
        stats = summary[key]
        lines.append(f"{'-' * 15}{label + ' (ms)':^20}{'-' * 15}")
        row(f"Mean {label} (ms):", _fmt(stats["mean"], 1e3))
        row(f"P50 {label} (ms):", _fmt(stats["p50"], 1e3))
        row(f"P90 {label} (ms):", _fmt(stats["p90"], 1e3))
        row(f"P99 {label} (ms):", _fmt(stats["p99"], 1e3))
    if summary.get("tpot_excluded_single_token"):
        row("Single-token requests (no TPOT):", f"{summary['tpot_excluded_single_token']:,}")
    batch = summary["decode_batch_size"]
    lines.append("-" * width)
    row("Mean decode batch size:", _fmt(batch["mean"]))
    if "goodput" in summary:
        good = summary["goodput"]
        row("Goodput (req/s):", _fmt(good["rate_req_s"], digits=3))
        row("Requests within SLO:", _percent(good["fraction"]))
    if "kv_transfer_s" in summary:
        row("Mean KV transfer (ms):", _fmt(summary["kv_transfer_s"]["mean"], 1e3))
        row("P99 KV transfer (ms):", _fmt(summary["kv_transfer_s"]["p99"], 1e3))
        row("Mean KV transfer queue (ms):", _fmt(summary["kv_transfer_queue_s"]["mean"], 1e3))
    lines.append("=" * width)
    return "\n".join(lines)


def pool_table(pools: dict[str, Any], servers: dict[str, Any]) -> str:
    """Render one line per pool: servers, GPU and TP, utilisation, queue, decode batch, KV transfer."""
    header = (f"{'pool':<10} {'servers':>7} {'gpu':<6} {'tp':>3} {'util %':>7} {'queue':>7} "
              f"{'batch':>6} {'xfer p50 ms':>11} {'xfer p99 ms':>11}")
    lines = [header]
    for name, pool in pools.items():
        server = servers.get(name, {})
        transfer = pool.get("kv_transfer_s") or {}
        lines.append(f"{name:<10} {pool['num_workers']:>7} {server.get('gpu', '?'):<6} {server.get('tp', '?'):>3} "
                     f"{pool['utilization'] * 100:>7.1f} {pool['queue_len_mean']:>7.1f} "
                     f"{_fmt(pool['decode_batch_size']['mean'], digits=1):>6} "
                     f"{_fmt(transfer.get('p50'), 1e3):>11} {_fmt(transfer.get('p99'), 1e3):>11}")
    return "\n".join(lines)


def worker_table(workers: list[dict[str, Any]]) -> str:
    """One line per server: pool, utilisation, queue and KV figures."""
    header = f"{'worker':>6} {'pool':<8} {'util %':>7} {'queue':>7} {'run':>6} {'KV mean %':>9} {'KV max %':>8} {'retract':>7}"
    lines = [header]
    for w in workers:
        lines.append(f"{w['worker_id']:>6} {w['pool']:<8} {w['utilization'] * 100:>7.1f} {w['queue_len_mean']:>7.1f} "
                     f"{w['running_mean']:>6.1f} {w['kv_usage_mean'] * 100:>9.1f} {w['kv_usage_max'] * 100:>8.1f} "
                     f"{w['retractions']:>7}")
    return "\n".join(lines)
