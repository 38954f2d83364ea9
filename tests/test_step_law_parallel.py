"""The parallel step law: fast path parity, SymPy evaluation with symbolic TP/DP/EP, and its shape rules."""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import ServerArgs
from sglsim.costs.forward import attention_time, dp_step_time, layer_parts, pipeline_time, step_time
from sglsim.costs.laws import expected_max_rank_assignments, moe_rank_skew
from sglsim.costs.ops import FLOAT_OPS, ChosenOps, RecordingOps, symbolic_ops
from sglsim.costs.params import ParallelParams, StepShape
from sglsim.serving.server_spec import build_efficiency, build_server_spec

LAYOUTS = {
    "dense_tp4": ("llama-3.1-70b", "h100", dict(tp=4)),
    "dense_tp4_pp2": ("llama-3.1-70b", "h100", dict(tp=4, pp=2)),
    "moe_ep8": ("qwen3-235b-a22b", "h100", dict(tp=8, ep=8)),
    "mla_tp8": ("deepseek-v3", "h200", dict(tp=8)),
    "mla_dp_attention": ("deepseek-v3", "h200", dict(tp=8, dp=8, ep=8, enable_dp_attention=True)),
    "mla_deepep_tbo": ("deepseek-v3", "h100", dict(tp=32, dp=32, enable_dp_attention=True, moe_a2a_backend="deepep",
                                                    enable_two_batch_overlap=True, moe_dense_tp_size=1,
                                                    enable_dp_lm_head=True, ep_num_redundant_experts=32,
                                                    mem_fraction_static=0.85)),
    "moe_dp_attention_attn_tp2": ("mixtral-8x7b", "h100", dict(tp=4, dp=2, enable_dp_attention=True)),
}
_SPECS: dict = {}


def _spec(name: str):
    if name not in _SPECS:
        model, gpu, args = LAYOUTS[name]
        _SPECS[name] = build_server_spec(model, gpu, ServerArgs(**args), build_efficiency({}))
    return _SPECS[name]


def _shape(cost, kind: int, batch: int, ctx: int, extend: int, prefix: int) -> StepShape:
    if kind == 0:
        return cost.decode_shape(batch, batch * ctx)
    items = [(None, prefix, extend)] * max(batch // 16, 1)
    return cost.extend_shape(items, num_decode=batch % 7, decode_ctx_tokens=(batch % 7) * ctx)


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(sorted(LAYOUTS)), kind=st.integers(0, 1), batch=st.integers(1, 300),
       ctx=st.integers(1, 20000), extend=st.integers(1, 4096), prefix=st.integers(0, 8192),
       others=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 9000)), min_size=0, max_size=4))
def test_fast_path_matches_law_bit_for_bit(name, kind, batch, ctx, extend, prefix, others):
    spec = _spec(name)
    cost = spec.cost_model()
    shape = _shape(cost, kind, batch, ctx, extend, prefix)
    if spec.parallel.dp_attention:
        # the other ranks decode or idle beside this one
        shapes = [shape] + [cost.decode_shape(bs, bs * c) if bs else cost.idle_shape() for bs, c in others]
        cost.link_dp_shapes(shapes)
        assert cost.dp_step_time(shapes) == dp_step_time(FLOAT_OPS, shapes, spec.law)
    else:
        assert cost.step_time(shape) == step_time(FLOAT_OPS, shape, spec.law)


