"""What a router sees of a server (or of one DP-attention rank): load, admission and submit.

`Worker` (one SGLang server) and `DPRank` (one attention rank of a
DP-attention server) are both routing targets with their own scheduler;
this base class holds the behaviour they share. Subclasses provide
`scheduler`, `role`, `worker_id`, `notify_new_work(now)` and `_reject`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .request import Request

if TYPE_CHECKING:
    from .scheduler import Scheduler


class RoutingTarget:
    """Load signals, admission checks and request intake of one scheduler."""

    scheduler: "Scheduler"
    role: object | None
    worker_id: int

    @property
    def num_queued(self) -> int:
        sched = self.scheduler
        queued = len(sched.waiting) + (1 if sched.chunked_req is not None else 0)
        return queued + (self.role.num_queued if self.role is not None else 0)

    @property
    def num_running(self) -> int:
        return self.scheduler.num_running

    @property
    def load(self) -> int:
        """Requests queued or running (SGLang's router counts in-flight requests)."""
        return self.num_queued + self.scheduler.num_running

    def could_admit(self) -> bool:
        """Check whether new work could start here at the next step boundary."""
        if self.role is not None:
            return self.role.could_admit(self)
        return self.could_admit_prefill()

    def could_admit_prefill(self) -> bool:
        """Check whether a queued request could join: the running batch is neither full nor at its cap."""
        sched = self.scheduler
        return not sched.batch_is_full and sched.num_running < sched.config.max_running_requests

    def submit(self, req: Request, now: float) -> bool:
        """Queue a request; return False if the server rejects it as too long."""
        cfg = self.scheduler.config
        req.worker_id = self.worker_id
        req.server_arrived_at = now
        if req.input_len > cfg.max_req_input_len:
            self._reject(req, now, "input longer than the server accepts")
            return False
        max_output = cfg.max_req_len - req.input_len - 1
        if req.output_len > max_output:
            req.output_len = max(max_output, 1)
        self.scheduler.add_request(req)
        self.notify_new_work(now)
        return True

    def notify_new_work(self, now: float) -> None:
        raise NotImplementedError

    def _reject(self, req: Request, now: float, reason: str) -> None:
        raise NotImplementedError
