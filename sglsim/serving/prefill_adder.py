"""Prefill admission, mirroring SGLang's `PrefillAdder` (v0.4/v0.5 semantics).

One adder is built per scheduling round. It charges each admitted request
against three budgets:

- rem_total_tokens: free KV + evictable cache - the decode tokens the running
  requests may still need (min(remaining, 4096) x new_token_ratio each);
  a request is charged its extend length plus min(its remaining output, 4096);
- rem_input_tokens: `max_prefill_tokens`, new tokens per prefill batch;
- rem_chunk_tokens: `chunked_prefill_size` (None when chunking is off).

A request that does not fit the chunk budget is cut to the budget and becomes
the round's chunked request. Only one request is chunked at a time, and it is
charged no decode tokens until its last chunk.
"""

from __future__ import annotations

import enum

from .request import Request

CLIP_MAX_NEW_TOKENS = 4096
"""SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION: cap on the decode tokens reserved per request."""


class AddReqResult(enum.Enum):
    CONTINUE = "continue"
    """The request was admitted and budget remains."""
    NO_TOKEN = "no_token"
    """KV memory is exhausted: the running batch counts as full."""
    OTHER = "other"
    """The prefill token or chunk budget is spent."""


class PrefillAdder:
    """Accumulates one prefill batch under SGLang's budgets."""

    def __init__(self, page_size: int, rem_total_tokens: float, cur_rem_tokens: float,
                 rem_input_tokens: int, rem_chunk_tokens: int | None, reserve_page: bool = True,
                 max_new_tokens_clip: int = CLIP_MAX_NEW_TOKENS) -> None:
        self.page_size = page_size
        self.reserve_page = reserve_page
        """False when no running request holds KV, so a chunk may use every free slot."""
        self.max_new_tokens_clip = max_new_tokens_clip
        """Cap on the decode tokens charged per request: 4096, or 1 on a P/D prefill server,
        which sets every request's max_new_tokens to 1 (SGLang `PrefillBootstrapQueue._process_req`)."""
        self.rem_total_tokens = rem_total_tokens
        self.cur_rem_tokens = cur_rem_tokens
        self.rem_input_tokens = rem_input_tokens
        self.rem_chunk_tokens = rem_chunk_tokens
        self.can_run: list[tuple[Request, int]] = []
        """(request, extend length) in admission order."""
        self.new_chunked_req: Request | None = None

    def _ceil_page(self, tokens: int) -> int:
        return -(-tokens // self.page_size) * self.page_size

    def _charge(self, extend_len: int, max_new_tokens: int) -> None:
        self.rem_total_tokens -= extend_len + max_new_tokens
        self.cur_rem_tokens -= extend_len
        self.rem_input_tokens -= extend_len
        if self.rem_chunk_tokens is not None:
            self.rem_chunk_tokens -= extend_len

    def budget_state(self) -> AddReqResult:
        if self.rem_total_tokens <= 0 or self.cur_rem_tokens <= 0:
            return AddReqResult.NO_TOKEN
        if self.rem_input_tokens <= 0 or (self.rem_chunk_tokens is not None and self.rem_chunk_tokens <= 0):
            return AddReqResult.OTHER
        return AddReqResult.CONTINUE

    def add_chunked_req(self, req: Request) -> bool:
        """Add the next chunk of the current chunked request; return True if more chunks remain.

        The chunk is bounded by the chunk budget and by the KV memory left
        (SGLang's `available_chunk_tokens`). With no memory left the request
        makes no progress this round and stays the chunked request.
        """
        remaining = req.fill_len - req.num_computed_tokens
        budget = self.rem_chunk_tokens if self.rem_chunk_tokens is not None else remaining
        # Keep one page free for the first decode token unless nothing else holds KV.
        memory = int(self.cur_rem_tokens) - (self.page_size if self.reserve_page else 0)
        budget = min(budget, memory)
        if remaining > budget:
            budget = budget // self.page_size * self.page_size
        if budget <= 0:
            return True
        truncated = remaining > budget
        extend_len = budget if truncated else remaining
        self.can_run.append((req, extend_len))
        max_new = 0 if truncated else min(req.remaining_output, self.max_new_tokens_clip)
        self._charge(self._ceil_page(extend_len), max_new)
        return truncated

    def fits_total(self, req: Request, prefix_len: int) -> bool:
        """First memory check of `add_one_req`, before the prefix is locked."""
        total = req.fill_len - prefix_len + min(req.remaining_output, self.max_new_tokens_clip)
        return total < self.rem_total_tokens

    def add_one_req(self, req: Request, prefix_len: int, newly_locked_tokens: int) -> AddReqResult:
        """Try to admit a waiting request whose prefix (already locked) covers `prefix_len` tokens.

        `newly_locked_tokens` are cache tokens this request's lock moved out of
        the evictable pool: they count against memory in the check (as SGLang's
        `_lock_node` context does) and, once admitted, for the rest of the round.
        The caller undoes the lock when the request was not admitted.
        """
        extend_len = req.fill_len - prefix_len
        max_new = min(req.remaining_output, self.max_new_tokens_clip)
        total = extend_len + max_new
        input_tokens = self._ceil_page(extend_len)
        if total >= self.rem_total_tokens:
            return AddReqResult.NO_TOKEN
        if input_tokens > self.rem_input_tokens and self.can_run:
            return AddReqResult.OTHER
        if total > self.rem_total_tokens - newly_locked_tokens:
            return AddReqResult.NO_TOKEN
        # The locked prefix is no longer evictable: it leaves the memory budgets for good
        # (SGLang v0.5's memory budget tracks evictable tokens the same way).
        self.rem_total_tokens -= newly_locked_tokens
        self.cur_rem_tokens -= newly_locked_tokens
        if self.rem_chunk_tokens is None or input_tokens <= self.rem_chunk_tokens:
            self.can_run.append((req, extend_len))
            self._charge(input_tokens, max_new)
        else:
            trunc_len = self.rem_chunk_tokens // self.page_size * self.page_size
            if trunc_len <= 0:
                return AddReqResult.OTHER
            self.can_run.append((req, trunc_len))
            self.new_chunked_req = req
            self._charge(trunc_len, 0)
        return self.budget_state()