@pytest.mark.parametrize("name", ["moe_ep8", "mla_dp_attention", "mla_deepep_tbo", "dense_tp4_pp2"])
def test_law_evaluates_with_symbolic_parallel_degrees(name):
    spec = _spec(name)
    cost = spec.cost_model()
    shapes = [cost.decode_shape(64, 64 * 3000), cost.decode_shape(40, 40 * 1000)]
    if spec.parallel.dp_attention:
        cost.link_dp_shapes(shapes)
    shape = shapes[0]
    par = spec.law.par
    tp, dp, ep, pp = sp.symbols("tp dp ep pp", positive=True)
    symbolic_par = dataclasses.replace(par, tp=tp, attn_dp=dp if par.dp_attention else 1, ep=ep, pp=pp,
                                       attn_tp=None, moe_tp=None, shared_tp=None, pp_microbatches=None,
                                       dense_tp=1 if par.dense_tp == 1 else None)
    ctx = dataclasses.replace(spec.law, par=symbolic_par)
    values = {tp: par.tp, dp: par.attn_dp, ep: par.ep, pp: par.pp}
    exact = step_time(FLOAT_OPS, shape, spec.law)
    # the full law with Max/Min/Piecewise
    expr = step_time(symbolic_ops(), shape, ctx)
    assert expr.free_symbols & {tp, ep}
    assert float(expr.subs(values)) == pytest.approx(exact, rel=1e-9)
    # the branch replay of a recorded float run gives the single active term
    rec = RecordingOps()
    assert step_time(rec, shape, spec.law) == exact
    replay = step_time(ChosenOps(tuple(rec.choices)), shape, ctx)
    assert float(replay.subs(values)) == pytest.approx(exact, rel=1e-9)


def test_summed_decode_shapes_obey_homogeneity():
    # two decode steps with the same branch choices: law(sum of shapes) = sum of laws
    spec = _spec("mla_dp_attention")
    cost = spec.cost_model()
    a = [cost.decode_shape(64, 64 * 2000), cost.decode_shape(64, 64 * 2000)]
    b = [cost.decode_shape(64, 64 * 2001), cost.decode_shape(64, 64 * 2001)]
    cost.link_dp_shapes(a)
    cost.link_dp_shapes(b)
    rec_a, rec_b = RecordingOps(), RecordingOps()
    ta, tb = step_time(rec_a, a[0], spec.law), step_time(rec_b, b[0], spec.law)
    assert rec_a.choices == rec_b.choices
    total = StepShape(steps=0.0)
    total.scaled_sum(a[0])
    total.scaled_sum(b[0])
    assert step_time(FLOAT_OPS, total, spec.law) == pytest.approx(ta + tb, rel=1e-12)


def test_dp_step_is_slowest_rank():
    spec = _spec("mla_dp_attention")
    cost = spec.cost_model()
    busy, light, idle = cost.decode_shape(100, 100 * 4000), cost.decode_shape(10, 10 * 100), cost.idle_shape()
    shapes = [light, busy, idle]
    cost.link_dp_shapes(shapes)
    # all ranks see the MoE batch of every rank: 110 tokens
    assert all(s.dp_tokens == 110 for s in shapes)
    times = [cost.step_time(s) for s in shapes]
    assert cost.dp_step_time(shapes) == max(times) == times[1]


def test_idle_rank_still_pays_the_moe():
    # an idle rank runs an empty batch but joins the gathered MoE of the other ranks
    spec = _spec("mla_dp_attention")
    cost = spec.cost_model()
    lonely = [cost.idle_shape()]
    cost.link_dp_shapes(lonely)
    crowded = [cost.idle_shape(), cost.decode_shape(200, 200 * 1000)]
    cost.link_dp_shapes(crowded)
    assert cost.step_time(crowded[0]) > cost.step_time(lonely[0])


def test_deepep_mode_follows_extend_on_any_rank():
    # auto mode: low-latency kernels while every rank decodes, normal kernels once any rank prefills
    spec = build_server_spec("deepseek-v3", "h200", ServerArgs(tp=8, dp=8, enable_dp_attention=True,
                                                                moe_a2a_backend="deepep"), build_efficiency({}))
    cost = spec.cost_model()
    decode = [cost.decode_shape(32, 32 * 1000), cost.decode_shape(32, 32 * 1000)]
    cost.link_dp_shapes(decode)
    mixed = [cost.decode_shape(32, 32 * 1000), cost.extend_shape([(None, 0, 32)])]
    cost.link_dp_shapes(mixed)
    low_latency = layer_parts(FLOAT_OPS, decode[0], spec.law).moe_a2a
    normal = layer_parts(FLOAT_OPS, mixed[0], spec.law).moe_a2a
    # same token counts, but the normal kernels carry a larger fixed cost at this size
    assert decode[0].dp_tokens == mixed[0].dp_tokens == 64
    assert normal != low_latency


