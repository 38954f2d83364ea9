"""Retraction of running requests when the KV pool cannot feed the next decode step.

Mirrors SGLang v0.5 `ScheduleBatch.retract_decode`: victims are taken in the
order fewest outputs first, longest prompt among equals, until 20 free slots
remain per running request; the last request is never retracted. A mixin of
`Scheduler`.
"""

from __future__ import annotations

from .request import Request

RETRACT_DECODE_STEPS = 20
"""SGLANG_RETRACT_DECODE_STEPS: free KV kept per remaining request after a retraction."""


class RetractionHooks:
    """`retract_decode` for `Scheduler`."""

    def retract_decode(self, now: float) -> list[Request]:
        """Retract running requests until 20 free tokens per remaining request (SGLang's rule)."""
        for req in self.running.values():
            self._materialize(req)
        order = sorted(self.running.values(), key=lambda r: (r.num_output_tokens, -r.input_len), reverse=True)
        retracted: list[Request] = []
        first = True
        while first or self.free_tokens < RETRACT_DECODE_STEPS * len(order):
            if len(order) == 1:
                break
            first = False
            req = order.pop()
            self._leave_running(req)
            self._release(req.num_computed_tokens - req.prefix_len)
            if req.last_node is not None:
                self.tree.dec_lock_ref(req.last_node)
            req.last_node = None
            req.prefix_len = 0
            req.num_retractions += 1
            retracted.append(req)
            residual = RETRACT_DECODE_STEPS * len(order) - self.free_tokens
            if residual > 0:
                self.free_tokens += self.tree.evict(residual)
        self.num_retractions += len(retracted)
        for req in retracted:
            self._park_retracted(req)
        generated = sum(r.num_output_tokens for r in order)
        budget = sum(r.output_len for r in order)
        self.new_token_ratio = min(1.0, (generated + RETRACT_DECODE_STEPS * len(order)) / budget)
        if self.available_tokens() < len(self.running):
            raise RuntimeError(f"KV pool cannot hold one decode step of the last running request "
                               f"({self.available_tokens()} tokens available)")
        return retracted
