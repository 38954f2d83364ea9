"""One SGLang server (a TP group) in simulated time: scheduler + step law + event hooks.

The worker runs SGLang's event loop: at each step boundary it takes a
prefill batch from the scheduler if one can be formed, else a decode step of
the running batch.
Pure decode runs as a span of k steps that ends at the next completion or
when KV runs out, timed in closed form; an arrival that could be admitted
cuts the span at the step in flight (SGLang sees new requests between steps).

Requests arriving at one instant are all queued before the server forms its
next batch: arrivals have a lower event priority than step boundaries.

A server of a P/D pair has a role (`serving/disagg.py`) that adds SGLang's
disaggregation queues around the same loop: at each step boundary the role
runs first (a decode server preallocates KV and merges transferred
requests), and after each prefill step it sees which KV became ready.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..costs.step_model import DecodeSpan, StepCostModel
from ..engine.events import EventQueue
from .request import Request, RequestState
from .scheduler import ExtendBatch, Scheduler, SchedulerConfig
from .step_loop import SpanRun, StepLoop
from .target import RoutingTarget


class WorkerObserver(Protocol):
    """What a worker reports to metrics and the cluster (all times simulated seconds)."""

    def on_first_token(self, req: Request, now: float) -> None: ...
    def on_finish(self, req: Request, now: float) -> None: ...
    def on_reject(self, req: Request, now: float, reason: str) -> None: ...
    def on_extend_step(self, worker: "Worker", batch: ExtendBatch, start: float, duration: float) -> None: ...
    def on_decode_span(self, worker: "Worker", span: DecodeSpan, steps: int, batch_size: int,
                       start: float, fresh_token_times: list[float]) -> None:
        """A decode span ran. Running requests last emitted a token at `worker.last_decode_end`,
        except those that joined since, whose last (prefill) token times are `fresh_token_times`."""
    def on_retract(self, worker: "Worker", reqs: list[Request], now: float) -> None: ...
    def on_step_boundary(self, worker: "Worker", now: float) -> None: ...


@dataclass
class BoundaryJoins:
    """Requests a server role put into the running batch at a step boundary."""

    first_tokens: list[Request] = field(default_factory=list)
    """Transferred requests merged now: their first token reaches the client now."""
    resumed: list[Request] = field(default_factory=list)
    """Retracted requests back in the batch."""
    finished: list[Request] = field(default_factory=list)
    """Merged requests whose first token was also their last."""


class ServerRole(Protocol):
    """P/D hooks of a server; an aggregated server has none (see `serving/disagg.py`)."""

    @property
    def num_queued(self) -> int:
        """Requests in the role's queues that wait for this server (not counted by the scheduler)."""
    def could_admit(self, worker: "Worker") -> bool:
        """Check whether new work could start at the next step boundary (then a decode span is cut)."""
    def before_batch(self, worker: "Worker", now: float) -> BoundaryJoins: ...
    def after_extend(self, worker: "Worker", batch: ExtendBatch, now: float) -> None: ...


@dataclass
class _Extend:
    batch: ExtendBatch
    start: float
    end: float


@dataclass
class _Span(SpanRun):
    batch_size: int
    ctx0: int


