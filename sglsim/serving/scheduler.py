"""Batch formation of one SGLang server: waiting queue, prefill admission, decode, retraction.

The scheduler owns the KV pool counters, the radix cache and the running
batch, and decides what the next forward step runs. It has no notion of time
cost: the worker requests a batch, times the batch with the step law, and
hands the finished batch back (`commit_extend`, `commit_decode`).

Decode steps are counted per server (`decode_step`), and each running request
remembers the count at which it joined, so k decode steps advance every
running request at once without touching them: its outputs are
`num_output_tokens + decode_step - decode_join_step` until it is materialised.

Mirrors SGLang v0.5 `managers/scheduler.py` and `schedule_batch.py`:
prefill first, then decode; `batch_is_full` stops admission until a running
request leaves; `check_decode_mem` before each decode step; retraction of the
request with the fewest outputs (longest prompt on ties) when KV runs out.

Under prefill/decode disaggregation (SGLang's `--disaggregation-mode`) the
same scheduler runs both sides, with the differences of SGLang's
`disaggregation/prefill.py` and `decode.py`:
- prefill: admission charges one decode token per request (SGLang sets
  max_new_tokens to 1 there), and a request whose prefill is done leaves for
  `sending`, holding its KV until `release_sent` (transfer complete);
- decode: requests never prefill. KV is reserved by `preallocate` before the
  prefill runs, `merge_prebuilt` puts a transferred request straight into the
  running batch, and a retracted request waits in `retracted` with its KV
  offloaded (not recomputed) until `resume_retracted`.
These hooks live in `scheduler_pd.py`; the queues around them in `disagg.py`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .policy import order_waiting_queue
from .prefill_adder import CLIP_MAX_NEW_TOKENS, AddReqResult, PrefillAdder
from .radix_cache import RadixCache
from .request import Request, RequestState
from .scheduler_cache import RadixCacheHooks
from .scheduler_pd import DisaggregationHooks
from .scheduler_retract import RETRACT_DECODE_STEPS, RetractionHooks

INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO_FACTOR = 0.14
NEW_TOKEN_RATIO_DECAY_STEPS = 600
DISAGGREGATION_MODES = ("null", "prefill", "decode")


@dataclass(frozen=True)
class SchedulerConfig:
    """Resolved SGLang scheduler knobs of one server."""

    max_total_tokens: int
    """KV-pool capacity in tokens (SGLang's max_total_num_tokens)."""
    chunked_prefill_size: int | None
    """None when chunked prefill is off."""
    max_prefill_tokens: int
    max_running_requests: int
    schedule_policy: str = "fcfs"
    schedule_conservativeness: float = 1.0
    page_size: int = 1
    enable_mixed_chunk: bool = False
    disable_radix_cache: bool = False
    context_len: int = 131072
    disaggregation_mode: str = "null"
    """SGLang's --disaggregation-mode: null (aggregated), prefill or decode."""

    def __post_init__(self) -> None:
        if self.disaggregation_mode not in DISAGGREGATION_MODES:
            raise RuntimeError(f"unknown disaggregation_mode {self.disaggregation_mode!r}; "
                               f"expected one of {', '.join(DISAGGREGATION_MODES)}")

    @property
    def max_req_len(self) -> int:
        """Maximum prompt plus output of one request (SGLang's max_req_len)."""
        return min(self.context_len - 1, self.max_total_tokens - 1)

    @property
    def max_req_input_len(self) -> int:
        return self.max_req_len - 5


@dataclass
class ExtendBatch:
    """A prefill (extend) step: new tokens of admitted requests, maybe mixed with decodes."""

    items: list[tuple[Request, int, int]]
    """(request, cached or already-computed prefix tokens, new tokens this step)."""
    num_mixed_decode: int = 0
    """Running requests that also decode one token in this step (mixed chunk)."""
    mixed_ctx_tokens: int = 0


class Scheduler(RadixCacheHooks, RetractionHooks, DisaggregationHooks):
    """State and batch formation of one server's scheduler."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.tree = RadixCache(disabled=config.disable_radix_cache)
        self.free_tokens = config.max_total_tokens
        self.private_tokens = 0
        """KV slots held by requests and not (yet) owned by the radix tree."""
        self.waiting: list[Request] = []
        self.running: dict[int, Request] = {}
        self.chunked_req: Request | None = None
        self.batch_is_full = False
        self.decode_step = 0
        self.ctx_sum = 0
        """Sum over running requests of their KV length (context read by decode attention)."""
        self.sum_remaining = 0
        """Sum over running requests of outputs still to generate."""
        self._long_remaining: set[int] = set()
        self._finish_heap: list[tuple[int, int]] = []
        init = min(INIT_NEW_TOKEN_RATIO * config.schedule_conservativeness, 1.0)
        self.init_new_token_ratio = init
        self.min_new_token_ratio = min(init * MIN_NEW_TOKEN_RATIO_FACTOR, 1.0)
        self.new_token_ratio_decay = (init - self.min_new_token_ratio) / NEW_TOKEN_RATIO_DECAY_STEPS
        self.new_token_ratio = init
        self.num_retractions = 0
        self._inflight: ExtendBatch | None = None
        """The prefill batch formed but not yet committed (its KV is already allocated)."""
        self._init_disaggregation()

    # ----- queue -----

    def add_request(self, req: Request) -> None:
        req.state = RequestState.WAITING
        self.waiting.append(req)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running or self.chunked_req)

    # ----- KV helpers -----

    def _allocate(self, tokens: int) -> None:
        if tokens > self.free_tokens:
            self.free_tokens += self.tree.evict(tokens - self.free_tokens)
            if tokens > self.free_tokens:
                raise RuntimeError(f"KV pool exhausted: need {tokens} tokens, {self.free_tokens} free "
                                   f"after eviction ({self.config.max_total_tokens} total)")
        self.free_tokens -= tokens
        self.private_tokens += tokens

    def _release(self, tokens: int) -> None:
        self.free_tokens += tokens
        self.private_tokens -= tokens

    def available_tokens(self) -> int:
        """Free KV plus what eviction could free."""
        return self.free_tokens + self.tree.evictable_tokens

    def running_reserved_tokens(self) -> float:
        """Decode tokens the running batch may still need: sum of min(remaining, 4096)."""
        clipped_excess = 0
        for rid in list(self._long_remaining):
            req = self.running.get(rid)
            remaining = req.output_len - self.outputs_of(req) if req is not None else 0
            if remaining <= CLIP_MAX_NEW_TOKENS:
                self._long_remaining.discard(rid)
            else:
                clipped_excess += remaining - CLIP_MAX_NEW_TOKENS
        return self.sum_remaining - clipped_excess

    # ----- per-request decode bookkeeping -----

    def outputs_of(self, req: Request) -> int:
        return req.num_output_tokens + self.decode_step - req.decode_join_step

    def _materialize(self, req: Request) -> None:
        """Bring a running request's counters up to the current decode step."""
        advanced = self.decode_step - req.decode_join_step
        if advanced:
            req.num_output_tokens += advanced
            req.num_computed_tokens += advanced
            req.decode_join_step = self.decode_step

    def _join_running(self, req: Request) -> None:
        req.state = RequestState.RUNNING
        req.decode_join_step = self.decode_step
        self.running[req.rid] = req
        self.ctx_sum += req.num_computed_tokens
        remaining = req.output_len - req.num_output_tokens
        self.sum_remaining += remaining
        if remaining > CLIP_MAX_NEW_TOKENS:
            self._long_remaining.add(req.rid)
        heapq.heappush(self._finish_heap, (self.decode_step + remaining, req.rid))

    def _leave_running(self, req: Request) -> None:
        self._materialize(req)
        del self.running[req.rid]
        self.ctx_sum -= req.num_computed_tokens
        self.sum_remaining -= req.output_len - req.num_output_tokens
        self._long_remaining.discard(req.rid)
        self.batch_is_full = False

    def steps_to_next_finish(self) -> int:
        """Decode steps until the first running request emits its last token."""
        heap = self._finish_heap
        while heap:
            step, rid = heap[0]
            req = self.running.get(rid)
            if req is not None and req.decode_join_step + req.output_len - req.num_output_tokens == step:
                return step - self.decode_step
            heapq.heappop(heap)
        raise RuntimeError("steps_to_next_finish called with an empty running batch")

    def decode_steps_kv_allows(self) -> int:
        """Decode steps the KV pool can feed before `check_decode_mem` fails (page size 1 rule)."""
        return self.available_tokens() // max(len(self.running), 1)

    # ----- prefill -----

    def get_new_batch_prefill(self, now: float) -> ExtendBatch | None:
        """Form the next prefill batch, or None when nothing can be admitted."""
        cfg = self.config
        if cfg.disaggregation_mode == "prefill":
            # A prefill server has no running batch whose shrinking would clear the flag, so SGLang's
            # prefill event loop resets it before every batch (else it hangs under load).
            self.batch_is_full = False
        if (self.batch_is_full or not self.waiting) and self.chunked_req is None:
            return None
        running_bs = len(self.running)
        if running_bs >= cfg.max_running_requests:
            self.batch_is_full = True
            return None
        mixed = cfg.enable_mixed_chunk and cfg.chunked_prefill_size is not None and running_bs > 0 \
            and self.available_tokens() >= running_bs
        mixed_tokens = running_bs if mixed else 0
        available = self.available_tokens()
        reserved = self.running_reserved_tokens() * self.new_token_ratio
        chunk_budget = None if cfg.chunked_prefill_size is None else cfg.chunked_prefill_size - mixed_tokens
        clip = 1 if cfg.disaggregation_mode == "prefill" else CLIP_MAX_NEW_TOKENS
        adder = PrefillAdder(cfg.page_size, available - reserved - mixed_tokens, available - mixed_tokens,
                             cfg.max_prefill_tokens - mixed_tokens, chunk_budget, reserve_page=running_bs > 0,
                             max_new_tokens_clip=clip)
        prefixes: dict[int, int] = {}
        chunked_continues = False
        if self.chunked_req is not None:
            prefixes[self.chunked_req.rid] = self.chunked_req.num_computed_tokens
            chunked_continues = adder.add_chunked_req(self.chunked_req)
        self.waiting = order_waiting_queue(cfg.schedule_policy, self.waiting, self.tree, now)
        for req in self.waiting:
            if running_bs + len(adder.can_run) >= cfg.max_running_requests:
                self.batch_is_full = True
                break
            prefix, node = self._match(req, now)
            if not adder.fits_total(req, prefix):
                self.batch_is_full = True
                break
            before = self.tree.protected_tokens
            self.tree.inc_lock_ref(node)
            num_admitted = len(adder.can_run)
            result = adder.add_one_req(req, prefix, self.tree.protected_tokens - before)
            if len(adder.can_run) > num_admitted:
                self._admit(req, prefix, node, now)
            else:
                self.tree.dec_lock_ref(node)
            if result is not AddReqResult.CONTINUE:
                if result is AddReqResult.NO_TOKEN:
                    self.batch_is_full = True
                break
        if not adder.can_run:
            return None
        admitted = {req.rid for req, _ in adder.can_run}
        self.waiting = [r for r in self.waiting if r.rid not in admitted]
        if self.chunked_req is not None and not chunked_continues:
            self.chunked_req.state = RequestState.WAITING
            self.chunked_req = None
        if adder.new_chunked_req is not None:
            self.chunked_req = adder.new_chunked_req
            self.chunked_req.state = RequestState.PREFILLING
        items = []
        for req, extend_len in adder.can_run:
            prefix = prefixes.get(req.rid, req.prefix_len)
            self._allocate(extend_len)
            items.append((req, prefix, extend_len))
        batch = ExtendBatch(items)
        self._inflight = batch
        if mixed:
            batch.num_mixed_decode = running_bs
            batch.mixed_ctx_tokens = self.ctx_sum
        return batch

    def _admit(self, req: Request, prefix: int, node: object, now: float) -> None:
        """Bind an admitted request to its locked cache prefix (the lock is already taken)."""
        if req.last_node is not None:
            self.tree.dec_lock_ref(req.last_node)
        req.last_node = node
        req.prefix_len = prefix
        req.num_computed_tokens = prefix
        if not req.admitted_once:
            req.admitted_once = True
            req.num_cached_tokens = prefix
            req.first_scheduled_at = now

    def commit_extend(self, batch: ExtendBatch, now: float) -> tuple[list[Request], list[Request]]:
        """Apply a finished prefill step; return (requests given a first token, finished requests)."""
        self._inflight = None
        if batch.num_mixed_decode:
            self._advance_decode(1)
        first_tokens: list[Request] = []
        finished: list[Request] = self._pop_finished(now) if batch.num_mixed_decode else []
        for req, _, extend_len in batch.items:
            req.num_computed_tokens += extend_len
            if req is self.chunked_req:
                # SGLang frees the chunked request's slot between chunks: admission reopens.
                self.cache_unfinished_req(req, now)
                self.batch_is_full = False
                continue
            if req.num_computed_tokens < req.fill_len:
                raise RuntimeError(f"request {req.rid} left prefill with {req.num_computed_tokens} of "
                                   f"{req.fill_len} tokens computed")
            req.num_output_tokens += 1
            if self.config.disaggregation_mode == "prefill":
                self._hand_off(req, now)
                continue
            if req.first_token_at is None:
                req.first_token_at = now
                first_tokens.append(req)
            req.last_token_at = now
            if req.num_output_tokens >= req.output_len:
                # The prefill batch shrank before merging into the running batch.
                self._finish(req, now)
                finished.append(req)
                self.batch_is_full = False
            else:
                self.cache_unfinished_req(req, now)
                self._join_running(req)
        return first_tokens, finished

    # ----- decode -----

    def update_running_batch(self, now: float) -> list[Request]:
        """Check KV for the next decode step; retract requests if it does not fit.

        Returns the retracted requests (already back in the waiting queue).
        """
        if not self.running:
            return []
        if self.available_tokens() >= len(self.running):
            return []
        return self.retract_decode(now)

    def _advance_decode(self, steps: int) -> None:
        batch = len(self.running)
        self._allocate(steps * batch)
        self.decode_step += steps
        self.ctx_sum += steps * batch
        self.sum_remaining -= steps * batch
        self.new_token_ratio = max(self.new_token_ratio - steps * self.new_token_ratio_decay,
                                   self.min_new_token_ratio)

    def commit_decode(self, steps: int, now: float) -> list[Request]:
        """Apply `steps` decode steps of the whole running batch; return the finished requests."""
        self._advance_decode(steps)
        return self._pop_finished(now)

    def _pop_finished(self, now: float) -> list[Request]:
        finished = []
        heap = self._finish_heap
        while heap and heap[0][0] <= self.decode_step:
            step, rid = heapq.heappop(heap)
            req = self.running.get(rid)
            if req is None or req.decode_join_step + req.output_len - req.num_output_tokens != step:
                continue
            self._leave_running(req)
            self._finish(req, now)
            finished.append(req)
        return finished

    def _finish(self, req: Request, now: float) -> None:
        req.state = RequestState.FINISHED
        req.finished_at = now
        req.last_token_at = now
        self.cache_finished_req(req, now)

    def on_idle(self) -> None:
        """SGLang resets the new-token ratio when the scheduler has nothing to run."""
        self.new_token_ratio = self.init_new_token_ratio

    # ----- invariants -----

    def check_invariants(self) -> None:
        """Raise RuntimeError if KV slots are not conserved or the cache exceeds the pool."""
        total = self.free_tokens + self.tree.total_tokens + self.private_tokens
        if total != self.config.max_total_tokens or self.free_tokens < 0:
            raise RuntimeError(
                f"KV slots not conserved: free {self.free_tokens} + cache {self.tree.total_tokens} + "
                f"requests {self.private_tokens} != capacity {self.config.max_total_tokens}")
        held = 0
        for req in self.running.values():
            computed = req.num_computed_tokens + self.decode_step - req.decode_join_step
            held += computed - req.prefix_len
        inflight = {id(r): extend for r, _, extend in self._inflight.items} if self._inflight else {}
        if self.chunked_req is not None and id(self.chunked_req) not in inflight:
            held += self.chunked_req.num_computed_tokens - self.chunked_req.prefix_len
        for req, prefix, extend in (self._inflight.items if self._inflight else ()):
            held += req.num_computed_tokens + extend - req.prefix_len
        for req in self.sending.values():
            held += req.num_computed_tokens - req.prefix_len
        held += sum(self.preallocated.values())
        if held != self.private_tokens:
            raise RuntimeError(f"request KV drifted: requests hold {held}, pool counts {self.private_tokens}")
        self.tree.check_invariants()
