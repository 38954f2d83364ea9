"""The forward-step law: one definition, two algebras, a memoised fast path and decode spans."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.costs.forward import step_kernels, step_time
from sglsim.costs.ops import FLOAT_OPS, ChosenOps, RecordingOps, symbolic_ops
from sglsim.costs.params import StepShape
from sglsim.costs.step_model import StepCostModel

from .helpers import law_context

DENSE = law_context(model="llama-3.1-8b", gpu="h100")
DENSE_TP4 = law_context(model="llama-3.1-70b", gpu="h100", server={"tp": 4})
MOE = law_context(model="mixtral-8x7b", gpu="h100", server={"tp": 2})


def extend_shape(model: StepCostModel, prefixes_and_lens: list[tuple[int, int]], decodes: int = 0,
                 ctx: int = 0) -> StepShape:
    items = [(None, p, q) for p, q in prefixes_and_lens]
    return model.extend_shape(items, decodes, ctx)


shapes = st.one_of(
    st.builds(lambda b, c: ("decode", b, c), st.integers(1, 600), st.integers(1, 4000)),
    st.builds(lambda ps: ("extend", ps), st.lists(st.tuples(st.integers(0, 20000), st.integers(1, 8192)),
                                                  min_size=1, max_size=6)),
)


def build(model: StepCostModel, spec) -> StepShape:
    if spec[0] == "decode":
        return model.decode_shape(spec[1], spec[1] * spec[2])
    return extend_shape(model, spec[1])


@pytest.mark.parametrize("ctx", [DENSE, DENSE_TP4, MOE], ids=["dense", "dense-tp4", "moe-tp2"])
@settings(max_examples=60, deadline=None)
@given(spec=shapes)
def test_fast_path_matches_law(ctx, spec):
    # The memoised fast path must be the law itself, bit for bit, on any shape.
    model = StepCostModel(ctx)
    shape = build(model, spec)
    assert model.step_time(shape) == step_time(FLOAT_OPS, shape, ctx)
    assert model.step_time(shape) == step_time(FLOAT_OPS, shape, ctx)  # memoised second call


@pytest.mark.parametrize("ctx", [DENSE, MOE], ids=["dense", "moe"])
def test_symbolic_law_matches_float(ctx):
    # The same law evaluated with SymPy ops and the same numbers gives the same time.
    model = StepCostModel(ctx)
    for shape in (model.decode_shape(32, 32 * 2000), extend_shape(model, [(512, 4096), (0, 1000)])):
        expected = step_time(FLOAT_OPS, shape, ctx)
        value = float(step_time(symbolic_ops(), shape, ctx))
        assert value == pytest.approx(expected, rel=1e-12)


def test_recorded_branches_replay_symbolically():
    # Replaying the recorded branch choices with ChosenOps gives the single active term.
    model = StepCostModel(DENSE)
    shape = model.decode_shape(8, 8 * 1000)
    rec = RecordingOps()
    expected = step_time(rec, shape, DENSE)
    replay = step_time(ChosenOps(tuple(rec.choices)), shape, DENSE)
    assert float(replay) == pytest.approx(expected, rel=1e-12)
    assert not getattr(replay, "has", lambda *_: False)(__import__("sympy").Max)


def test_law_is_homogeneous_in_shape():
    # Steps that chose the same branches sum exactly: law(a + b) == law(a) + law(b).
    model = StepCostModel(DENSE)
    a, b = model.decode_shape(16, 16 * 900), model.decode_shape(16, 16 * 950)
    rec_a, rec_b = RecordingOps(), RecordingOps()
    ta, tb = step_time(rec_a, a, DENSE), step_time(rec_b, b, DENSE)
    assert rec_a.choices == rec_b.choices
    summed = model.decode_shape(16, 16 * 900)
    summed.scaled_sum(b)
    together = step_time(ChosenOps(tuple(rec_a.choices)), summed, DENSE)
    assert float(together) == pytest.approx(ta + tb, rel=1e-12)


def test_cuda_graph_branch_makes_large_batches_slower_per_step():
    # Decode at cuda_graph_max_bs replays a graph; one more sequence launches every kernel eagerly.
    from dataclasses import replace

    model = StepCostModel(DENSE)
    limit = DENSE.rt.cuda_graph_max_bs
    graph = model.decode_step_time(limit, limit * 100)
    eager_model = StepCostModel(replace(DENSE, rt=replace(DENSE.rt, cuda_graph=False)))
    eager = eager_model.decode_step_time(limit, limit * 100)
    kernels = step_kernels(model.decode_shape(limit, limit * 100), DENSE)
    assert kernels == (13 + 1) * 32 + 5  # 13 per layer + decode attention, 5 per step
    gap = kernels * DENSE.eff.launch_overhead_s - DENSE.eff.graph_launch_s
    assert eager - graph == pytest.approx(gap, rel=1e-9)
    # Crossing the limit by one sequence costs the same jump (plus one sequence's work).
    beyond = model.decode_step_time(limit + 1, (limit + 1) * 100)
    assert beyond - graph > 0.9 * gap
    rec, rec_graph = RecordingOps(), RecordingOps()
    step_time(rec, model.decode_shape(limit + 1, (limit + 1) * 100), DENSE)
    step_time(rec_graph, model.decode_shape(limit, limit * 100), DENSE)
    assert rec.choices != rec_graph.choices


def test_prefill_is_compute_bound_and_small_decode_memory_bound():
    model = StepCostModel(DENSE)
    prefill = model.step_time(extend_shape(model, [(0, 8192)]))
    flops = 2 * 8.03e9 * 8192
    assert prefill == pytest.approx(flops / (989e12 * DENSE.eff.gemm_compute), rel=0.25)
    decode = model.decode_step_time(1, 1000)
    weight_read = 8.03e9 * 2 / (3.35e12 * DENSE.eff.gemm_memory)
    assert weight_read < decode < weight_read * 1.6


@pytest.mark.parametrize("batch,ctx0,steps", [(1, 1000, 1), (7, 7 * 333, 2), (64, 64 * 3000, 500),
                                              (300, 300 * 100, 1200), (257, 257 * 10, 50)])
def test_decode_span_matches_stepwise_sum(batch, ctx0, steps):
    # The closed form equals stepping token by token, for every prefix of the span.
    model = StepCostModel(DENSE)
    span = model.decode_span(batch, ctx0, steps)
    total = 0.0
    for k in range(steps):
        total += model.decode_step_time(batch, ctx0 + k * batch)
        if k in (0, steps // 2, steps - 1):
            assert span.duration(k + 1) == pytest.approx(total, rel=1e-11)
    assert span.duration(steps) == pytest.approx(total, rel=1e-11)


def test_decode_span_steps_to_cover():
    # steps_to_cover(t) is the step in flight at elapsed time t (the first step ending at or after t).
    model = StepCostModel(DENSE_TP4)
    span = model.decode_span(40, 40 * 5000, 800)
    for k in (1, 2, 17, 400, 800):
        end = span.duration(k)
        assert span.steps_to_cover(end) == k
        previous = span.duration(k - 1)
        assert span.steps_to_cover(previous + (end - previous) / 2) == k
    assert span.steps_to_cover(0.0) == 1


def test_all_reduce_zero_for_one_rank_and_grows_with_message():
    from sglsim.costs.collectives import all_reduce_time
    eff, hw = DENSE.eff, DENSE.hw
    assert all_reduce_time(FLOAT_OPS, 1e6, 1, hw, eff, 1) == 0
    small = all_reduce_time(FLOAT_OPS, 1e4, 8, hw, eff, 1)
    large = all_reduce_time(FLOAT_OPS, 64 * 2**20, 8, hw, eff, 1)
    assert eff.allreduce_latency_s <= small < 2 * eff.allreduce_latency_s
    assert large > 10 * small
    assert math.isfinite(large)
