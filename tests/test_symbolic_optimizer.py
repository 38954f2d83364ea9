"""The optimizer's Pareto grid search over the symbolic model's compiled metrics."""

from __future__ import annotations

import pytest

from sglsim import ConfigError, MultiObjectiveOptimizer, ObjectiveDirection, ObjectiveSpec
from sglsim.symbolic.constraints import ConstraintBuilder
from sglsim.symbolic.steady_state import SymbolicMetricBuilder
from sglsim.symbolic.symbols import ConfigSymbols

S = ConfigSymbols()


def test_pareto_front_over_grid():
    metrics = SymbolicMetricBuilder(S).build_all_expressions()
    constraints = ConstraintBuilder(S, metrics)
    constraints.add_total_gpu_constraint(8)
    values = {**S.values(), S.cache_hit_rate: 0.0, S.avg_prompt_len: 1000.0, S.avg_output_len: 200.0,
              S.avg_prefix_match: 0.0, S.prompt_len_scv: 0.2, S.output_len_scv: 0.1, S.arrival_rate: 10.0,
              S.batch_cap_tokens: 16384, S.chunk_size: 8192, S.tp_size: 1, S.dp_size: 1, S.ep_size: 1}
    objectives = [ObjectiveSpec("throughput", ObjectiveDirection.MAXIMIZE),
                  ObjectiveSpec("power_consumption", ObjectiveDirection.MINIMIZE)]
    optimizer = MultiObjectiveOptimizer(objectives, constraints=constraints.get_all_constraints(), bind=values,
                                        metrics=metrics)
    found = optimizer.pareto_grid_search({S.N_p: [1, 2, 4, 8], S.N_d: [1, 2, 4, 8], S.batch_cap_requests: [64, 128]})
    assert found.nfev == 32
    # N_p + N_d <= 8 with TP 1 keeps 9 of the 16 (N_p, N_d) pairs, for both batch caps.
    assert found.num_feasible == 18
    assert found.pareto
    for point in found.pareto:
        assert point.config["N_p"] + point.config["N_d"] <= 8
    # On the front, more power always buys more throughput.
    ordered = sorted(found.pareto, key=lambda p: p.objectives["power_consumption"])
    throughputs = [p.objectives["throughput"] for p in ordered]
    assert throughputs == sorted(throughputs)


def test_optimizer_needs_an_objective():
    with pytest.raises(ConfigError, match="expected at least one objective"):
        MultiObjectiveOptimizer([]).grid_search({S.N_p: [1]})
