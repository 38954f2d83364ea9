"""Trace expressions: a finished simulation's metrics as SymPy functions of the configuration.

The simulated schedule is frozen (which steps ran, with which batches), and
each step's time stays a function of the hardware, model, efficiency and
parallelism symbols. Steps are grouped by server and branch choices. Every
law is homogeneous of degree one in the step shape once its branches are
fixed, so a group's time is the law of its summed shape. A metric is then
a sum over a few groups instead of one term per step.

- makespan = time of every step of the server that finishes last + its idle
  time (a constant);
- throughput = output tokens / makespan;
- mean TTFT = (sum over requests of the steps between arrival and first
  token + the residual of the step in flight at arrival, a constant) / N;
  under P/D the steps are the prefill server's up to the end of the
  prefill, and the KV transfer and the wait for the decode server's step
  boundary are constants;
- mean TPOT = sum over requests with n_out > 1 of (steps between first and
  last token) / (n_out - 1), averaged over those requests.

A weight per step carries the request counts: for TTFT, the requests that
arrived before the step started and get their first token at or after its
end; for TPOT, the sum of 1 / (n_out - 1) over requests whose decode
interval covers the step.

Region of exactness: evaluating at the simulated configuration reproduces
the simulated metric (to rounding). Elsewhere the expressions stay exact
while no step changes branch (no roofline side, launch mode or all-reduce
algorithm flips) and the schedule itself does not change; for an open-loop
workload the schedule depends on timing, so away from the simulated point
they are a first-order model of the same schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from sympy import Expr, Symbol

from ..errors import ConfigError
from .binding import _Binder, symbolize_law
from .recorder import GroupKey, TraceRecord, WorkerTimeline, empty_shape, replay_step_time
from .symbols import ConfigSymbols

METRICS = ("makespan", "throughput", "mean_ttft", "mean_tpot")


@dataclass
class WeightedGroups:
    """Weighted summed shapes per group, and the same weighted sum of simulated durations."""

    shapes: dict[GroupKey, Any] = field(default_factory=dict)
    float_s: float = 0.0

    def add(self, tl: WorkerTimeline, u: int, j_a: int, j_b: int, weight: float) -> None:
        unit = tl.units[u]
        acc = self.shapes.get(unit.key)
        if acc is None:
            acc = self.shapes[unit.key] = empty_shape()
        tl.unit_shape(unit, j_a, j_b, weight, acc)
        self.float_s += weight * (unit.boundary(j_b) - unit.boundary(j_a))


@dataclass
class TraceExpressions:
    """Makespan (s), throughput (output tokens/s), mean TTFT (s) and mean TPOT (s) of one run.

    `bindings` contains the value of every symbol at the simulated
    configuration, `simulated` the metrics the simulation reported, and
    `constants` the frozen parts (idle time, residuals) in seconds.
    `mean_tpot` is None when no request produced more than one token.
    """

    makespan: Expr
    throughput: Expr
    mean_ttft: Expr
    mean_tpot: Expr | None
    bindings: dict[Symbol, float]
    simulated: dict[str, float | None]
    constants: dict[str, float]
    num_groups: int
    num_steps: int

    def as_dict(self) -> dict[str, Expr | None]:
        return {name: getattr(self, name) for name in METRICS}

    def get_expression(self, name: str) -> Expr | None:
        if name not in METRICS:
            from ..errors import unknown

            raise unknown("trace metric", name, METRICS)
        return getattr(self, name)

    def evaluate(self, name: str, overrides: dict[Symbol, float] | None = None) -> float | None:
        """Value of a metric at the simulated configuration, with some symbols replaced."""
        expr = self.get_expression(name)
        if expr is None:
            return None
        point = {**self.bindings, **(overrides or {})}
        from .bridge import compile_expression

        compiled = compile_expression(expr, sorted(expr.free_symbols, key=lambda s: s.name))
        return float(compiled(**{s.name: np.float64(point[s]) for s in compiled.symbols}))


def _sweep(tl: WorkerTimeline, events: dict[int, list[tuple[int, float, int]]], out: WeightedGroups) -> None:
    """Walk the worker's steps in order, adding each run of equal weight to `out`."""
    weight = 0.0
    active = 0
    for u, unit in enumerate(tl.units):
        j_prev = 0
        for j, delta, count in sorted(events.get(u, ()), key=lambda e: e[0]):
            if active and j > j_prev:
                out.add(tl, u, j_prev, j, weight)
            weight += delta
            active += count
            if active == 0:
                weight = 0.0
            j_prev = max(j_prev, j)
        if active and j_prev < unit.num_steps:
            out.add(tl, u, j_prev, unit.num_steps, weight)


