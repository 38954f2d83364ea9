"""Wires a scenario into server pools, routers and a workload, runs it, and returns the result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cluster.cluster import Cluster
from .config.scenario import Scenario
from .engine.events import PRIORITY_ARRIVAL, EventQueue
from .errors import ConfigError
from .metrics.collector import MetricsCollector
from .metrics.summary import summarize
from .serving.request import Request
from .serving.server_spec import ServerSpec
from .workload.builder import build_driver

ProgressFn = Callable[[int, int], None]
"""Called with (requests done, requests in total) as the run advances."""


@dataclass
class SimulationResult:
    """What a simulation returns: the summary, per-request records and time series."""

    summary: dict[str, Any]
    requests: dict[str, np.ndarray]
    timeseries: dict[str, dict[str, list[float]]]
    config: dict[str, Any]
    servers: list[ServerSpec] = field(default_factory=list, repr=False)
    trace: Any = field(default=None, repr=False)
    """The recorded schedule (`sglsim.symbolic.recorder.TraceRecord`) when run with `record=True`, else None."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Requests the servers rejected: rid, arrival time, lengths and reason."""

    def to_dict(self, include_requests: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary, "config": self.config, "timeseries": self.timeseries}
        if include_requests:
            out["requests"] = {k: _json_column(k, v) for k, v in self.requests.items()}
            out["rejected_requests"] = self.rejected
        return out

    def write_json(self, path: str | Path, include_requests: bool = False) -> None:
        Path(path).write_text(json.dumps(self.to_dict(include_requests), indent=2, default=_json_default))


INTEGER_COLUMNS = frozenset({"rid", "input_len", "output_len", "cached_tokens", "worker_id", "retractions",
                             "prefill_worker_id"})
"""Per-request columns that count things; the collector stores every column as floats."""


def _json_column(name: str, values: np.ndarray) -> list[Any]:
    """Convert a per-request column for JSON: counts to ints, undefined values (NaN) to null.

    TPOT is undefined for a single-token request."""
    if name in INTEGER_COLUMNS:
        return values.astype(np.int64).tolist()
    return [None if v != v else v for v in values.tolist()]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class _Observer:
    """Fans worker events out to metrics, the workload driver and invariant checks."""

    def __init__(self, sim: "Simulation") -> None:
        self.sim = sim
        self.metrics = sim.metrics
        self.recorder = sim.recorder

    def on_first_token(self, req: Request, now: float) -> None:
        self.metrics.on_first_token(req, now)

    def on_finish(self, req: Request, now: float) -> None:
        self.metrics.on_finish(req, now)
        self.sim._request_done(req, now)

    def on_reject(self, req: Request, now: float, reason: str) -> None:
        self.metrics.on_reject(req, now, reason)
        self.sim._request_done(req, now)

    def on_extend_step(self, worker, batch, start: float, duration: float) -> None:
        self.metrics.on_extend_step(worker, batch, start, duration)
        if self.recorder is not None:
            self.recorder.on_extend_step(worker, batch, start, duration)

    def on_decode_span(self, worker, span, steps, batch_size, start, fresh_token_times) -> None:
        self.metrics.on_decode_span(worker, span, steps, batch_size, start, fresh_token_times)
        if self.recorder is not None:
            self.recorder.on_decode_span(worker, span, steps, batch_size, start, fresh_token_times)

    def on_retract(self, worker, reqs, now: float) -> None:
        self.metrics.on_retract(worker, reqs, now)

    def on_step_boundary(self, worker, now: float) -> None:
        self.metrics.on_step_boundary(worker, now)
        if self.sim.scenario.check_invariants:
            worker.scheduler.check_invariants()
            if now < self.sim._last_boundary.get(worker.worker_id, 0.0):
                raise RuntimeError("simulated clock went backwards")
            self.sim._last_boundary[worker.worker_id] = now


