"""The simulator's fast path over the forward-step law, and closed-form decode spans.

`StepCostModel.step_time(shape)` equals `forward.step_time(FLOAT_OPS, shape, ctx)`
bit for bit: it evaluates the same functions in the same order and only
memoises the parts that depend on token counts alone (the per-layer parts by
token counts, the LM head by sequence counts). `dp_step_time` likewise equals
`forward.dp_step_time` for the ranks of a DP-attention server.

A decode span is a run of pure decode steps with a fixed batch of B sequences
whose contexts all grow by one token per step, so step k reads
decode_ctx_tokens = ctx0 + k x B. The step law is piecewise linear in k
(maxes of linear terms, with branch choices fixed by B), so `DecodeSpan`
finds the linear pieces by bisection and sums each one as an arithmetic
series instead of stepping token by token.
"""

from __future__ import annotations

import math

from typing import Callable, Sequence

from .forward import (LawContext, LayerParts, attention_time, combine_step_time, compose_gpu_time,
                      extending, head_time, layer_parts)
from .laws import expected_experts_touched, expected_max_rank_assignments
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
        self._parts_cache: dict[tuple, LayerParts] = {}
        self._head_cache: dict[tuple, float] = {}
        self._moe_cache: dict[float, tuple[float, float]] = {}
        self._is_moe = ctx.model.is_moe
        self._segments: dict[int, tuple[float, float, float, float]] = {}
        """Per decode batch size, a context range where the step time was found linear:
        (first context, last context, time at the first, time per context token)."""

    def moe_features(self, moe_tokens: float) -> tuple[float, float]:
        """(experts touched, busiest-rank assignments) of one MoE layer for `moe_tokens` tokens."""
        if not self._is_moe:
            return 0.0, 0.0
        cached = self._moe_cache.get(moe_tokens)
        if cached is None:
            ctx = self.ctx
            touched = expected_experts_touched(FLOAT_OPS, ctx.model.num_experts, ctx.model.top_k, moe_tokens)
            assignments = expected_max_rank_assignments(FLOAT_OPS, moe_tokens, ctx.model, ctx.par, ctx.eff)
            cached = (touched, assignments)
            self._moe_cache[moe_tokens] = cached
        return cached

    def experts_touched(self, tokens: float) -> float:
        return self.moe_features(tokens)[0]

    def _parts(self, shape: StepShape) -> LayerParts:
        key = (shape.tokens, shape.dp_tokens, shape.experts_touched, shape.moe_rank_assignments, shape.steps,
               extending(shape, self.ctx.par))
        cached = self._parts_cache.get(key)
        if cached is None:
            cached = layer_parts(FLOAT_OPS, shape, self.ctx)
            self._parts_cache[key] = cached
        return cached

    def _head(self, shape: StepShape) -> float:
        key = (shape.seqs, shape.dp_seqs, shape.steps, extending(shape, self.ctx.par))
        cached = self._head_cache.get(key)
        if cached is None:
            cached = head_time(FLOAT_OPS, shape, self.ctx)
            self._head_cache[key] = cached
        return cached

    def step_time(self, shape: StepShape) -> float:
        """Wall time of one step; identical to `forward.step_time` with float ops."""
        gpu = compose_gpu_time(FLOAT_OPS, self._parts(shape), attention_time(FLOAT_OPS, shape, self.ctx),
                               self._head(shape), shape, self.ctx)
        return combine_step_time(FLOAT_OPS, gpu, shape, self.ctx)

    def dp_step_time(self, rank_shapes: Sequence[StepShape]) -> float:
        """Lock-step time of DP-attention ranks; identical to `forward.dp_step_time`."""
        total = self.step_time(rank_shapes[0])
        for shape in rank_shapes[1:]:
            total = FLOAT_OPS.max(total, self.step_time(shape))
        return total

    # ----- shapes -----

    def _with_moe(self, shape: StepShape) -> StepShape:
        shape.experts_touched, shape.moe_rank_assignments = self.moe_features(shape.tokens)
        return shape

    def decode_shape(self, batch_size: int, ctx_tokens: float) -> StepShape:
        return self._with_moe(StepShape(tokens=batch_size, seqs=batch_size, decode_seqs=batch_size,
                                        decode_ctx_tokens=ctx_tokens, has_decode=True))

    def extend_shape(self, items: list[tuple[object, int, int]], num_decode: int = 0,
                     decode_ctx_tokens: float = 0.0) -> StepShape:
        """Shape of a prefill step from (request, prefix tokens, new tokens) items."""
        tokens = pairs = kv = 0.0
        for _, prefix, extend in items:
            tokens += extend
            pairs += extend * (prefix + (extend + 1) / 2)
            kv += prefix + extend
        total = tokens + num_decode
        return self._with_moe(StepShape(tokens=total, seqs=len(items) + num_decode, extend_tokens=tokens,
                                        extend_pairs=pairs, extend_kv_tokens=kv, extend_seqs=len(items),
                                        decode_seqs=num_decode, decode_ctx_tokens=decode_ctx_tokens,
                                        has_extend=True, has_decode=num_decode > 0))

    @staticmethod
    def idle_shape() -> StepShape:
        """Return the shape of a DP rank with no requests, which still joins the MoE collectives."""
        return StepShape()

    def link_dp_shapes(self, rank_shapes: Sequence[StepShape]) -> None:
        """Stamp the server-wide fields (all ranks' tokens and sequences, any extend) on every rank."""
        dp_tokens = sum(s.tokens for s in rank_shapes)
        dp_seqs = sum(s.seqs for s in rank_shapes)
        any_extend = any(s.has_extend for s in rank_shapes)
        touched, assignments = self.moe_features(dp_tokens)
        for shape in rank_shapes:
            shape.dp_tokens = dp_tokens
            shape.dp_seqs = dp_seqs
            shape.any_extend = any_extend
            shape.experts_touched = touched
            shape.moe_rank_assignments = assignments

    # ----- decode spans -----

    def decode_step_time(self, batch_size: int, ctx_tokens: float) -> float:
        return self.step_time(self.decode_shape(batch_size, ctx_tokens))

    def decode_span(self, batch_size: int, ctx0: float, num_steps: int) -> DecodeSpan:
        """Closed form of `num_steps` decode steps starting from total context `ctx0`.

        For one batch size the step time is a function of the total context
        only, so a context range already found linear is reused without
        evaluating the law again (up to rounding in the last bits).
        """
        ctx_end = ctx0 + (num_steps - 1) * batch_size
        segment = self._segments.get(batch_size)
        if segment is not None and segment[0] <= ctx0 and ctx_end <= segment[1]:
            lo, _, t_lo, per_ctx = segment
            return DecodeSpan([(0, num_steps, t_lo + per_ctx * (ctx0 - lo), per_ctx * batch_size)])

        def duration(k: int) -> float:
            return self.decode_step_time(batch_size, ctx0 + k * batch_size)

        span = self.span_from(duration, num_steps)
        self._remember_segment(batch_size, ctx0, span)
        return span

    def _remember_segment(self, batch_size: int, ctx0: float, span: DecodeSpan) -> None:
        """Keep the longest linear piece of a span, merged with the known one when they agree."""
        k0, k1, a, b = max(span.pieces, key=lambda piece: piece[1] - piece[0])
        if k1 - k0 < 3:
            return
        lo, hi, per_ctx = ctx0 + k0 * batch_size, ctx0 + (k1 - 1) * batch_size, b / batch_size
        old = self._segments.get(batch_size)
        if old is not None:
            old_lo, old_hi, old_t, old_per_ctx = old
            predicted = old_t + old_per_ctx * (lo - old_lo)
            same_line = (abs(per_ctx - old_per_ctx) <= _LINEAR_RTOL * max(abs(old_per_ctx), 1e-30) * 1e3
                         and abs(predicted - a) <= _LINEAR_RTOL * abs(a))
            if same_line:
                new_lo, new_hi = min(lo, old_lo), max(hi, old_hi)
                # A gap between the two ranges is accepted only if the law sits on the line there too.
                gap_mid = (max(lo, old_lo) + min(hi, old_hi)) / 2
                expected = old_t + old_per_ctx * (gap_mid - old_lo)
                actual = self.decode_step_time(batch_size, gap_mid)
                if abs(actual - expected) <= _LINEAR_RTOL * abs(actual):
                    start_t = old_t + old_per_ctx * (new_lo - old_lo)
                    self._segments[batch_size] = (new_lo, new_hi, start_t, old_per_ctx)
                    return
        self._segments[batch_size] = (lo, hi, a, per_ctx)

    def dp_decode_span(self, ranks: Sequence[tuple[int, float]], num_steps: int) -> DecodeSpan:
        """Closed form of `num_steps` lock-step decode steps of DP-attention ranks.

        `ranks` gives (batch size, total context) per rank at the first step; a
        rank with batch size 0 runs idle batches.

        Only one rank per batch size is timed: the one with the longest
        context. At a fixed batch size a rank's step time can only grow with
        its context, because only attention depends on it and reads more KV.
        Ranks of one batch size gain the same context per step, so that rank
        stays the slowest of its batch size and the maximum is unchanged.
        """
        slowest: dict[int, int] = {}
        for i, (bs, ctx) in enumerate(ranks):
            if bs not in slowest or ctx > ranks[slowest[bs]][1]:
                slowest[bs] = i
        timed = sorted(slowest.values())

        def duration(k: int) -> float:
            shapes = [self.decode_shape(bs, ctx + k * bs) if bs else self.idle_shape() for bs, ctx in ranks]
            self.link_dp_shapes(shapes)
            return self.dp_step_time([shapes[i] for i in timed])

        return self.span_from(duration, num_steps)

    def span_from(self, duration: Callable[[int], float], num_steps: int) -> DecodeSpan:
        """Linear pieces of a step-duration function d(k) that is piecewise linear in k."""
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
