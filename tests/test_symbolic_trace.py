"""Trace expressions: a finished run's metrics as SymPy expressions that reproduce it exactly."""

from __future__ import annotations

import math

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim import ConfigError, simulate
from sglsim.costs.forward import step_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.serving.request import Request
from sglsim.serving.scheduler import ExtendBatch
from sglsim.symbolic.recorder import TraceRecorder
from sglsim.symbolic.symbols import ConfigSymbols
from sglsim.symbolic.trace import METRICS, trace_expressions

RTOL = 1e-9
OPEN_LOOP = {"num_requests": 150, "rate": 15.0, "seed": 3,
             "input_len": {"dist": "uniform", "min": 200, "max": 3000},
             "output_len": {"dist": "uniform", "min": 1, "max": 300}}
SCENARIOS = {
    "chunked_prefill": {"server": {"chunked_prefill_size": 512}, "workload": OPEN_LOOP},
    "prefix_hits": {"workload": {**OPEN_LOOP, "shared_prefix": {"num_groups": 4, "system_prompt_len": 1500,
                                                               "turns": 3, "think_time_s": 0.5}}},
    "retractions": {"server": {"kv_pool_tokens": 12000},
                    "workload": {**OPEN_LOOP, "rate": None, "output_len": {"dist": "uniform", "min": 200, "max": 600}}},
    "multi_replica": {"cluster": {"replicas": 3, "router": "shortest_queue"}, "workload": OPEN_LOOP},
    "moe_tp2": {"model": "mixtral-8x7b", "server": {"tp": 2}, "workload": OPEN_LOOP},
    "mixed_chunk_eager": {"server": {"tp": 2, "enable_mixed_chunk": True, "chunked_prefill_size": 1024,
                                     "disable_cuda_graph": True, "disable_overlap_schedule": True},
                          "workload": OPEN_LOOP},
    "fp8_tp4": {"model": "llama-3.1-70b", "server": {"tp": 4, "quantization": "fp8", "kv_cache_dtype": "fp8_e4m3"},
                "workload": OPEN_LOOP},
    "moe_ep4": {"model": "qwen3-30b-a3b", "server": {"tp": 4, "ep": 4}, "workload": OPEN_LOOP},
    "deepep_mla": {"model": "deepseek-v3", "gpu": "h200", "server": {"tp": 8, "ep": 8, "moe_a2a_backend": "deepep"},
                   "workload": {**OPEN_LOOP, "num_requests": 60}},
    "pp2": {"model": "llama-3.1-70b", "server": {"tp": 4, "pp": 2}, "workload": OPEN_LOOP},
    "dp2_copies": {"server": {"dp": 2}, "workload": OPEN_LOOP},
    "pd_2p1d": {"cluster": {"prefill": {"workers": 2}, "decode": {"workers": 1}}, "workload": OPEN_LOOP},
    "pd_per_pool_tp": {"model": "llama-3.1-70b", "server": {"tp": 4},
                       "cluster": {"prefill": {"workers": 1, "server": {"tp": 8}}, "decode": {"workers": 2}},
                       "workload": OPEN_LOOP},
}
PER_POOL_TP = {"pd_per_pool_tp"}


@pytest.fixture(scope="module")
def traced():
    """One recorded run and its trace expressions per scenario (built once for all metric tests)."""
    out = {}
    for name, scenario in SCENARIOS.items():
        result = simulate(scenario, record=True)
        out[name] = (result, trace_expressions(result, ConfigSymbols(per_pool_tp=name in PER_POOL_TP)))
    return out


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_trace_metric_reproduces_simulation(traced, scenario, metric):
    _, expressions = traced[scenario]
    simulated = expressions.simulated[metric]
    assert simulated is not None and simulated > 0
    assert expressions.evaluate(metric) == pytest.approx(simulated, rel=RTOL)


