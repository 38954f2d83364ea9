"""A DP-attention server: D attention ranks with their own schedulers, stepping in lock-step.

SGLang's --enable-dp-attention gives every DP rank its own scheduler and KV
pool. Before each forward the ranks all-gather their token counts and
forward modes. A rank with nothing to run joins with an idle batch, and the
MoE/MLP runs on the tokens of all ranks. A step of the server therefore
lasts as long as its slowest rank (`forward.dp_step_time`).

Each rank forms its batch like a standalone server: prefill first, else
decode. In a P/D pool each rank has its own prefill or decode role
(`disagg.py`), run at every lock-step boundary as a standalone server runs
it. When some rank prefills, the others decode one step (or idle) beside it.
When no rank has a prefill to run, the server decodes a closed-form span of
lock-step steps that ends at the first completion or KV shortfall on any
rank; an arrival that its rank could admit cuts the span at the step in
flight, as for a single server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..costs.step_model import DecodeSpan, StepCostModel
from ..engine.events import EventQueue
from .request import Request
from .scheduler import ExtendBatch, Scheduler, SchedulerConfig
from .step_loop import SpanRun, StepLoop
from .target import RoutingTarget
from .worker import ServerRole, WorkerObserver, apply_joins, finish_extend_batch, note_last_tokens


class DPRank(RoutingTarget):
    """One attention rank of a DP-attention server: a scheduler, a KV pool and a routing target."""

    def __init__(self, server: "DPAttentionServer", worker_id: int, config: SchedulerConfig, pool: str) -> None:
        self.server = server
        self.worker_id = worker_id
        self.pool = pool
        self.scheduler = Scheduler(config)
        self.role: ServerRole | None = None
        """The rank's P/D role when its server belongs to a prefill or decode pool."""
        self.busy_s = 0.0
        self.last_decode_end: float | None = None
        """End of the last step in which this rank decoded."""
        self.fresh_token_times: list[float] = []
        """Prefill-token times of requests that joined the running batch since the last decode."""

    def notify_new_work(self, now: float) -> None:
        """Wake the server, or cut its decode span, for new work on this rank."""
        self.server.on_new_work(self, now)

    def _reject(self, req: Request, now: float, reason: str) -> None:
        self.server.observer.on_reject(req, now, reason)


@dataclass
class _LockStep:
    """One lock-step forward in which at least one rank prefills."""

    start: float
    duration: float
    extends: list[tuple[DPRank, ExtendBatch]]
    decodes: list[tuple[DPRank, int]]
    """Ranks that decode one step beside the prefills, with their batch sizes."""


@dataclass
class _LockSpan(SpanRun):
    """A run of lock-step decode steps of every rank with requests."""

    decodes: list[tuple[DPRank, int]] = field(default_factory=list)


