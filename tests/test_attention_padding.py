"""The tile padding terms of the attention law, and the simulator's fast path over them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import ServerArgs
from sglsim.costs.forward import attention_time, step_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.costs.params import StepShape
from sglsim.serving.server_spec import build_server_spec


def law_context(**overrides):
    spec = build_server_spec("llama-3.1-8b", "h100", ServerArgs(), overrides)
    return spec, spec.law


def test_decode_pad_reads_extra_kv_per_sequence():
    # Llama-3.1-8B at TP 1: 8 KV heads of 128 dims in BF16, so one KV token is 4 KiB per layer.
    _, plain = law_context(attn_decode_pad_tokens=0.0)
    _, padded = law_context(attn_decode_pad_tokens=100.0)
    # 64 sequences with 4K context each: far above the floor and on the memory roofline.
    shape = StepShape(tokens=64, seqs=64, decode_seqs=64, decode_ctx_tokens=64 * 4096, has_decode=True)
    extra_bytes = 64 * 100 * 2 * 8 * 128 * 2
    expected = extra_bytes / (plain.hw.mem_bw * plain.eff.attn_decode_memory)
    assert attention_time(FLOAT_OPS, shape, padded) - attention_time(FLOAT_OPS, shape, plain) == \
        pytest.approx(expected, rel=1e-12)


def test_prefill_pad_adds_pairs_per_token():
    _, plain = law_context(attn_prefill_pad_tokens=0.0)
    _, padded = law_context(attn_prefill_pad_tokens=300.0)
    # One 8K-token prompt: compute-bound, so 300 extra keys per query cost 4 x 32 heads x 128 FLOPs each.
    n = 8192
    shape = StepShape(tokens=n, seqs=1, extend_tokens=n, extend_pairs=n * (n + 1) / 2, extend_kv_tokens=n,
                      extend_seqs=1, has_extend=True)
    extra_flops = 4 * 32 * 128 * 300 * n
    expected = extra_flops / (plain.hw.attn_flops * plain.eff.attn_prefill_compute)
    assert attention_time(FLOAT_OPS, shape, padded) - attention_time(FLOAT_OPS, shape, plain) == \
        pytest.approx(expected, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 600), ctx=st.integers(1, 30000), new=st.integers(0, 8192))
def test_fast_path_bit_identical_with_presets(batch, ctx, new):
    spec, law = law_context()
    cost = spec.cost_model()
    if new:
        shape = cost.extend_shape([(None, ctx, new)], num_decode=batch, decode_ctx_tokens=batch * ctx)
    else:
        shape = cost.decode_shape(batch, batch * ctx)
    assert cost.step_time(shape) == step_time(FLOAT_OPS, shape, law)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 400), ctx=st.integers(1, 20000), steps=st.integers(1, 300))
def test_decode_span_sums_padded_steps(batch, ctx, steps):
    spec, _ = law_context()
    cost = spec.cost_model()
    span = cost.decode_span(batch, batch * ctx, steps)
    stepped = sum(cost.decode_step_time(batch, batch * ctx + k * batch) for k in range(steps))
    assert span.duration(steps) == pytest.approx(stepped, rel=1e-9)
