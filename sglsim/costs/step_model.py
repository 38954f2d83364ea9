"""The simulator's fast path over the forward-step law, and closed-form decode spans.

`StepCostModel.step_time(shape)` equals `forward.step_time(FLOAT_OPS, shape, ctx)`
bit for bit: it evaluates the same functions in the same order and only
memoises the parts that depend on a single integer (per-layer work by token
count, the LM head by sequence count).

A decode span is a run of pure decode steps with a fixed batch of B sequences
whose contexts all grow by one token per step, so step k reads
decode_ctx_tokens = ctx0 + k x B. The step law is piecewise linear in k
(maxes of linear terms, with branch choices fixed by B), so `DecodeSpan`
finds the linear pieces by bisection and sums each one as an arithmetic
series instead of stepping token by token.
"""

from __future__ import annotations

import math

from .forward import LawContext, attention_time, combine_step_time, head_time, token_layers_time
from .laws import expected_experts_touched
from .ops import FLOAT_OPS
from .params import StepShape

_LINEAR_RTOL = 1e-11


class DecodeSpan:
    """Durations of n decode steps as linear pieces d(k) = a + b (k - k0) on [k0, k1)."""

    __slots__ = ("pieces", "num_steps", "_ends")

    def __init__(self, pieces: list[tuple[int, int, float, float]]) -> None:
        self.pieces = pieces
        self.num_steps = pieces[-1][1] if pieces else 0
        ends = []
        total = 0.0
        for k0, k1, a, b in pieces:
            m = k1 - k0
            total += m * a + b * m * (m - 1) / 2
            ends.append(total)
        self._ends = ends

    def duration(self, steps: int) -> float:
        """Time of the first `steps` steps of the span."""
        if steps >= self.num_steps:
            return self._ends[-1] if self._ends else 0.0
        total = 0.0
        for (k0, k1, a, b), end in zip(self.pieces, self._ends):
            if steps >= k1:
                total = end
                continue
            m = steps - k0
            return total + m * a + b * m * (m - 1) / 2
        return total

    def steps_to_cover(self, elapsed: float) -> int:
        """Smallest k >= 1 with duration(k) >= elapsed (capped at the span length)."""
        previous_end = 0.0
        for (k0, k1, a, b), end in zip(self.pieces, self._ends):
            if end < elapsed:
                previous_end = end
                continue
            need = elapsed - previous_end
            m = _solve_series(a, b, need)
            m = min(max(m, 1), k1 - k0)
            while m > 1 and previous_end + (m - 1) * a + b * (m - 1) * (m - 2) / 2 >= elapsed:
                m -= 1
            while m < k1 - k0 and previous_end + m * a + b * m * (m - 1) / 2 < elapsed:
                m += 1
            return max(k0 + m, 1)
        return self.num_steps

    def step_duration(self, k: int) -> float:
        """Duration of step k (0-based) of the span."""
        for k0, k1, a, b in self.pieces:
            if k < k1:
                return a + b * (k - k0)
        raise IndexError(k)


def _solve_series(a: float, b: float, need: float) -> int:
    """Smallest integer m with m a + b m (m - 1) / 2 >= need, for a > 0 and b >= 0 (approximate)."""
    if need <= 0:
        return 1
    if abs(b) < 1e-300:
        return int(math.ceil(need / a))
    qa, qb = b / 2, a - b / 2
    disc = qb * qb + 4 * qa * need
    return int(math.ceil((-qb + math.sqrt(max(disc, 0.0))) / (2 * qa)))


