"""The deployment planner and the verification loop, on a small hand-written model and real simulations."""

from __future__ import annotations

import pytest
import sympy

from sglsim.config.scenario import validate_scenario
from sglsim.errors import ConfigError
from sglsim.optimizer.deployment import launch_commands, scenario_for
from sglsim.optimizer.planner import DeploymentModel, DeploymentPlanner, PlanSpec
from sglsim.optimizer.rate_search import SLOSpec
from sglsim.optimizer.result import Candidate
from sglsim.optimizer.runner import SimulationRunner
from sglsim.optimizer.verify import VerificationSettings, verify

N_r, TP, B_req = sympy.symbols("N_r TP B_req", positive=True, integer=True)
n_in, n_out, lam = sympy.symbols("n_in_avg n_out_avg lambda_req", positive=True)
FROZEN = {"avg_prompt_len": "n_in_avg", "avg_output_len": "n_out_avg", "arrival_rate": "lambda_req"}


def toy_colocated() -> DeploymentModel:
    """N_r servers of TP GPUs: decode step 6 ms + 0.1 ms per sequence, prefill 20 us per token, M/M/1 wait."""
    step = (0.006 + 0.0001 * B_req) / TP
    prefill = 20e-6 * n_in / TP
    rate = N_r * B_req / ((n_out - 1) * step + B_req * prefill)
    rho = lam / rate
    metrics = {
        "ttft": sympy.Piecewise((prefill / (1 - rho), rho < 1), (sympy.oo, True)),
        "tpot": step + prefill * B_req / (n_out - 1),
        "request_rate": rate,
        "peak_memory": 16e9 / TP + B_req * (n_in + n_out) * 131072 / TP,
        "num_gpus": N_r * TP,
    }
    return DeploymentModel("colocated", metrics, {}, ("N_r", "TP", "B_req"), FROZEN)


BASE = validate_scenario({"model": "llama-3.1-8b", "gpu": "h100", "cluster": {"router": "round_robin"},
                          "workload": {"input_len": 512, "output_len": 32, "seed": 3}})
SLO = SLOSpec(ttft_s=0.2, tpot_s=0.03)
FROZEN_VALUES = {"avg_prompt_len": 512.0, "avg_output_len": 32.0}


def planner(**spec) -> DeploymentPlanner:
    spec = {"gpus": 2, "slo": SLO, "domains": {"N_r": [1, 2], "TP": [1, 2], "B_req": [8, 32, 128]}, **spec}
    return DeploymentPlanner(BASE, [toy_colocated()], PlanSpec(**spec), verify_requests=60)


def test_analytic_ranking_by_hand():
    # Budget 2 GPUs: (N_r, TP) in {(1,1), (2,1), (1,2)}. B_req = 128 breaks TPOT <= 30 ms everywhere
    # (TP 1: 18.8 ms step + 42.3 ms of prefill per output token; TP 2: 9.4 + 21.1 = 30.5 ms).
    result = planner().rank(FROZEN_VALUES)
    assert result.success
    # At B_req = 32 one TP-2 server beats two TP-1 servers: the same capacity, but a prefill twice as
    # fast leaves more room under the 0.2 s TTFT target before queueing eats it.
    assert [c.config for c in result.candidates[:2]] == [{"N_r": 1, "TP": 2, "B_req": 32},
                                                          {"N_r": 2, "TP": 1, "B_req": 32}]
    assert result.candidates[0].objectives["throughput"] == pytest.approx(3256.05, rel=1e-5)
    # The Pareto front trades throughput for TPOT: its lowest-TPOT point has the smallest batch.
    assert [c.config["B_req"] for c in result.pareto] == [32, 8]


def test_goodput_rate_meets_ttft_target():
    # lambda* solves prefill / (1 - lambda / rate) = 0.2 s: lambda* = rate x (1 - prefill / 0.2).
    p = planner()
    config = {"N_r": 1, "TP": 1, "B_req": 32}
    predicted = p.predict(Candidate(config, {}, {}, "colocated"), FROZEN_VALUES)
    prefill = 20e-6 * 512
    rate = 32 / (31 * (0.006 + 0.0032) + 32 * prefill)
    assert predicted["capacity_req_s"] == pytest.approx(rate, rel=1e-9)
    assert predicted["rate_req_s"] == pytest.approx(rate * (1 - prefill / 0.2), rel=1e-5)
    assert predicted["throughput_tok_s"] == pytest.approx(32 * predicted["rate_req_s"], rel=1e-12)
    assert predicted["ttft_s"] == pytest.approx(0.2, rel=1e-4)