class DPAttentionServer(StepLoop):
    """D attention ranks sharing one step law, driven by the event queue in lock-step."""

    def __init__(self, first_worker_id: int, dp: int, config: SchedulerConfig, cost: StepCostModel,
                 engine: EventQueue, observer: WorkerObserver, pool: str = "default") -> None:
        super().__init__(engine)
        self.ranks = [DPRank(self, first_worker_id + i, config, pool) for i in range(dp)]
        self.cost = cost
        self.observer = observer
        self.pool = pool

    def on_new_work(self, rank: DPRank, now: float) -> None:
        """Wake the server for a request on `rank`, or cut a decode span the rank could join."""
        self._on_new_work(now, rank.could_admit)

    # ----- the lock-step loop -----

    def _finish(self, current: _LockStep | _LockSpan, now: float) -> None:
        if isinstance(current, _LockStep):
            self._finish_step(current, now)
        else:
            self._finish_span(current, now)

    def _run_next(self, now: float) -> None:
        for rank in self.ranks:
            if rank.role is not None:
                apply_joins(rank, rank.role.before_batch(rank, now), now, self.observer)
        batches = [rank.scheduler.get_new_batch_prefill(now) for rank in self.ranks]
        if any(batch is not None for batch in batches):
            self._run_extend_step(now, batches)
            return
        decodes = self._decoding_ranks(now, set())
        if not decodes:
            for rank in self.ranks:
                sched = rank.scheduler
                # A prefill rank may wait for its KV transfers to free slots; each completed
                # transfer wakes the server again. Any other rank with queued work is stuck.
                if sched.waiting and not sched.sending:
                    raise RuntimeError(f"DP rank {rank.worker_id} went idle with {len(sched.waiting)} requests "
                                       f"waiting (batch_is_full={sched.batch_is_full}, free KV {sched.free_tokens})")
                sched.on_idle()
            return
        steps = min(min(rank.scheduler.steps_to_next_finish(), rank.scheduler.decode_steps_kv_allows())
                    for rank, _ in decodes)
        sizes = {rank.worker_id: (rank.scheduler.num_running, rank.scheduler.ctx_sum) for rank, _ in decodes}
        span = self.cost.dp_decode_span([sizes.get(rank.worker_id, (0, 0)) for rank in self.ranks], steps)
        self._start(_LockSpan(span, now, steps, decodes), now + span.duration(steps))

    def _decoding_ranks(self, now: float, skip: set[int]) -> list[tuple[DPRank, int]]:
        """Check KV for a decode step on each rank not in `skip` (retracting if needed);
        return the ranks that decode, with their batch sizes."""
        decodes = []
        for rank in self.ranks:
            if rank.worker_id in skip:
                continue
            sched = rank.scheduler
            retracted = sched.update_running_batch(now)
            if retracted:
                note_last_tokens(rank, retracted)
                self.observer.on_retract(rank, retracted, now)
            if sched.num_running:
                decodes.append((rank, sched.num_running))
        return decodes

    def _run_extend_step(self, now: float, batches: list[ExtendBatch | None]) -> None:
        extends = [(rank, batch) for rank, batch in zip(self.ranks, batches) if batch is not None]
        decodes = self._decoding_ranks(now, {rank.worker_id for rank, _ in extends})
        shapes = []
        by_rank = {rank.worker_id: batch for rank, batch in extends}
        decode_sizes = {rank.worker_id: bs for rank, bs in decodes}
        for rank in self.ranks:
            batch = by_rank.get(rank.worker_id)
            if batch is not None:
                shapes.append(self.cost.extend_shape(batch.items, batch.num_mixed_decode, batch.mixed_ctx_tokens))
            elif rank.worker_id in decode_sizes:
                shapes.append(self.cost.decode_shape(decode_sizes[rank.worker_id], rank.scheduler.ctx_sum))
            else:
                shapes.append(self.cost.idle_shape())
        self.cost.link_dp_shapes(shapes)
        duration = self.cost.dp_step_time(shapes)
        self._start(_LockStep(now, duration, extends, decodes), now + duration)
        for rank, batch in extends:
            self.observer.on_extend_step(rank, batch, now, duration)

    # ----- step ends -----

    def _finish_step(self, cur: _LockStep, now: float) -> None:
        # Every rank's GPUs work through a lock-step forward, idle batches included.
        for rank in self.ranks:
            rank.busy_s += now - cur.start
        for rank, batch in cur.extends:
            finish_extend_batch(rank, batch, now, self.observer)
            if rank.role is not None:
                rank.role.after_extend(rank, batch, now)
        one_step = DecodeSpan([(0, 1, cur.duration, 0.0)])
        for rank, batch_size in cur.decodes:
            self._commit_decode(rank, one_step, 1, batch_size, cur.start, now)
        for rank in self.ranks:
            self.observer.on_step_boundary(rank, now)

    def _finish_span(self, cur: _LockSpan, now: float) -> None:
        for rank in self.ranks:
            rank.busy_s += now - cur.start
        for rank, batch_size in cur.decodes:
            self._commit_decode(rank, cur.span, cur.steps, batch_size, cur.start, now)
        for rank in self.ranks:
            self.observer.on_step_boundary(rank, now)

    def _commit_decode(self, rank: DPRank, span: DecodeSpan, steps: int, batch_size: int, start: float,
                       now: float) -> None:
        self.observer.on_decode_span(rank, span, steps, batch_size, start, rank.fresh_token_times)
        rank.fresh_token_times = []
        finished = rank.scheduler.commit_decode(steps, now)
        rank.last_decode_end = now
        for req in finished:
            self.observer.on_finish(req, now)