def _interval_events(record: TraceRecord, requests: dict[str, np.ndarray], lo_col: str, hi_col: str,
                     weights: np.ndarray, worker_col: str) -> dict[int, dict[int, list[tuple[int, float, int]]]]:
    """Per worker and unit: (step in unit, weight change, count change) of each request interval."""
    events: dict[int, dict[int, list[tuple[int, float, int]]]] = {}
    ends_cache: dict[int, list[float]] = {}
    for i in np.nonzero(weights)[0]:
        worker = int(requests[worker_col][i])
        tl = record.timelines.get(worker)
        if tl is None:
            raise RuntimeError(f"request {int(requests['rid'][i])} finished on worker {worker}, which ran no step")
        ends = ends_cache.get(worker)
        if ends is None:
            ends = ends_cache[worker] = tl.unit_ends()
        lo = tl.first_step_starting_at_or_after(float(requests[lo_col][i]), ends)
        hi = tl.first_step_ending_after(float(requests[hi_col][i]), ends)
        if lo >= hi:
            continue
        per_unit = events.setdefault(worker, {})
        w = float(weights[i])
        per_unit.setdefault(lo[0], []).append((lo[1], w, 1))
        per_unit.setdefault(hi[0], []).append((hi[1], -w, -1))
    return events


def _weighted(record: TraceRecord, requests: dict[str, np.ndarray], lo_col: str, hi_col: str,
              weights: np.ndarray, worker_col: str = "worker_id") -> WeightedGroups:
    out = WeightedGroups()
    events = _interval_events(record, requests, lo_col, hi_col, weights, worker_col)
    for worker, per_unit in events.items():
        _sweep(record.timelines[worker], per_unit, out)
    return out


def _busy(tl: WorkerTimeline) -> WeightedGroups:
    out = WeightedGroups()
    for u, unit in enumerate(tl.units):
        out.add(tl, u, 0, unit.num_steps, 1.0)
    return out


def _number(value: float) -> sympy.Expr:
    """Convert a shape coefficient to SymPy: integers stay exact, other values keep their float bits."""
    if float(value).is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value)


def _symbolic_shape(shape: Any) -> Any:
    from dataclasses import fields, replace

    updates = {f.name: _number(getattr(shape, f.name)) for f in fields(shape)
               if not isinstance(getattr(shape, f.name), bool)}
    return replace(shape, **updates)


def _groups_expression(groups: WeightedGroups, contexts: dict[int, Any]) -> Expr:
    terms = [replay_step_time(key[2], _symbolic_shape(shape), contexts[key[0]])
             for key, shape in sorted(groups.shapes.items(), key=lambda kv: repr(kv[0]))]
    return sympy.expand(sympy.Add(*terms))


def trace_expressions(result: Any, symbols: ConfigSymbols | None = None) -> TraceExpressions:
    """Build the trace expressions of a simulation run with `record=True`."""
    record: TraceRecord | None = getattr(result, "trace", None)
    if record is None:
        raise ConfigError("invalid result for trace expressions: no recorded schedule; "
                          "run the simulation with simulate(..., record=True)")
    symbols = symbols or ConfigSymbols()
    binder = _Binder()
    contexts = {wid: symbolize_law(symbols, tl.ctx, tl.pool, binder).ctx for wid, tl in record.timelines.items()}
    req = result.requests
    summary = result.summary
    n_done = len(req["rid"])
    if n_done == 0:
        raise ConfigError("invalid result for trace expressions: no request completed")

    # Makespan: the server that finishes last, plus its idle time.
    last = int(req["worker_id"][int(np.argmax(req["finished_at"]))])
    busy = _busy(record.timelines[last])
    duration = float(summary["duration_s"])
    idle_s = duration - busy.float_s
    makespan = _groups_expression(busy, contexts) + _number(idle_s)
    output_tokens = int(summary["output_tokens"])
    throughput = sympy.Integer(output_tokens) / makespan

    # Mean TTFT: weighted steps between arrival and first token, plus residuals. Under P/D the steps
    # are the prefill server's, up to the end of the prefill. The KV transfer and the wait for the
    # decode server's next step boundary are part of the constant.
    req = {**req, "ttft_worker_id": np.where(req["prefill_worker_id"] >= 0, req["prefill_worker_id"],
                                             req["worker_id"])}
    ttft = _weighted(record, req, "arrived_at", "prefill_done_at", np.ones(n_done), "ttft_worker_id")
    ttft_sum = float(np.sum(req["first_token_at"] - req["arrived_at"]))
    residual_s = ttft_sum - ttft.float_s
    mean_ttft = (_groups_expression(ttft, contexts) + _number(residual_s)) / n_done

    # Mean TPOT: weight 1 / (n_out - 1) per request with more than one token.
    n_out = req["output_len"]
    multi = n_out > 1
    weights = np.where(multi, 1.0 / np.maximum(n_out - 1, 1), 0.0)
    mean_tpot = None
    tpot_gap_s = 0.0
    if multi.any():
        tpot = _weighted(record, req, "first_token_at", "finished_at", weights)
        tpot_sum = float(np.sum(weights * (req["finished_at"] - req["first_token_at"])))
        tpot_gap_s = tpot_sum - tpot.float_s
        mean_tpot = (_groups_expression(tpot, contexts) + _number(tpot_gap_s)) / int(multi.sum())

    simulated = {"makespan": duration, "throughput": summary["output_throughput_tok_s"],
                 "mean_ttft": summary["ttft_s"]["mean"], "mean_tpot": summary["tpot_s"]["mean"]}
    constants = {"idle_s": idle_s, "ttft_residual_sum_s": residual_s, "tpot_gap_sum_s": tpot_gap_s}
    return TraceExpressions(makespan, throughput, mean_ttft, mean_tpot, dict(binder.values), simulated, constants,
                            len(record.groups()), record.num_steps)