class Simulation:
    """One run of a scenario. Build it, call `run()`, read the result.

    With `record=True` the result's `trace` contains every step grouped by
    the law's branch choices, which `sglsim.symbolic.trace_expressions`
    turns into SymPy metrics. Recording costs nothing when off.
    """

    def __init__(self, scenario: Scenario, progress: ProgressFn | None = None, record: bool = False) -> None:
        self.scenario = scenario
        self.progress = progress
        self.recorder = None
        if record:
            from .symbolic.recorder import TraceRecorder

            self.recorder = TraceRecorder()
        self.engine = EventQueue()
        self.metrics = MetricsCollector()
        self._observer = _Observer(self)
        self.cluster = Cluster(scenario, self.engine, self._observer)
        self.servers: dict[str, ServerSpec] = {name: pool.spec for name, pool in self.cluster.pools.items()}
        self.server = self.servers.get("aggregated") or self.servers["prefill"]
        """The first pool's server (the only one of an aggregated cluster)."""
        self.workers = list(self.cluster.workers.values())
        if self.recorder is not None:
            self.recorder.check_servers(self.servers.values())
        for worker in self.workers:
            self.metrics.add_worker(worker.worker_id, worker.pool, worker.scheduler.config.max_total_tokens)
        self.driver, self.trace = build_driver(scenario.workload)
        self._check_decode_pool()
        self._check_fixed_lengths()
        self._done = 0
        self._last_boundary: dict[int, float] = {}

    def _check_fixed_lengths(self) -> None:
        """Reject a fixed prompt length that no server could ever accept (a config error, not a trace row)."""
        wl = self.scenario.workload
        spec = wl.input_len
        if wl.trace is not None or spec is None or spec.dist != "constant":
            return
        for name, server in self.servers.items():
            limit = server.scheduler.max_req_input_len
            mem = server.memory
            where = "the server" if name == "aggregated" else f"the {name} server"
            if limit < 1:
                needed = mem.max_total_num_tokens - limit + 1
                raise ConfigError(
                    f"invalid KV capacity {mem.max_total_num_tokens} tokens: {where} accepts no prompt; expected "
                    f"at least {needed} tokens (raise kv_pool_tokens, max_total_tokens or mem_fraction_static)")
            if spec.mean > limit:
                raise ConfigError(
                    f"invalid input_len {int(spec.mean)}: {where} accepts prompts of at most {limit} tokens "
                    f"(context length {mem.context_len}, KV capacity {mem.max_total_num_tokens} tokens)")

    def _check_decode_pool(self) -> None:
        """Reject a decode pool whose KV pool cannot preallocate even one request."""
        decode = self.servers.get("decode")
        if decode is None:
            return
        reserved = self.scenario.cluster.decode.num_reserved_decode_tokens
        capacity = decode.scheduler.max_total_tokens
        spec = self.scenario.workload.input_len
        fixed = self.scenario.workload.trace is None and spec is not None and spec.dist == "constant"
        smallest = int(spec.mean) if fixed else 1
        if smallest + reserved > capacity:
            raise ConfigError(
                f"invalid decode pool KV capacity {capacity} tokens: one request needs {smallest} prompt "
                f"tokens + {reserved} reserved decode tokens; use a larger decode server (--decode-tp, "
                f"--decode-gpu, --decode-mem-fraction-static) or lower --num-reserved-decode-tokens")

    # ----- RequestSink -----

    def schedule_arrival(self, time: float, req: Request) -> None:
        self.engine.push(time, PRIORITY_ARRIVAL, self._on_arrival, req)

    def _on_arrival(self, now: float, req: Request) -> None:
        self.metrics.on_arrival(req, now)
        self.driver.on_arrival(req, now)
        self.cluster.dispatch(req, now)

    def _request_done(self, req: Request, now: float) -> None:
        self.cluster.on_request_done(req)
        self._done += 1
        if self.progress is not None:
            self.progress(self._done, self.driver.num_requests)
        self.driver.on_done(req, now)

    # ----- run -----

    def run(self) -> SimulationResult:
        self.driver.start(self)
        self.engine.run()
        total = self.driver.num_requests
        summary, requests = summarize(self.metrics, total, self.scenario.slo.ttft_s, self.scenario.slo.tpot_s)
        if summary["num_completed"] + summary["num_rejected"] != total:
            raise RuntimeError(f"requests lost: {total} sent, {summary['num_completed']} completed, "
                               f"{summary['num_rejected']} rejected")
        summary["num_events"] = self.engine.num_events
        config = {"scenario": self.scenario.model_dump(), "server": self.server.resolved(),
                  "pools": {name: spec.resolved() for name, spec in self.servers.items()},
                  "num_gpus": self.cluster.num_gpus}
        trace = self.recorder.finish() if self.recorder is not None else None
        rejected = [{"rid": rid, "arrived_at": arrived, "input_len": n_in, "output_len": n_out, "reason": reason}
                    for rid, arrived, n_in, n_out, reason in self.metrics.rejected_records]
        return SimulationResult(summary, requests, self._timeseries(), config, list(self.servers.values()), trace,
                                rejected)

    def _timeseries(self) -> dict[str, dict[str, list[float]]]:
        out = {}
        for worker_id, stats in self.metrics.workers.items():
            out[str(worker_id)] = {"t": stats.series_t.tolist(), "kv_usage": stats.series_kv.tolist(),
                                   "queue_len": stats.series_queue.tolist(),
                                   "running": stats.series_running.tolist()}
        return out


def simulate(scenario: Scenario | dict[str, Any] | str | Path, progress: ProgressFn | None = None,
             record: bool = False) -> SimulationResult:
    """Run one scenario (a `Scenario`, a dict of its fields, or a YAML path) to completion.

    `record=True` keeps the schedule for trace expressions (see `Simulation`).
    """
    from .config.scenario import load_scenario, validate_scenario

    if isinstance(scenario, (str, Path)):
        scenario = load_scenario(scenario)
    elif isinstance(scenario, dict):
        scenario = validate_scenario(scenario)
    elif not isinstance(scenario, Scenario):
        raise TypeError(f"simulate() expects a Scenario, a dict of its fields or a YAML path, "
                        f"got {type(scenario).__name__}")
    return Simulation(scenario, progress, record).run()