def test_scenarios_exercise_their_feature(traced):
    # Each scenario must actually hit the path it is named after.
    assert traced["retractions"][0].summary["retractions"] > 0
    assert traced["prefix_hits"][0].summary["cache_hit_rate"] > 0.3
    assert len(traced["multi_replica"][0].trace.timelines) == 3
    moe_symbols = {s.name for s in traced["moe_tp2"][1].makespan.free_symbols}
    assert {"E", "k", "I_moe"} & moe_symbols
    assert "EP" in {s.name for s in traced["moe_ep4"][1].makespan.free_symbols}
    assert "PP" in {s.name for s in traced["pp2"][1].makespan.free_symbols}
    assert len(traced["dp2_copies"][0].trace.timelines) == 2
    # P/D: TTFT counts the prefill servers' steps, TPOT the decode server's.
    pd_result, pd_expressions = traced["pd_2p1d"]
    assert {tl.pool for tl in pd_result.trace.timelines.values()} == {"prefill", "decode"}
    assert pd_expressions.constants["ttft_residual_sum_s"] > 0
    per_pool = {s.name for s in traced["pd_per_pool_tp"][1].mean_ttft.free_symbols}
    assert "TP_p" in per_pool
    assert "TP" not in per_pool
    assert "TP_d" in {s.name for s in traced["pd_per_pool_tp"][1].mean_tpot.free_symbols}


def test_trace_expressions_are_compact(traced):
    # Hundreds or thousands of steps collapse into one monomial per law term. The count depends on the
    # model's laws (DeepEP and MLA have the most), not on the number of steps.
    for name, (result, expressions) in traced.items():
        terms = len(sympy.Add.make_args(expressions.makespan))
        assert expressions.num_steps > 300, name
        assert terms < 200, name
        assert terms < expressions.num_steps / 2, name
        ttft_terms = sympy.Add.make_args(sympy.expand(expressions.mean_ttft * result.summary["num_completed"]))
        assert len(ttft_terms) < 200, name


def test_single_request_narrated():
    # One 100-token prompt, 3 output tokens, TP 1, everything at t = 0.
    result = simulate({"workload": {"num_requests": 1, "input_len": 100, "output_len": 3}}, record=True)
    timeline = result.trace.timelines[0]
    # Stage 1: one prefill step yields the first token; then a span of 2 decode steps.
    assert [u.num_steps for u in timeline.units] == [1, 2]
    assert result.trace.num_steps == 3
    expressions = trace_expressions(result)
    # Stage 2: TTFT is exactly the prefill step (no residual: the server was idle at arrival).
    assert expressions.constants["ttft_residual_sum_s"] == pytest.approx(0.0, abs=1e-15)
    ttft = result.requests["first_token_at"][0] - result.requests["arrived_at"][0]
    assert expressions.evaluate("mean_ttft") == pytest.approx(ttft, rel=RTOL)
    # Stage 3: makespan = TTFT + TPOT x 2 decode steps, symbolically.
    difference = expressions.makespan - expressions.mean_ttft - 2 * expressions.mean_tpot
    assert sympy.simplify(sympy.expand(difference)) == 0
    # Stage 4: the idle time of the only server is zero.
    assert expressions.constants["idle_s"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("constant", "factor"), [("attn_decode_memory", 0.99), ("gemm_compute", 1.005),
                                                 ("elementwise_floor_s", 1.5)])
def test_trace_predicts_perturbed_rerun(constant, factor):
    # A burst's schedule does not depend on timing, so changing an efficiency constant
    # (within the region where no branch flips) moves the simulation exactly as the expression predicts.
    scenario = {"server": {"tp": 2, "chunked_prefill_size": 1024},
                "workload": {"num_requests": 120, "seed": 3, "input_len": {"dist": "uniform", "min": 200, "max": 3000},
                             "output_len": {"dist": "uniform", "min": 1, "max": 300}}}
    expressions = trace_expressions(simulate(scenario, record=True))
    sym = ConfigSymbols().efficiency[constant]
    value = expressions.bindings[sym] * factor
    rerun = simulate({**scenario, "efficiency": {constant: value}}).summary
    override = {sym: value}
    assert rerun["duration_s"] != expressions.simulated["makespan"]
    assert expressions.evaluate("makespan", override) == pytest.approx(rerun["duration_s"], rel=RTOL)
    assert expressions.evaluate("mean_ttft", override) == pytest.approx(rerun["ttft_s"]["mean"], rel=RTOL)
    assert expressions.evaluate("mean_tpot", override) == pytest.approx(rerun["tpot_s"]["mean"], rel=RTOL)
    assert expressions.evaluate("throughput", override) == pytest.approx(rerun["output_throughput_tok_s"], rel=RTOL)


