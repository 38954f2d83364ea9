"""Prefill and decode roles of a server under P/D disaggregation (SGLang's `disaggregation/`).

Life of a request, as SGLang v0.5 runs it (`disaggregation/prefill.py`,
`disaggregation/decode.py`), and where this module takes part:

1. The router picks a (prefill, decode) pair and sends the request to both.
2. Decode, PreallocQueue (`DecodeRole.enqueue`): at each step boundary the
   decode server reserves KV for the prompt, first come first served, once
   its budget allows (`DecodeRole.before_batch`). Until then the prefill
   server cannot start the request (its bootstrap waits for decode).
3. Prefill: the request is queued, prefilled (chunked, with the prefill
   server's own radix cache) and its first token sampled. `PrefillRole`
   reports each chunk's KV as ready, so the cluster sends it while later
   chunks compute, as SGLang's `send_kv_chunk` does.
4. The KV crosses the link. The prefill server keeps the request's KV until
   the transfer completes, then keeps the prompt in its radix tree and frees
   the rest.
5. Decode, TransferQueue -> WaitingQueue -> running batch: at its next step
   boundary the decode server merges the transferred request into the
   running batch without a forward (a "prebuilt" batch) and streams the
   first token to the client. That instant is the client's first token.

Decode budget (SGLang `DecodePreallocQueue.pop_preallocated`, without the
decode-side radix cache, which is off by default): with R the running
requests, retractable = sum over R of (prompt + outputs so far) and
n_active = |R| + requests preallocated or transferred but not yet merged,

    allocatable = available KV - max(num_reserved_decode_tokens x n_active,
                                     max over R of (min(max_new, 4096) + prompt) - retractable)
                  - sum over retracted requests of (their KV + num_reserved_decode_tokens)

and the head of the queue is preallocated when
max(prompt + num_reserved_decode_tokens, prompt + min(max_new, 4096) - retractable) <= allocatable.
Preallocated and transferred requests do not count against
max_running_requests; only the merge into the running batch does.
NOTE: SGLang also caps preallocated requests by its request-slot and
metadata-buffer pools; those caps are not modelled.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from .prefill_adder import CLIP_MAX_NEW_TOKENS
from .request import Request, RequestState
from .scheduler import ExtendBatch, Scheduler
from .worker import BoundaryJoins

if TYPE_CHECKING:
    from .worker import Worker

NUM_RESERVED_DECODE_TOKENS = 512
"""SGLANG_NUM_RESERVED_DECODE_TOKENS: decode tokens kept free per active request on a decode server."""

KVReadyFn = Callable[["Worker", Request, int, bool, float], None]
"""Called with (prefill worker, request, prompt tokens whose KV is computed, last piece, now)."""
PreallocatedFn = Callable[[Request, float], None]
"""Called when a decode server has reserved KV for a request (its prefill may start)."""


class PrefillRole:
    """A prefill server's role: report KV as chunks finish; nothing joins a running batch."""

    num_queued = 0

    def __init__(self, on_kv_ready: KVReadyFn) -> None:
        self.on_kv_ready = on_kv_ready

    def could_admit(self, worker: "Worker") -> bool:
        return worker.could_admit_prefill()

    def before_batch(self, worker: "Worker", now: float) -> BoundaryJoins:
        return BoundaryJoins()

    def after_extend(self, worker: "Worker", batch: ExtendBatch, now: float) -> None:
        """Report the KV each request of a finished prefill step has ready to send."""
        chunked = worker.scheduler.chunked_req
        for req, _, _ in batch.items:
            if req.state is RequestState.TRANSFERRING:
                self.on_kv_ready(worker, req, req.input_len, True, now)
            elif req is chunked:
                self.on_kv_ready(worker, req, min(req.num_computed_tokens, req.input_len), False, now)


