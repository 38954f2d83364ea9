"""Records a simulation's schedule as groups of steps that share branch choices.

The recorder is a worker observer. For every prefill step it rebuilds the
step's `StepShape` and evaluates the step law with `RecordingOps`, which
logs which side of every max/min/where won (compute- or memory-bound, graph
or eager launch, one-shot or ring all-reduce). A decode span is split where
that choice tuple changes. Each compared quantity is linear in the step
index k, because the context grows by the batch size per step. So every
choice flips at most once along a span, equal choices at both ends of a
range mean equal choices inside it, and bisection finds the pieces.

Nothing here imports SymPy: the record holds numbers only, and
`trace.py` turns it into expressions. At record time each prefill step's
replayed law must equal its simulated duration, and each span's pieces must
add up to the span's duration; a mismatch raises RuntimeError, because it
would mean the simulator and the law have drifted apart.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from typing import Any

from ..costs.forward import LawContext, step_time
from ..costs.ops import ChosenOps, RecordingOps
from ..costs.params import StepShape
from ..costs.step_model import DecodeSpan, StepCostModel

Choices = tuple[int, ...]
GroupKey = tuple[int, tuple[bool, ...], Choices]
"""(worker id, the shape's flags, branch choices): steps of one group share one algebraic law."""

EXTEND_RTOL = 1e-12
SPAN_RTOL = 1e-9


class ReplayOps(ChosenOps):
    """Replays recorded branch choices; usable on floats and on SymPy expressions."""

    symbolic = False

    @staticmethod
    def ceil(x: Any) -> Any:
        return float(math.ceil(x)) if isinstance(x, (int, float)) else ChosenOps.ceil(x)

    @staticmethod
    def log(x: Any) -> Any:
        return math.log(x) if isinstance(x, (int, float)) else ChosenOps.log(x)

    @staticmethod
    def gt(a: Any, b: Any) -> Any:
        return None

    le = gt

    def check_exhausted(self) -> None:
        """Raise RuntimeError unless the replay used every recorded choice."""
        if self._next != len(self._choices):
            raise RuntimeError(f"branch replay used {self._next} of {len(self._choices)} recorded choices")


def replay_step_time(choices: Choices, shape: StepShape, ctx: LawContext) -> Any:
    """Evaluate the step law with its branches fixed to `choices` (in floats or SymPy, as the inputs are)."""
    ops = ReplayOps(choices)
    value = step_time(ops, shape, ctx)
    ops.check_exhausted()
    return value


def empty_shape() -> StepShape:
    return StepShape(steps=0.0)


def shape_flags(shape: StepShape) -> tuple[bool, ...]:
    """The boolean fields of a shape: they choose which laws exist, so a group must share them."""
    return tuple(getattr(shape, f.name) for f in fields(shape) if isinstance(getattr(shape, f.name), bool))


def group_key(worker_id: int, shape: StepShape, choices: Choices) -> GroupKey:
    return (worker_id, shape_flags(shape), choices)


def add_decode_range(acc: StepShape, cost: StepCostModel, batch_size: int, ctx0: float, k_a: int, k_b: int,
                     weight: float = 1.0) -> None:
    """Add `weight` x the summed shape of decode steps [k_a, k_b) of a span into `acc`.

    Step k reads context ctx0 + k x batch_size, and the shape is affine in the
    context, so the sum over m steps is m x shape(k_a) + m (m - 1) / 2 x the
    per-step increment.
    """
    m = k_b - k_a
    if m <= 0:
        return
    first = cost.decode_shape(batch_size, ctx0 + k_a * batch_size)
    acc.scaled_sum(first, weight * m)
    pairs = m * (m - 1) / 2
    if pairs:
        increment = empty_shape()
        increment.scaled_sum(cost.decode_shape(batch_size, ctx0 + (k_a + 1) * batch_size))
        increment.scaled_sum(first, -1.0)
        acc.scaled_sum(increment, weight * pairs)


@dataclass
class ExtendUnit:
    """One prefill step (possibly with mixed decodes)."""

    start: float
    duration: float
    key: GroupKey
    shape: StepShape

    @property
    def num_steps(self) -> int:
        return 1

    @property
    def end(self) -> float:
        return self.start + self.duration

    def boundary(self, j: int) -> float:
        return self.start if j == 0 else self.end


@dataclass
class DecodeUnit:
    """Steps [k0, k1) of a decode span that share one choice tuple."""

    span: DecodeSpan
    span_start: float
    k0: int
    k1: int
    batch_size: int
    ctx0: float
    """Context sum at step 0 of the span."""
    key: GroupKey

    @property
    def num_steps(self) -> int:
        return self.k1 - self.k0

    @property
    def start(self) -> float:
        return self.boundary(0)

    @property
    def end(self) -> float:
        return self.boundary(self.k1 - self.k0)

    def boundary(self, j: int) -> float:
        """Start of the unit's step j (end of step j - 1), as the simulator computes it."""
        return self.span_start + self.span.duration(self.k0 + j)


Unit = ExtendUnit | DecodeUnit


@dataclass
class WorkerTimeline:
    """The steps one server ran, in time order."""

    worker_id: int
    pool: str
    cost: StepCostModel
    units: list[Unit] = field(default_factory=list)

    @property
    def ctx(self) -> LawContext:
        return self.cost.ctx

    @property
    def busy_s(self) -> float:
        return sum(u.end - u.start for u in self.units)

    def unit_shape(self, unit: Unit, j_a: int, j_b: int, weight: float, acc: StepShape) -> None:
        """Add `weight` x the summed shape of the unit's steps [j_a, j_b) into `acc`."""
        if isinstance(unit, ExtendUnit):
            acc.scaled_sum(unit.shape, weight)
        else:
            add_decode_range(acc, self.cost, unit.batch_size, unit.ctx0, unit.k0 + j_a, unit.k0 + j_b, weight)

    # ----- positions of times in the step sequence -----

    def unit_ends(self) -> list[float]:
        """End time of each unit, in order (for bisecting times into the step sequence)."""
        return [u.end for u in self.units]

    def first_step_starting_at_or_after(self, t: float, ends: list[float]) -> tuple[int, int]:
        """Position (unit, step in unit) of the first step whose start is >= t."""
        u = bisect_right(ends, t)
        if u == len(self.units) or self.units[u].start >= t:
            return u, 0
        unit = self.units[u]
        j = _first_index(1, unit.num_steps, lambda j: unit.boundary(j) >= t)
        return (u + 1, 0) if j is None else (u, j)

    def first_step_ending_after(self, t: float, ends: list[float]) -> tuple[int, int]:
        """Position of the first step whose end is > t (steps before it end at or before t)."""
        u = bisect_right(ends, t)
        if u == len(self.units):
            return u, 0
        unit = self.units[u]
        j = _first_index(0, unit.num_steps, lambda j: unit.boundary(j + 1) > t)
        return (u, 0) if j is None else (u, j)


def _first_index(lo: int, hi: int, pred) -> int | None:
    """Smallest j in [lo, hi) with pred(j), for a monotone predicate; None if none holds."""
    if lo >= hi or not pred(hi - 1):
        return None
    while lo < hi - 1:
        mid = (lo + hi - 1) // 2
        if pred(mid):
            hi = mid + 1
        else:
            lo = mid + 1
    return lo


@dataclass
class TraceRecord:
    """Every step of a finished simulation, grouped by branch choices, per server."""

    timelines: dict[int, WorkerTimeline]
    num_steps: int

    def groups(self) -> set[GroupKey]:
        return {u.key for tl in self.timelines.values() for u in tl.units}


class TraceRecorder:
    """Worker observer that builds a `TraceRecord` (enable with `simulate(..., record=True)`)."""

    def __init__(self) -> None:
        self.timelines: dict[int, WorkerTimeline] = {}
        self.num_steps = 0

    @staticmethod
    def check_servers(specs: Any) -> None:
        """Raise ConfigError for servers the recorder cannot time: DP-attention servers.

        Their lock-step forward lasts as long as the slowest rank, and ranks
        report their own batches only, so one rank's steps cannot be timed alone.
        """
        if any(spec.parallel.dp_attention for spec in specs):
            from ..errors import ConfigError

            raise ConfigError("invalid record=True with enable_dp_attention: trace expressions cover servers "
                              "without DP attention; run without --enable-dp-attention or without recording")

    def _timeline(self, worker: Any) -> WorkerTimeline:
        tl = self.timelines.get(worker.worker_id)
        if tl is None:
            tl = WorkerTimeline(worker.worker_id, worker.pool, worker.cost)
            self.timelines[worker.worker_id] = tl
        return tl

    def on_extend_step(self, worker: Any, batch: Any, start: float, duration: float) -> None:
        tl = self._timeline(worker)
        shape = tl.cost.extend_shape(batch.items, batch.num_mixed_decode, batch.mixed_ctx_tokens)
        ops = RecordingOps()
        law_s = step_time(ops, shape, tl.ctx)
        if not math.isclose(law_s, duration, rel_tol=EXTEND_RTOL):
            raise RuntimeError(f"prefill step at t={start:.9g} on worker {worker.worker_id}: law gives "
                               f"{law_s!r} s, the simulator ran {duration!r} s")
        tl.units.append(ExtendUnit(start, duration, group_key(worker.worker_id, shape, tuple(ops.choices)), shape))
        self.num_steps += 1

    def on_decode_span(self, worker: Any, span: DecodeSpan, steps: int, batch_size: int, start: float,
                       fresh_token_times: list[float]) -> None:
        """Split the span into ranges of equal choices and check their sum against the span.

        The scheduler commits the span after this call, so its `ctx_sum` is
        still the context sum at the span's first step.
        """
        tl = self._timeline(worker)
        ctx0 = worker.scheduler.ctx_sum
        pieces = self._split_by_choices(tl, batch_size, ctx0, steps)
        law_total = 0.0
        for k0, k1, choices in pieces:
            acc = empty_shape()
            add_decode_range(acc, tl.cost, batch_size, ctx0, k0, k1)
            law_total += replay_step_time(choices, acc, tl.ctx)
            key = group_key(worker.worker_id, acc, choices)
            tl.units.append(DecodeUnit(span, start, k0, k1, batch_size, ctx0, key))
        simulated = span.duration(steps)
        if not math.isclose(law_total, simulated, rel_tol=SPAN_RTOL):
            raise RuntimeError(f"decode span at t={start:.9g} on worker {worker.worker_id} ({steps} steps, "
                               f"batch {batch_size}): law gives {law_total!r} s, the simulator ran {simulated!r} s")
        self.num_steps += steps

    def _choices_at(self, tl: WorkerTimeline, batch_size: int, ctx0: float, k: int) -> Choices:
        ops = RecordingOps()
        step_time(ops, tl.cost.decode_shape(batch_size, ctx0 + k * batch_size), tl.ctx)
        return tuple(ops.choices)

    def _split_by_choices(self, tl: WorkerTimeline, batch_size: int, ctx0: float,
                          steps: int) -> list[tuple[int, int, Choices]]:
        def at(k: int) -> Choices:
            return self._choices_at(tl, batch_size, ctx0, k)

        pieces: list[tuple[int, int, Choices]] = []
        stack = [(0, steps, at(0), at(steps - 1))]
        while stack:
            k0, k1, first, last = stack.pop()
            if first == last:
                pieces.append((k0, k1, first))
                continue
            if k1 - k0 == 2:
                pieces.append((k0, k0 + 1, first))
                pieces.append((k0 + 1, k1, last))
                continue
            mid = (k0 + k1) // 2
            stack.append((mid, k1, at(mid), last))
            stack.append((k0, mid, first, at(mid - 1)))
        return pieces

    def on_step_boundary(self, worker: Any, now: float) -> None:
        return None

    def finish(self) -> TraceRecord:
        return TraceRecord(self.timelines, self.num_steps)
