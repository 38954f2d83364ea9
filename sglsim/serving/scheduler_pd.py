"""Scheduler hooks for prefill/decode disaggregation (SGLang's `--disaggregation-mode`).

`Scheduler` inherits these methods; they use its KV counters and radix-cache
helpers. A prefill server hands a prefilled request to `sending`, where it
keeps its KV until the transfer completes. A decode server never prefills:
it reserves KV before the prefill runs, merges the transferred request into
its running batch, and offloads a retracted request's KV instead of
recomputing it (SGLang's decode-side retraction).
"""

from __future__ import annotations

from .request import Request, RequestState


class DisaggregationHooks:
    """P/D entry and exit points of a `Scheduler` (mixin; the state is set by `_init_disaggregation`)."""

    def _init_disaggregation(self) -> None:
        self.sending: dict[int, Request] = {}
        """Prefill mode: prefilled requests whose KV is being sent; they keep it until `release_sent`
        (SGLang's inflight queue)."""
        self.preallocated: dict[int, int] = {}
        """Decode mode: KV tokens reserved per request id, from preallocation to the merge."""
        self.retracted: list[Request] = []
        """Decode mode: retracted requests whose KV was offloaded, waiting to resume."""

    def _hand_off(self, req: Request, now: float) -> None:
        """Prefill mode: keep the prefilled request's KV (locked in the tree) while it is sent."""
        self.cache_unfinished_req(req, now)
        req.state = RequestState.TRANSFERRING
        req.prefill_done_at = now
        self.sending[req.rid] = req

    def release_sent(self, req: Request, now: float) -> None:
        """Prefill mode: the KV transfer is done; keep the prompt in the tree and free the rest."""
        del self.sending[req.rid]
        self.cache_finished_req(req, now)
        self.batch_is_full = False

    def preallocate(self, req: Request, num_tokens: int) -> None:
        """Decode mode: reserve KV slots for a request whose KV will arrive by transfer."""
        self._allocate(num_tokens)
        self.preallocated[req.rid] = num_tokens

    def merge_prebuilt(self, req: Request, now: float) -> bool:
        """Decode mode: put a transferred request into the running batch without a forward.

        The request has its prompt's KV and the first token sampled by the
        prefill server. Return True if that token was its last (it finished).
        """
        tokens = self.preallocated.pop(req.rid)
        req.num_computed_tokens = tokens
        req.prefix_len = 0
        req.last_node = None
        if req.num_output_tokens >= req.output_len:
            self._finish(req, now)
            return True
        self._join_running(req)
        return False

    def resume_retracted(self, req: Request) -> None:
        """Decode mode: load a retracted request's offloaded KV back; it rejoins by `merge_prebuilt`.

        NOTE: the host-to-GPU copy of the offloaded KV is not timed.
        """
        self.retracted.remove(req)
        self.preallocate(req, req.num_computed_tokens)

    def _park_retracted(self, req: Request) -> None:
        """Requeue a retracted request: re-prefill it, or on a decode server offload its KV."""
        if self.config.disaggregation_mode == "decode":
            req.state = RequestState.WAITING
            self.retracted.append(req)
            return
        req.num_computed_tokens = 0
        self.add_request(req)
