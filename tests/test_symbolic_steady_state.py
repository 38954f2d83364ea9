"""The steady-state model: structure, agreement with the laws and the simulator, regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from sglsim import ConfigError, simulate
from sglsim.config.scenario import validate_scenario
from sglsim.costs.forward import step_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.models import get_model
from sglsim.serving import memory_plan
from sglsim.serving.parallel import ParallelConfig
from sglsim.symbolic.bridge import bind, compile_expression
from sglsim.symbolic.footprint import (kv_bytes_per_token_per_gpu, reserve_bytes, symbolic_model_spec,
                                       weight_bytes_per_gpu)
from sglsim.symbolic.frozen import freeze
from sglsim.symbolic.kernels import attention_backend_factor
from sglsim.symbolic.points import scenario_point
from sglsim.symbolic.steady_state import METRIC_NAMES, SymbolicMetricBuilder
from sglsim.symbolic.symbols import ConfigSymbols

S = ConfigSymbols()
WORKLOAD = {S.cache_hit_rate: 0.0, S.avg_prompt_len: 1000.0, S.avg_output_len: 200.0, S.avg_prefix_match: 0.0,
            S.prompt_len_scv: 0.2, S.output_len_scv: 0.1, S.arrival_rate: 5.0}
DECISIONS = {S.N_p: 1, S.N_d: 1, S.num_replicas: 1, S.chunk_size: 8192, S.batch_cap_tokens: 16384,
             S.batch_cap_requests: 64, S.tp_size: 1, S.dp_size: 1, S.ep_size: 1}


@pytest.fixture(scope="module")
def colocated():
    return SymbolicMetricBuilder(S, deployment="colocated").build_all_expressions()


@pytest.fixture(scope="module")
def disaggregated():
    return SymbolicMetricBuilder(S).build_all_expressions()


def value(expr, point):
    return float(compile_expression(expr, bind_values=point)())


def point(model="llama-3.1-8b", gpu="h100", **changes):
    out = {**S.values(model=model, gpu=gpu), **WORKLOAD, **DECISIONS}
    out.update({S.by_name(name): v for name, v in changes.items()})
    return out


def test_metric_set_and_lookup(colocated):
    assert tuple(colocated.as_dict()) == METRIC_NAMES
    assert colocated.get_expression("throughput") is colocated.throughput
    assert colocated.get_expression("prefill_time") is colocated.components["prefill_time"]
    with pytest.raises(ConfigError, match="unknown metric"):
        colocated.get_expression("latency")


@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
@pytest.mark.parametrize(("model", "tp"), [("llama-3.1-70b", 4), ("qwen3-30b-a3b", 1), ("deepseek-v3", 8)])
def test_values_leave_no_free_symbol(deployment, model, tp):
    metrics = SymbolicMetricBuilder(S, model=model, deployment=deployment).build_all_expressions()
    full = point(model=model, gpu="h200", tp_size=tp)
    for name, expr in metrics.as_dict().items():
        bound = bind(expr, full)
        assert not bound.free_symbols, (name, bound.free_symbols)
        assert math.isfinite(float(bound)), name
        assert float(bound) >= 0, name


def test_per_pool_tp_symbols():
    symbols = ConfigSymbols(per_pool_tp=True)
    metrics = SymbolicMetricBuilder(symbols).build_all_expressions()
    names = {s.name for s in metrics.throughput.free_symbols}
    assert {"TP_p", "TP_d"} <= names
    assert "TP" not in names
    assert metrics.components["num_gpus"] == symbols.N_p * symbols.tp_prefill + symbols.N_d * symbols.tp_decode


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b"])
def test_step_composition_matches_forward_law(model):
    # With every backend factor at 1 the model's step time is the simulator's law, on both shapes.
    builder = SymbolicMetricBuilder(S, model=model, deployment="colocated")
    pool = builder.pool("default")
    full = point(model=model, tp_size=2)
    from sglsim.serving.server_spec import build_server_spec

    scenario = validate_scenario({"model": model, "server": {"tp": 2}})
    cost = build_server_spec(model, "h100", scenario.server).cost_model()
    for shape_sym, shape_num in [
        (pool.cost.decode_shape(37, 37 * 1500), cost.decode_shape(37, 37 * 1500)),
        (pool.cost.extend_shape([(None, 300, 700)]), cost.extend_shape([(None, 300, 700)])),
    ]:
        law = step_time(FLOAT_OPS, shape_num, cost.ctx)
        assert value(builder.step_time(shape_sym, pool), full) == pytest.approx(law, rel=1e-12)


def test_decode_sum_closed_form(colocated):
    # The decode loop is a Sum over output tokens; its closed form is (n_out - 1) x the mid-context step.
    full = point(avg_output_len=40.0)
    loop_sum = bind(colocated.components["decode_loop_sum"], full)
    assert isinstance(loop_sum, sympy.Sum)
    summed = float(loop_sum.doit())
    closed = value(colocated.components["decode_loop"], full)
    assert summed == pytest.approx(closed, rel=1e-12)


def test_tpot_includes_weight_reads(disaggregated):
    # At batch 1 a decode step still reads every weight once: TPOT >= weights per GPU / HBM bandwidth.
    full = point(batch_cap_requests=1, arrival_rate=math.inf)
    weights = value(weight_bytes_per_gpu(S, symbolic_model_spec(S, get_model("llama-3.1-8b")), S.tp_size), full)
    assert value(disaggregated.tpot, full) > weights / get_gpu("h100").mem_bw_bytes_s
    # The TPOT is the time of a whole step, not divided by the batch: it grows with the batch.
    assert value(disaggregated.tpot, point(batch_cap_requests=128, arrival_rate=math.inf)) > \
        value(disaggregated.tpot, full)


@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
def test_batch_follows_load(colocated, disaggregated, deployment):
    # Below saturation the decode batch is what the arrival rate sustains (Little's law).
    metrics = colocated if deployment == "colocated" else disaggregated
    full_batch = value(metrics.components["batch"], point())
    rate = value(metrics.components["request_rate"], point(arrival_rate=math.inf))
    batches = [value(metrics.components["batch_at_load"], point(arrival_rate=load * rate))
               for load in (0.1, 0.5, 0.9)]
    assert batches == sorted(batches)
    assert batches[0] < 0.25 * full_batch
    assert value(metrics.components["batch_at_load"], point(arrival_rate=math.inf)) == full_batch
    # A smaller batch decodes faster.
    assert value(metrics.tpot, point(arrival_rate=0.1 * rate)) < value(metrics.tpot, point(arrival_rate=math.inf))
    # Little's law holds for the predicted batch: B = lambda_per_server x (n_out - 1) x TPOT.
    servers = 1
    per_server = 0.5 * rate / servers
    tpot = value(metrics.tpot, point(arrival_rate=0.5 * rate))
    if deployment == "disaggregated":
        assert batches[1] == pytest.approx(per_server * 199 * tpot, rel=1e-9)


def test_model_that_does_not_fit_serves_nothing(colocated):
    # Llama-3.1-70B needs 141 GB of weights: one 80 GB H100 has no KV pool left.
    full = point(model="llama-3.1-70b", gpu="h100")
    assert value(colocated.components["kv_pool_tokens"], full) == 0
    assert value(colocated.throughput, full) == 0
    assert math.isinf(value(colocated.ttft, full))


def test_kv_limited_batch(colocated):
    # A pool with room for 10 requests of 1100 tokens caps the batch below B_req = 64.
    batch = value(colocated.components["batch"], point(cache_capacity=11000.0))
    assert batch == pytest.approx(11000.0 / 1100.0)
    assert value(colocated.components["batch"], point()) == 64


def test_ttft_infinite_past_capacity(colocated, disaggregated):
    for metrics in (colocated, disaggregated):
        rate = value(metrics.components["request_rate"], point())
        assert math.isfinite(value(metrics.ttft, point(arrival_rate=0.5 * rate)))
        assert math.isinf(value(metrics.ttft, point(arrival_rate=2.0 * rate)))
        assert value(metrics.goodput, point(arrival_rate=2.0 * rate)) == 0.0


@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
def test_ttft_grows_with_load(colocated, disaggregated, deployment):
    metrics = colocated if deployment == "colocated" else disaggregated
    rate = value(metrics.components["request_rate"], point())
    ttfts = [value(metrics.ttft, point(arrival_rate=load * rate)) for load in (0.1, 0.5, 0.9, 0.99)]
    assert ttfts == sorted(ttfts)
    assert ttfts[0] > value(metrics.components["prefill_time"], point())
    # Near capacity the wait for a batch slot dominates.
    assert ttfts[3] > 5 * ttfts[0]


def test_disaggregated_rate_is_min_of_stages(disaggregated):
    full = point(N_p=1, N_d=8)
    prefill_bound = value(disaggregated.components["request_rate"], full)
    assert prefill_bound == pytest.approx(1.0 / value(disaggregated.components["prefill_time"], full))
    assert value(disaggregated.network_utilization, full) > 0


def test_colocated_network_is_idle(colocated):
    assert colocated.network_utilization == 0


@pytest.mark.parametrize("model", ["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "qwen3-235b-a22b"])
@pytest.mark.parametrize(("tp", "ep"), [(1, 1), (4, 1), (8, 8), (16, 4)])
def test_memory_terms_match_memory_plan(model, tp, ep):
    spec = get_model(model)
    sym_spec = symbolic_model_spec(S, spec)
    full = {**S.values(model=model), S.tp_size: tp, S.ep_size: ep}
    layout = ParallelConfig(tp=tp, ep=ep if spec.is_moe else 1)
    assert value(weight_bytes_per_gpu(S, sym_spec, S.tp_size), full) == pytest.approx(
        memory_plan.weight_bytes_per_gpu(spec, layout), rel=1e-12)
    assert value(kv_bytes_per_token_per_gpu(S, sym_spec, S.tp_size), full) == pytest.approx(
        memory_plan.kv_bytes_per_token_per_gpu(spec, layout, "bf16"), rel=1e-12)


@pytest.mark.parametrize("chunk", [1024, 8192])
def test_reserve_matches_memory_plan(chunk):
    gpu = get_gpu("h200")
    full = {**S.values(gpu="h200"), S.tp_size: 2, S.chunk_size: chunk}
    expected = memory_plan.reserve_mb(gpu, ParallelConfig(tp=2), chunk, 16384, 256) * memory_plan.MB
    assert value(reserve_bytes(S, S.tp_size), full) == pytest.approx(expected, rel=1e-12)


def test_kv_pool_matches_memory_plan():
    scenario = validate_scenario({"model": "llama-3.1-70b", "server": {"tp": 4}})
    metrics = SymbolicMetricBuilder(S, model="llama-3.1-70b", deployment="colocated").build_all_expressions()
    result = simulate({**scenario.model_dump(), "workload": {"num_requests": 2}})
    full = scenario_point(S, scenario, freeze(result))
    plan_tokens = result.config["server"]["max_total_num_tokens"]
    assert value(metrics.components["kv_pool_tokens"], full) == pytest.approx(plan_tokens, abs=1.0)


def test_attention_backend_guards():
    factor = attention_backend_factor(S)
    speeds = {S.backend_speed[name]: 1.0 for name in S.backend_speed}
    # FA3 only on Hopper: a faster FA3 wins on SM 90, not on SM 80.
    fast_fa3 = {**speeds, S.backend_speed["fa3"]: 0.5, S.block_size: 1}
    assert float(bind(factor, {**fast_fa3, S.sm_version: 90})) == 0.5
    assert float(bind(factor, {**fast_fa3, S.sm_version: 80})) == 1.0
    # TRT-LLM MHA needs Blackwell and a native page size.
    fast_trt = {**speeds, S.backend_speed["trtllm_mha"]: 0.8, S.sm_version: 100}
    assert float(bind(factor, {**fast_trt, S.block_size: 64})) == 0.8
    assert float(bind(factor, {**fast_trt, S.block_size: 1})) == 1.0
    assert float(bind(factor, {**fast_trt, S.block_size: 64, S.sm_version: 90})) == 1.0


def test_invalid_deployment():
    with pytest.raises(ConfigError, match="unknown deployment"):
        SymbolicMetricBuilder(S, deployment="mixed")


def _window(result):
    """Throughput and mean TPOT in the middle half of a closed-loop run (ramp-up and drain excluded)."""
    q = result.requests
    t0, t1 = q["arrived_at"].min(), q["finished_at"].max()
    a, b = t0 + 0.25 * (t1 - t0), t0 + 0.75 * (t1 - t0)
    done = (q["finished_at"] >= a) & (q["finished_at"] <= b)
    inside = (q["first_token_at"] >= a) & (q["finished_at"] <= b) & (q["output_len"] > 1)
    tpot = ((q["finished_at"] - q["first_token_at"]) / (q["output_len"] - 1))[inside]
    return q["output_len"][done].sum() / (b - a), float(np.mean(tpot))


@pytest.mark.parametrize(("server", "cluster"), [
    ({"max_running_requests": 32, "chunked_prefill_size": 2048}, {}),
    ({"max_running_requests": 128, "chunked_prefill_size": 512, "tp": 2}, {}),
    ({"max_running_requests": 64, "chunked_prefill_size": 8192}, {"prefill": {"workers": 1}, "decode": {"workers": 1}}),
    ({"max_running_requests": 128, "chunked_prefill_size": 8192}, {"prefill": {"workers": 2}, "decode": {"workers": 1}}),
])
def test_saturation_matches_simulation(colocated, disaggregated, server, cluster):
    # Closed loop with more clients than batch slots keeps the deployment saturated.
    batch = server["max_running_requests"]
    scenario = validate_scenario({"server": server, "cluster": cluster, "workload": {
        "num_requests": 10 * batch, "concurrency": 2 * batch, "seed": 1,
        "input_len": {"dist": "uniform", "min": 500, "max": 1500},
        "output_len": {"dist": "uniform", "min": 100, "max": 300}}})
    metrics = disaggregated if cluster else colocated
    result = simulate(scenario)
    full = scenario_point(S, scenario, freeze(result))
    throughput, tpot = _window(result)
    assert value(metrics.throughput, full) == pytest.approx(throughput, rel=0.10)
    assert value(metrics.tpot, full) == pytest.approx(tpot, rel=0.10)
