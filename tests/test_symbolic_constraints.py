"""Constraints built from the steady-state metrics, printed as `expr > 0`."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from sglsim import ConfigError
from sglsim.symbolic.constraints import ConstraintBuilder
from sglsim.symbolic.steady_state import SymbolicMetricBuilder
from sglsim.symbolic.symbols import ConfigSymbols

S = ConfigSymbols()


@pytest.fixture(scope="module")
def builder():
    metrics = SymbolicMetricBuilder(S).build_all_expressions()
    constraints = ConstraintBuilder(S, metrics)
    constraints.add_memory_constraint(80 * 1024**3)
    constraints.add_ttft_slo(0.5)
    constraints.add_tpot_slo(0.05)
    constraints.add_total_gpu_constraint(16)
    return constraints


def test_seed_constraints(builder):
    names = [c.name for c in builder.get_all_constraints()]
    assert names == ["memory_limit", "ttft_slo", "tpot_slo", "max_gpus"]
    for constraint in builder.get_all_constraints():
        assert str(constraint).endswith(" > 0")
        assert constraint.description
    # 0.9 x 80 GiB, the seed's printed constant.
    memory = builder.get_constraint("memory_limit").expr
    assert sympy.Float(77309411328.0) in memory.atoms(sympy.Float)
    assert builder.get_constraint("max_gpus").expr == 16 - S.tp_size * (S.N_p + S.N_d)
    assert str(builder.get_constraint("max_gpus")) == "-TP*(N_d + N_p) + 16 > 0"
    assert builder.get_constraint("tpot_slo").expr == sympy.Float(0.05) - builder.metrics.tpot


def test_gpu_budget_boundary_is_satisfied(builder):
    # 2 x (4 + 4) = 16 GPUs uses the whole budget: allowed; 18 is not.
    constraint = builder.get_constraint("max_gpus")
    satisfied = constraint.satisfied({S.tp_size: np.array([2, 2]), S.N_p: np.array([4, 5]), S.N_d: np.array([4, 4])})
    assert satisfied.tolist() == [True, False]


def test_memory_constraint_rejects_oversized_batch(builder):
    point = {**S.values(model="llama-3.1-8b"), S.avg_prompt_len: 2000.0, S.avg_output_len: 500.0,
             S.chunk_size: 8192, S.batch_cap_tokens: 16384, S.tp_size: 1}
    memory = builder.get_constraint("memory_limit")
    assert memory.satisfied({**point, S.batch_cap_requests: 64})
    assert not memory.satisfied({**point, S.batch_cap_requests: 4096})


def test_throughput_and_cost_constraints():
    constraints = ConstraintBuilder(S)
    constraints.add_min_throughput(10_000)
    added = constraints.add_cost_budget(usd_per_hour=48, usd_per_million_tokens=0.5)
    assert [c.name for c in added] == ["cost_per_hour", "cost_per_token"]
    expected = sympy.Float(48) - S.tp_size * (S.N_p + S.N_d) * S.gpu_price
    assert constraints.get_constraint("cost_per_hour").expr == expected
    summary = constraints.summarize()
    assert summary.count("\n") == 2
    assert "min_throughput" in summary
    assert "USD per hour" in summary


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.add_memory_constraint(-1), "invalid memory_bytes"),
    (lambda c: c.add_memory_constraint(80e9, safety_margin=1.5), "invalid safety_margin"),
    (lambda c: c.add_ttft_slo(0), "invalid ttft_s"),
    (lambda c: c.add_total_gpu_constraint(2.5), "invalid max_gpus"),
    (lambda c: c.add_cost_budget(), "invalid cost budget"),
    (lambda c: c.get_constraint("nope"), "unknown constraint"),
])
def test_invalid_constraint_input(call, message):
    with pytest.raises(ConfigError, match=message):
        call(ConstraintBuilder(S))


def test_empty_summary():
    assert ConstraintBuilder(S).summarize() == "no constraints"