def test_trace_bindings_match_symbol_values():
    from sglsim.config.scenario import validate_scenario

    scenario = validate_scenario(SCENARIOS["fp8_tp4"])
    expressions = trace_expressions(simulate(scenario, record=True))
    values = ConfigSymbols().values(scenario=scenario)
    shared = set(values) & set(expressions.bindings)
    assert len(shared) > 20
    for sym in shared:
        assert values[sym] == pytest.approx(expressions.bindings[sym], rel=1e-12), sym.name
    assert expressions.bindings[ConfigSymbols().tp_size] == 4


def test_recording_is_off_by_default():
    result = simulate({"workload": {"num_requests": 5}})
    assert result.trace is None
    with pytest.raises(ConfigError, match="record=True"):
        trace_expressions(result)


def test_single_token_requests_have_no_tpot():
    result = simulate({"workload": {"num_requests": 4, "input_len": 64, "output_len": 1}}, record=True)
    expressions = trace_expressions(result)
    assert expressions.mean_tpot is None
    assert expressions.evaluate("mean_tpot") is None
    assert expressions.evaluate("makespan") == pytest.approx(result.summary["duration_s"], rel=RTOL)


class _FakeWorker:
    def __init__(self, cost):
        self.worker_id = 0
        self.pool = "default"
        self.cost = cost


def test_recorder_rejects_drifted_duration():
    # The recorder checks every prefill step against the law; a wrong duration is a broken invariant.
    from sglsim.config.scenario import validate_scenario
    from sglsim.simulation import Simulation

    sim = Simulation(validate_scenario({"workload": {"num_requests": 1}}))
    cost = sim.server.cost_model()
    batch = ExtendBatch([(Request(0, 0.0, 100, 3), 0, 100)])
    law_s = step_time(FLOAT_OPS, cost.extend_shape(batch.items), cost.ctx)
    recorder = TraceRecorder()
    recorder.on_extend_step(_FakeWorker(cost), batch, 0.0, law_s)
    with pytest.raises(RuntimeError, match="law gives"):
        recorder.on_extend_step(_FakeWorker(cost), batch, 1.0, law_s * 1.001)


def test_dp_attention_is_not_recorded():
    scenario = {"model": "qwen3-30b-a3b", "server": {"tp": 2, "dp": 2, "enable_dp_attention": True},
                "workload": {"num_requests": 4}}
    with pytest.raises(ConfigError, match="enable_dp_attention"):
        simulate(scenario, record=True)
    assert simulate(scenario).summary["num_completed"] == 4


def test_pools_with_two_tp_need_per_pool_symbols():
    result = simulate(SCENARIOS["pd_per_pool_tp"], record=True)
    with pytest.raises(ConfigError, match="per_pool_tp"):
        trace_expressions(result)


def test_per_pool_symbols_rejected_conflict():
    # One TP symbol cannot take two values, and the error names the fix.
    from sglsim.symbolic.binding import _Binder

    binder = _Binder()
    sym = ConfigSymbols().tp_size
    binder.bind(sym, 2)
    with pytest.raises(ConfigError, match="per_pool_tp"):
        binder.bind(sym, 4)


@settings(max_examples=12, deadline=None)
@given(num_requests=st.integers(1, 40), chunk=st.sampled_from([64, 256, 1024, -1]),
       max_running=st.integers(1, 32), tp=st.sampled_from([1, 2]), rate=st.sampled_from([None, 5.0, 50.0]),
       seed=st.integers(0, 1000))
def test_trace_exact_for_random_workloads(num_requests, chunk, max_running, tp, rate, seed):
    scenario = {"server": {"tp": tp, "chunked_prefill_size": chunk, "max_running_requests": max_running},
                "workload": {"num_requests": num_requests, "rate": rate, "seed": seed,
                             "input_len": {"dist": "uniform", "min": 1, "max": 2000},
                             "output_len": {"dist": "uniform", "min": 1, "max": 200}}}
    result = simulate(scenario, record=True)
    expressions = trace_expressions(result)
    for metric in METRICS:
        simulated = expressions.simulated[metric]
        value = expressions.evaluate(metric)
        if simulated is None:
            assert value is None
        else:
            assert math.isclose(value, simulated, rel_tol=RTOL), metric
    # Residuals are parts of steps in flight at arrival: never negative.
    assert expressions.constants["ttft_residual_sum_s"] >= -1e-9
    assert abs(expressions.constants["tpot_gap_sum_s"]) <= 1e-9 * max(1.0, expressions.simulated["makespan"])