class DecodeRole:
    """A decode server's role: the prealloc, transfer and waiting queues around its scheduler."""

    def __init__(self, on_preallocated: PreallocatedFn,
                 num_reserved_decode_tokens: int = NUM_RESERVED_DECODE_TOKENS) -> None:
        self.on_preallocated = on_preallocated
        self.num_reserved_decode_tokens = num_reserved_decode_tokens
        self.prealloc_queue: deque[Request] = deque()
        self.transferring: dict[int, Request] = {}
        """Preallocated requests whose KV has not fully arrived."""
        self.ready: deque[Request] = deque()
        """Requests with their KV here (transferred or resumed), waiting for a batch slot."""
        self._resumed: set[int] = set()

    @property
    def num_queued(self) -> int:
        return len(self.prealloc_queue) + len(self.ready)

    # ----- entries from the cluster -----

    def enqueue(self, worker: "Worker", req: Request, now: float) -> None:
        """Add a request routed here to the prealloc queue."""
        req.state = RequestState.WAITING
        self.prealloc_queue.append(req)
        worker.notify_new_work(now)

    def mark_transferred(self, worker: "Worker", req: Request, now: float) -> None:
        """Mark the request's KV as arrived, so it may merge at the next step boundary."""
        del self.transferring[req.rid]
        self.ready.append(req)
        worker.notify_new_work(now)

    # ----- ServerRole -----

    def could_admit(self, worker: "Worker") -> bool:
        sched = worker.scheduler
        if self.ready and sched.num_running < sched.config.max_running_requests:
            return True
        if self.prealloc_queue and not sched.retracted:
            return self._fits(sched, self.prealloc_queue[0])
        return False

    def before_batch(self, worker: "Worker", now: float) -> BoundaryJoins:
        """SGLang's `process_decode_queue` and prebuilt merge, run before each decode step."""
        sched = worker.scheduler
        self._resume_retracted(sched)
        if not sched.retracted:
            self._preallocate(sched, now)
        joins = self._merge(sched, now)
        if joins.finished and not sched.retracted:
            # One-token requests finish at the merge and free their KV. SGLang's loop would
            # preallocate on its next pass, at once; without this retry an idle server stalls.
            self._preallocate(sched, now)
        return joins

    def after_extend(self, worker: "Worker", batch: ExtendBatch, now: float) -> None:
        raise RuntimeError(f"decode server {worker.worker_id} ran a prefill step")

    # ----- steps -----

    def _resume_retracted(self, sched: Scheduler) -> None:
        """Load offloaded requests back, in retraction order, while KV allows."""
        if not sched.retracted:
            return
        budget = self._allocatable(sched, count_retracted=False)
        for req in list(sched.retracted):
            required = req.num_computed_tokens + self.num_reserved_decode_tokens
            if required > budget:
                break
            budget -= required
            sched.resume_retracted(req)
            self._resumed.add(req.rid)
            self.ready.append(req)

    def _preallocate(self, sched: Scheduler, now: float) -> None:
        queue = self.prealloc_queue
        while queue and self._fits(sched, queue[0]):
            req = queue.popleft()
            sched.preallocate(req, req.input_len)
            self.transferring[req.rid] = req
            self.on_preallocated(req, now)

    def _merge(self, sched: Scheduler, now: float) -> BoundaryJoins:
        """Merge ready requests in order while the running batch has room.

        A request whose only token came from the prefill finishes at the merge
        and takes no slot, so the loop goes on (SGLang merges more on its next
        pass, at the same instant).
        """
        joins = BoundaryJoins()
        while self.ready and sched.num_running < sched.config.max_running_requests:
            req = self.ready.popleft()
            finished = sched.merge_prebuilt(req, now)
            if req.rid in self._resumed:
                self._resumed.discard(req.rid)
                joins.resumed.append(req)
                continue
            req.first_token_at = now
            req.last_token_at = now
            joins.first_tokens.append(req)
            if finished:
                joins.finished.append(req)
        return joins

    # ----- budget -----

    def _fits(self, sched: Scheduler, req: Request) -> bool:
        """Check whether `req` can be preallocated now (SGLang's memory estimation)."""
        retractable = sched.ctx_sum + sched.num_running
        required = req.input_len + self.num_reserved_decode_tokens
        with_outputs = req.input_len + min(req.output_len, CLIP_MAX_NEW_TOKENS) - retractable
        return max(required, with_outputs) <= self._allocatable(sched, retractable=retractable)

    def _allocatable(self, sched: Scheduler, count_retracted: bool = True,
                     retractable: int | None = None) -> int:
        """KV tokens preallocation may use, after reserving decode room for active requests."""
        if retractable is None:
            retractable = sched.ctx_sum + sched.num_running
        need_single = 0
        if sched.running:
            need_single = max(min(r.output_len, CLIP_MAX_NEW_TOKENS) + r.input_len
                              for r in sched.running.values()) - retractable
        num_active = sched.num_running + len(self.transferring) + len(self.ready)
        reserved = self.num_reserved_decode_tokens * num_active
        allocatable = sched.available_tokens() - max(reserved, need_single)
        if count_retracted:
            for req in sched.retracted:
                allocatable -= req.num_computed_tokens + self.num_reserved_decode_tokens
        return allocatable
