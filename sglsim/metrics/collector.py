"""Collects per-request records, latency sketches and time-weighted server statistics.

Per-request figures are kept as columns of `array('d')` (about 100 bytes a
request). Inter-token latencies go to a log histogram, never one float per
token. KV usage and queue lengths are integrated over time at every step
boundary and sampled into a time series at most once per `sample_interval_s`.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from ..costs.step_model import DecodeSpan
from ..serving.request import Request
from .sketch import LogHistogram

REQUEST_COLUMNS = ("rid", "arrived_at", "input_len", "output_len", "cached_tokens", "first_token_at",
                   "finished_at", "first_scheduled_at", "worker_id", "retractions", "transfer_s",
                   "transfer_queue_s", "prefill_worker_id", "prefill_done_at")


@dataclass
class WorkerStats:
    """Time-integrated figures of one server."""

    worker_id: int
    pool: str
    capacity_tokens: int
    busy_s: float = 0.0
    prefill_steps: int = 0
    decode_steps: int = 0
    prefill_tokens: int = 0
    decode_tokens: int = 0
    kv_used_integral: float = 0.0
    queue_integral: float = 0.0
    running_integral: float = 0.0
    max_kv_used: int = 0
    max_queue: int = 0
    last_sample_t: float = 0.0
    retractions: int = 0
    decode_batch_steps: Counter = field(default_factory=Counter)
    series_t: array = field(default_factory=lambda: array("d"))
    series_kv: array = field(default_factory=lambda: array("d"))
    series_queue: array = field(default_factory=lambda: array("d"))
    series_running: array = field(default_factory=lambda: array("d"))
    _last_series_t: float = -1e300
    _prev: tuple[int, int, int] = (0, 0, 0)


class MetricsCollector:
    """The simulation's observer of workers: records requests, steps and server state."""

    def __init__(self, sample_interval_s: float = 1.0) -> None:
        self.columns: dict[str, array] = {name: array("d") for name in REQUEST_COLUMNS}
        self.itl = LogHistogram()
        self.rejected: Counter = Counter()
        self.rejected_input_tokens = 0
        self.rejected_records: list[tuple[int, float, int, int, str]] = []
        """(rid, arrived_at, input_len, output_len, reason) of each rejected request."""
        self.truncated_outputs = 0
        self.workers: dict[int, WorkerStats] = {}
        self.sample_interval_s = sample_interval_s
        self.num_arrived = 0
        self.first_arrival: float | None = None
        self.last_event: float = 0.0
        self.prefill_batch_tokens = LogHistogram(low=1.0, high=1e7, buckets_per_decade=60)

    # ----- registration -----

    def add_worker(self, worker_id: int, pool: str, capacity_tokens: int) -> None:
        self.workers[worker_id] = WorkerStats(worker_id, pool, capacity_tokens)

    def on_arrival(self, req: Request, now: float) -> None:
        self.num_arrived += 1
        if self.first_arrival is None:
            self.first_arrival = now

    # ----- WorkerObserver -----

    def on_first_token(self, req: Request, now: float) -> None:
        self.last_event = max(self.last_event, now)

    def on_finish(self, req: Request, now: float) -> None:
        cols = self.columns
        cols["rid"].append(req.rid)
        cols["arrived_at"].append(req.arrived_at)
        cols["input_len"].append(req.input_len)
        cols["output_len"].append(req.num_output_tokens)
        cols["cached_tokens"].append(req.num_cached_tokens)
        cols["first_token_at"].append(req.first_token_at)
        cols["finished_at"].append(now)
        cols["first_scheduled_at"].append(req.first_scheduled_at if req.first_scheduled_at is not None else now)
        cols["worker_id"].append(req.worker_id)
        cols["retractions"].append(req.num_retractions)
        cols["transfer_s"].append(req.transfer_s)
        cols["transfer_queue_s"].append(req.transfer_queue_s)
        cols["prefill_worker_id"].append(req.prefill_worker_id)
        # P/D: end of the prefill forward; aggregated servers sample the first token there too.
        cols["prefill_done_at"].append(req.prefill_done_at if req.prefill_done_at is not None else req.first_token_at)
        self.last_event = max(self.last_event, now)

    def on_reject(self, req: Request, now: float, reason: str) -> None:
        self.rejected[reason] += 1
        self.rejected_input_tokens += req.input_len
        self.rejected_records.append((req.rid, req.arrived_at, req.input_len, req.output_len, reason))

    def on_extend_step(self, worker, batch, start: float, duration: float) -> None:
        stats = self.workers[worker.worker_id]
        tokens = sum(extend for _, _, extend in batch.items)
        stats.prefill_steps += 1
        stats.prefill_tokens += tokens
        self.prefill_batch_tokens.add(tokens)
        if batch.num_mixed_decode:
            stats.decode_tokens += batch.num_mixed_decode
            stats.decode_batch_steps[batch.num_mixed_decode] += 1
            previous = worker.last_decode_end if worker.last_decode_end is not None else start
            self.itl.add(start + duration - previous, batch.num_mixed_decode)
        for req, _, extend_len in batch.items:
            # A retracted request's re-prefill emits its next output token: one inter-token gap.
            resumed = req.first_token_at is not None and req.last_token_at is not None
            if resumed and req.num_computed_tokens + extend_len >= req.fill_len:
                self.itl.add(start + duration - req.last_token_at)

    def on_decode_span(self, worker, span: DecodeSpan, steps: int, batch_size: int, start: float,
                       fresh_token_times: list[float]) -> None:
        stats = self.workers[worker.worker_id]
        stats.decode_steps += steps
        stats.decode_tokens += steps * batch_size
        stats.decode_batch_steps[batch_size] += steps
        first_end = start + span.step_duration(0)
        previous = worker.last_decode_end
        carried = batch_size - len(fresh_token_times)
        if carried > 0:
            self.itl.add(first_end - (previous if previous is not None else start), carried)
        for token_time in fresh_token_times:
            self.itl.add(first_end - token_time)
        if steps > 1:
            self._add_span_itls(span, steps, batch_size)

    def _add_span_itls(self, span: DecodeSpan, steps: int, batch_size: int) -> None:
        """Add steps 1..steps-1 of a span: each is one inter-token gap for every sequence."""
        for k0, k1, a, b in span.pieces:
            lo, hi = max(k0, 1), min(k1, steps)
            if hi <= lo:
                continue
            count = hi - lo
            first = a + b * (lo - k0)
            last = a + b * (hi - 1 - k0)
            if count == 1 or first == last:
                self.itl.add(first, count * batch_size)
            else:
                self.itl.add(first + (last - first) / 4, count * batch_size / 2)
                self.itl.add(first + 3 * (last - first) / 4, count * batch_size / 2)

    def on_retract(self, worker, reqs: list[Request], now: float) -> None:
        self.workers[worker.worker_id].retractions += len(reqs)

    # ----- server state over time -----

    def on_step_boundary(self, worker, now: float) -> None:
        """Integrate KV usage and queue lengths since the last boundary, then maybe sample."""
        stats = self.workers[worker.worker_id]
        stats.busy_s = worker.busy_s
        sched = worker.scheduler
        dt = now - stats.last_sample_t
        used = sched.config.max_total_tokens - sched.free_tokens
        queued = worker.num_queued
        running = sched.num_running
        if dt > 0:
            prev_used, prev_queued, prev_running = stats._prev
            stats.kv_used_integral += prev_used * dt
            stats.queue_integral += prev_queued * dt
            stats.running_integral += prev_running * dt
        stats._prev = (used, queued, running)
        stats.last_sample_t = now
        stats.max_kv_used = max(stats.max_kv_used, used)
        stats.max_queue = max(stats.max_queue, queued)
        if now - stats._last_series_t >= self.sample_interval_s:
            stats._last_series_t = now
            stats.series_t.append(now)
            stats.series_kv.append(used / sched.config.max_total_tokens)
            stats.series_queue.append(queued)
            stats.series_running.append(running)