class StepCostModel:
    """Memoised float evaluation of the step law for one server."""

    def __init__(self, ctx: LawContext) -> None:
        self.ctx = ctx
        self._num_layers = ctx.model.num_layers
        self._token_cache: dict[int, float] = {}
        self._head_cache: dict[int, float] = {}
        model = ctx.model
        self._moe = (model.num_experts, model.top_k) if model.is_moe else None

    def experts_touched(self, tokens: float) -> float:
        if self._moe is None:
            return 0.0
        return expected_experts_touched(FLOAT_OPS, self._moe[0], self._moe[1], tokens)

    def _token_part(self, tokens: float, experts: float) -> float:
        key = int(tokens)
        cached = self._token_cache.get(key)
        if cached is None:
            cached = token_layers_time(FLOAT_OPS, tokens, experts, 1.0, self.ctx)
            self._token_cache[key] = cached
        return cached

    def _head_part(self, seqs: float) -> float:
        key = int(seqs)
        cached = self._head_cache.get(key)
        if cached is None:
            cached = head_time(FLOAT_OPS, seqs, 1.0, self.ctx)
            self._head_cache[key] = cached
        return cached

    def step_time(self, shape: StepShape) -> float:
        """Wall time of one step; identical to `forward.step_time` with float ops."""
        gpu = (self._token_part(shape.tokens, shape.experts_touched)
               + self._num_layers * attention_time(FLOAT_OPS, shape, self.ctx)
               + self._head_part(shape.seqs))
        return combine_step_time(FLOAT_OPS, gpu, shape, self.ctx)

    # ----- shapes -----

    def decode_shape(self, batch_size: int, ctx_tokens: float) -> StepShape:
        return StepShape(tokens=batch_size, seqs=batch_size, decode_seqs=batch_size,
                         decode_ctx_tokens=ctx_tokens, experts_touched=self.experts_touched(batch_size),
                         has_decode=True)

    def extend_shape(self, items: list[tuple[object, int, int]], num_decode: int = 0,
                     decode_ctx_tokens: float = 0.0) -> StepShape:
        """Shape of a prefill step from (request, prefix tokens, new tokens) items."""
        tokens = pairs = kv = 0.0
        for _, prefix, extend in items:
            tokens += extend
            pairs += extend * (prefix + (extend + 1) / 2)
            kv += prefix + extend
        total = tokens + num_decode
        return StepShape(tokens=total, seqs=len(items) + num_decode, extend_tokens=tokens,
                         extend_pairs=pairs, extend_kv_tokens=kv, extend_seqs=len(items),
                         decode_seqs=num_decode, decode_ctx_tokens=decode_ctx_tokens,
                         experts_touched=self.experts_touched(total), has_extend=True,
                         has_decode=num_decode > 0)

    # ----- decode spans -----

    def decode_step_time(self, batch_size: int, ctx_tokens: float) -> float:
        return self.step_time(self.decode_shape(batch_size, ctx_tokens))

    def decode_span(self, batch_size: int, ctx0: float, num_steps: int) -> DecodeSpan:
        """Closed form of `num_steps` decode steps starting from total context `ctx0`."""
        def duration(k: int) -> float:
            return self.decode_step_time(batch_size, ctx0 + k * batch_size)

        pieces: list[tuple[int, int, float, float]] = []
        self._split_linear(duration, 0, num_steps, duration(0), duration(num_steps - 1), pieces)
        return DecodeSpan(pieces)

    def _split_linear(self, duration, k0: int, k1: int, d0: float, d_last: float,
                      pieces: list[tuple[int, int, float, float]]) -> None:
        """Append linear pieces covering steps [k0, k1), given d(k0) and d(k1 - 1)."""
        m = k1 - k0
        if m <= 2:
            pieces.append((k0, k1, d0, d_last - d0 if m == 2 else 0.0))
            return
        slope = (d_last - d0) / (m - 1)
        mid = k0 + (m - 1) // 2
        d_mid = duration(mid)
        expected = d0 + slope * (mid - k0)
        if abs(d_mid - expected) <= _LINEAR_RTOL * max(abs(d_mid), 1e-30):
            quarter = k0 + (m - 1) // 4
            if quarter in (k0, mid) or abs(duration(quarter) - (d0 + slope * (quarter - k0))) <= \
                    _LINEAR_RTOL * max(abs(d_mid), 1e-30):
                pieces.append((k0, k1, d0, slope))
                return
        self._split_linear(duration, k0, mid + 1, d0, d_mid, pieces)
        self._split_linear(duration, mid + 1, k1, duration(mid + 1), d_last, pieces)