class Worker(StepLoop, RoutingTarget):
    """An SGLang server: one scheduler and one forward-step law, driven by the event queue."""

    def __init__(self, worker_id: int, config: SchedulerConfig, cost: StepCostModel,
                 engine: EventQueue, observer: WorkerObserver, pool: str = "default",
                 role: ServerRole | None = None) -> None:
        super().__init__(engine)
        self.worker_id = worker_id
        self.pool = pool
        self.role = role
        self.scheduler = Scheduler(config)
        self.cost = cost
        self.observer = observer
        self.busy_s = 0.0
        self.last_decode_end: float | None = None
        """End of the last step that decoded (inter-token gaps of running requests start there)."""
        self.fresh_token_times: list[float] = []
        """Prefill-token times of requests that joined the running batch since the last decode."""

    # ----- arrivals -----

    def _reject(self, req: Request, now: float, reason: str) -> None:
        self.observer.on_reject(req, now, reason)

    def notify_new_work(self, now: float) -> None:
        """Wake an idle server, or end its decode span at the step in flight if work could start."""
        self._on_new_work(now, self.could_admit)

    # ----- the event loop -----

    def _finish(self, current: _Extend | _Span, now: float) -> None:
        if isinstance(current, _Extend):
            self._finish_extend(current, now)
        else:
            self._finish_span(current, now)

    def _run_next(self, now: float) -> None:
        sched = self.scheduler
        if self.role is not None:
            self._apply_joins(self.role.before_batch(self, now), now)
        batch = sched.get_new_batch_prefill(now)
        if batch is not None:
            shape = self.cost.extend_shape(batch.items, batch.num_mixed_decode, batch.mixed_ctx_tokens)
            duration = self.cost.step_time(shape)
            self._start(_Extend(batch, now, now + duration), now + duration)
            self.observer.on_extend_step(self, batch, now, duration)
            return
        retracted = sched.update_running_batch(now)
        if retracted:
            note_last_tokens(self, retracted)
            self.observer.on_retract(self, retracted, now)
        if sched.num_running:
            steps = min(sched.steps_to_next_finish(), sched.decode_steps_kv_allows())
            batch_size = sched.num_running
            span = self.cost.decode_span(batch_size, sched.ctx_sum, steps)
            self._start(_Span(span, now, steps, batch_size, sched.ctx_sum), now + span.duration(steps))
            return
        # A prefill server may wait for its KV transfers to free slots; each completed transfer
        # wakes it again. Any other server with queued work and nothing running is stuck.
        if (sched.waiting or sched.chunked_req is not None) and not sched.sending:
            raise RuntimeError(f"server {self.worker_id} went idle with {len(sched.waiting)} requests waiting "
                               f"and chunked request {sched.chunked_req} "
                               f"(batch_is_full={sched.batch_is_full}, free KV {sched.free_tokens})")
        sched.on_idle()

    def _apply_joins(self, joins: BoundaryJoins, now: float) -> None:
        apply_joins(self, joins, now, self.observer)

    def _finish_extend(self, cur: _Extend, now: float) -> None:
        self.busy_s += now - cur.start
        finish_extend_batch(self, cur.batch, now, self.observer)
        if self.role is not None:
            self.role.after_extend(self, cur.batch, now)
        self.observer.on_step_boundary(self, now)

    def _finish_span(self, cur: _Span, now: float) -> None:
        self.busy_s += now - cur.start
        self.observer.on_decode_span(self, cur.span, cur.steps, cur.batch_size, cur.start,
                                     self.fresh_token_times)
        self.fresh_token_times = []
        finished = self.scheduler.commit_decode(cur.steps, now)
        self.last_decode_end = now
        for req in finished:
            self.observer.on_finish(req, now)
        self.observer.on_step_boundary(self, now)


def finish_extend_batch(worker: Any, batch: ExtendBatch, now: float, observer: WorkerObserver) -> None:
    """Commit a finished prefill step of `worker` (a `Worker` or a DP rank) and report its tokens.

    Requests that move on to decode remember the time of their prefill token,
    so their first inter-token gap is measured from it.
    """
    first_tokens, finished = worker.scheduler.commit_extend(batch, now)
    if batch.num_mixed_decode:
        worker.last_decode_end = now
        worker.fresh_token_times.clear()
    for req, _, _ in batch.items:
        if req.state is RequestState.RUNNING:
            worker.fresh_token_times.append(now)
    for req in first_tokens:
        observer.on_first_token(req, now)
    for req in finished:
        observer.on_finish(req, now)


def note_last_tokens(worker: Any, retracted: list[Request]) -> None:
    """Set each retracted request's `last_token_at` to the time of its last output token.

    That is its prefill (or merge) time, or the end of the worker's last decode
    step when it decoded since. The token its re-prefill emits is timed from there.
    """
    last_decode = worker.last_decode_end
    if last_decode is None:
        return
    for req in retracted:
        if req.last_token_at is None or req.last_token_at < last_decode:
            req.last_token_at = last_decode


def apply_joins(worker: Any, joins: BoundaryJoins, now: float, observer: WorkerObserver) -> None:
    """Report the requests a P/D role put into the running batch of `worker` (a `Worker` or a DP rank).

    Merged requests stream their first token now; they and resumed requests
    remember their last token time, so their next inter-token gap starts there.
    """
    for req in joins.first_tokens:
        if req.state is RequestState.RUNNING:
            worker.fresh_token_times.append(now)
        observer.on_first_token(req, now)
    for req in joins.resumed:
        worker.fresh_token_times.append(req.last_token_at if req.last_token_at is not None else now)
    for req in joins.finished:
        observer.on_finish(req, now)