def test_fixed_rate_mode_uses_capacity():
    p = planner(goodput=False)
    frozen = {**FROZEN_VALUES, "arrival_rate": 5.0}
    predicted = p.predict(Candidate({"N_r": 2, "TP": 1, "B_req": 32}, {}, {}, "colocated"), frozen)
    assert predicted["rate_req_s"] == 5.0
    assert predicted["throughput_tok_s"] == pytest.approx(32 * predicted["capacity_req_s"])


def test_infeasible_plan_names_binding_constraint():
    # A 1 ms TPOT target is below every decode step (6 ms or more).
    result = planner(slo=SLOSpec(ttft_s=0.2, tpot_s=0.001)).rank(FROZEN_VALUES)
    assert not result.success
    assert result.infeasibility["binding"] == "tpot_slo"
    assert "binding constraint tpot_slo" in result.message


def test_verification_loop_on_real_simulations():
    p = planner()
    runner = SimulationRunner()
    settings = VerificationSettings(top_k=3, max_pareto=1, max_iterations=3, tolerance=0.1)
    outcome = verify(p, runner, SLO, FROZEN_VALUES, settings)
    # Stage 1: the analytic top 3 (plus one Pareto point) were simulated with rate searches.
    assert 3 <= len(outcome.ranked) <= 4
    assert runner.simulated == sum(len(vc.search.runs) for vc in outcome.ranked)
    # Stage 2: re-freezing from the fixed-length runs changes nothing, so the ranking repeats.
    assert outcome.converged and len(outcome.iterations) == 2
    assert outcome.frozen["avg_prompt_len"] == 512.0
    # Stage 3: the chosen configuration meets the SLOs in simulation and has the best simulated goodput.
    best = outcome.best
    assert best is not None and best.meets_slo
    assert best.record.ttft_s["p90"] <= 0.2
    assert best.record.tpot_s["p90"] <= 0.03
    assert best.objective == max(vc.objective for vc in outcome.ranked)
    assert best.predicted["throughput_tok_s"] > 0
    assert best.search.rate_req_s > 0


def test_scenario_mapping_colocated_and_pd():
    colocated = scenario_for(BASE, "colocated", {"N_r": 3, "TP": 2, "c": 4096, "B_tok": 8192, "B_req": 64})
    assert colocated.cluster.replicas == 3
    assert (colocated.server.tp, colocated.server.chunked_prefill_size) == (2, 4096)
    assert (colocated.server.max_prefill_tokens, colocated.server.max_running_requests) == (8192, 64)
    pd = scenario_for(BASE, "disaggregated", {"N_p": 1, "N_d": 2, "TP": 4, "c": 8192, "B_req": 48})
    assert pd.cluster.replicas == 0
    assert pd.cluster.prefill.workers == 1
    assert pd.cluster.decode.workers == 2
    assert pd.pool_server_args("prefill").tp == 4
    assert pd.pool_server_args("prefill").chunked_prefill_size == 8192
    assert pd.pool_server_args("decode").max_running_requests == 48
    commands = "\n".join(launch_commands(pd))
    assert "--disaggregation-mode prefill" in commands
    assert "--disaggregation-mode decode" in commands
    assert "--max-running-requests 48" in commands
    assert "--pd-disaggregation" in commands


def test_bad_decision_value_is_rejected():
    with pytest.raises(ConfigError, match="invalid N_r 1.5: expected a positive integer"):
        scenario_for(BASE, "colocated", {"N_r": 1.5})
    with pytest.raises(ConfigError, match="unknown objective 'speed'"):
        PlanSpec(gpus=2, slo=SLO, objective="speed")


def test_cli_objective_names_match_planner():
    from sglsim.optimizer.choices import OBJECTIVE_NAMES
    from sglsim.optimizer.planner import OBJECTIVES

    assert tuple(OBJECTIVES) == OBJECTIVE_NAMES