def test_two_batch_overlap_hides_all_to_all():
    base = dict(tp=32, dp=32, enable_dp_attention=True, moe_a2a_backend="deepep", deepep_mode="normal",
                moe_dense_tp_size=1, mem_fraction_static=0.85)
    plain = build_server_spec("deepseek-v3", "h100", ServerArgs(**base), build_efficiency({}))
    tbo = build_server_spec("deepseek-v3", "h100", ServerArgs(**base, enable_two_batch_overlap=True),
                            build_efficiency({}))
    shapes = [plain.cost_model().extend_shape([(None, 0, 1024)] * 16) for _ in range(32)]
    plain.cost_model().link_dp_shapes(shapes)
    parts = layer_parts(FLOAT_OPS, shapes[0], plain.law)
    t_plain = step_time(FLOAT_OPS, shapes[0], plain.law)
    t_tbo = step_time(FLOAT_OPS, shapes[0], tbo.law)
    # each of the 58 MoE layers hides part of the shorter of its computation and all-to-all
    eff = tbo.law.eff
    attn = attention_time(FLOAT_OPS, shapes[0], plain.law)
    slowed = (parts.moe_compute + attn) / eff.tbo_compute_fraction
    layer = max(slowed, parts.moe_a2a) + (1 - eff.tbo_overlap_fraction) * min(slowed, parts.moe_a2a)
    saved = parts.moe_compute + attn + parts.moe_a2a - layer
    assert t_tbo < t_plain
    assert t_plain - t_tbo == pytest.approx(58 * saved, rel=1e-9)


def test_rank_skew_and_assignments():
    spec = _spec("moe_ep8")
    m, eff = spec.law.model, spec.law.eff
    par = ParallelParams(tp=8, ep=8)
    # trivial placement: skew x (1 - 1/ep); EPLB: its residual skew shrunk by E / (E + R)
    assert moe_rank_skew(m, par, eff) == pytest.approx(eff.moe_rank_skew * 7 / 8)
    eplb = ParallelParams(tp=8, ep=8, num_redundant_experts=32)
    assert moe_rank_skew(m, eplb, eff) == pytest.approx(eff.moe_rank_skew_eplb * 128 / 160 * 7 / 8)
    # mean tokens x k / ep, plus skew, plus sqrt(2 ln ep x mean x (1 - 1/ep))
    mean = 1000 * 8 / 8
    expected = mean * (1 + eff.moe_rank_skew * 7 / 8) + (2 * sp.log(8).evalf() * mean * 7 / 8) ** 0.5
    assert expected_max_rank_assignments(FLOAT_OPS, 1000, m, par, eff) == pytest.approx(float(expected))
    # one rank computes every pair exactly
    assert expected_max_rank_assignments(FLOAT_OPS, 1000, m, ParallelParams(), eff) == 8000


def test_pipeline_slots():
    spec = _spec("dense_tp4_pp2")
    shape = spec.cost_model().decode_shape(64, 64 * 1000)
    # with a zero-time stage only the send/recv hops remain: 2 slots x (pp - 1) / pp hops
    hops = pipeline_time(FLOAT_OPS, 0.0, shape, spec.law)
    assert hops > 0
    # steady (SGLang): max(m, pp) = 2 slots of stage / m
    assert pipeline_time(FLOAT_OPS, 1.0, shape, spec.law) == pytest.approx(2 / 2 * 1.0 + hops)
    gpipe = dataclasses.replace(spec.law, par=dataclasses.replace(spec.law.par, pp_schedule="gpipe"))
    # gpipe: m + pp - 1 = 3 slots, so half a stage of bubble and 3/2 as many hops
    assert pipeline_time(FLOAT_OPS, 1.0, shape, gpipe) == pytest.approx(3 / 2 * 1.0 + 3 / 2 * hops)
    fewer = dataclasses.replace(spec.law, par=dataclasses.replace(spec.law.par, pp_microbatches=1))
    # one micro-batch in a two-stage pipeline: the second slot is a bubble
    assert pipeline_time(FLOAT_OPS, 1.0, shape, fewer) > pipeline_time(FLOAT_OPS, 1.0, shape, spec.law)
