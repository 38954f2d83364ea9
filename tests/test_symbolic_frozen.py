"""Frozen workload parameters measured from a simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sglsim import ConfigError, simulate
from sglsim.symbolic.frozen import freeze
from sglsim.symbolic.steady_state import SymbolicMetricBuilder
from sglsim.symbolic.symbols import ConfigSymbols


@pytest.fixture(scope="module")
def shared_prefix_run():
    return simulate({"workload": {"num_requests": 200, "rate": 8.0, "seed": 4,
                                  "shared_prefix": {"num_groups": 4, "system_prompt_len": 800, "turns": 2},
                                  "input_len": {"dist": "uniform", "min": 100, "max": 600},
                                  "output_len": {"dist": "uniform", "min": 20, "max": 120}}})


def test_freeze_measures_averages(shared_prefix_run):
    requests = shared_prefix_run.requests
    frozen = freeze(shared_prefix_run)
    assert frozen.num_requests == 200
    assert frozen.avg_prompt_len == pytest.approx(requests["input_len"].mean())
    assert frozen.avg_output_len == pytest.approx(requests["output_len"].mean())
    # pi_hit x prefix_match x n_in_avg is the mean cached prompt length.
    cached = frozen.cache_hit_rate * frozen.avg_prefix_match * frozen.avg_prompt_len
    assert cached == pytest.approx(requests["cached_tokens"].mean(), rel=1e-12)
    assert 0 < frozen.cache_hit_rate <= 1
    assert frozen.avg_prefix_match > 0
    # And the token share matches the summary's cache hit rate.
    assert frozen.cache_hit_rate * frozen.avg_prefix_match == pytest.approx(
        shared_prefix_run.summary["cache_hit_rate"], rel=1e-12)
    assert frozen.prompt_len_scv > 0
    assert frozen.output_len_scv > 0
    arrivals = np.sort(requests["arrived_at"])
    assert frozen.arrival_rate == pytest.approx(199 / (arrivals[-1] - arrivals[0]))


def test_freeze_without_hits_or_spread():
    frozen = freeze(simulate({"workload": {"num_requests": 10, "input_len": 300, "output_len": 20}}))
    assert frozen.cache_hit_rate == 0
    assert frozen.avg_prefix_match == 0
    assert frozen.prompt_len_scv == 0
    assert frozen.output_len_scv == 0
    # Everything arrives at t = 0: the arrival rate is infinite, not a made-up number.
    assert math.isinf(frozen.arrival_rate)


def test_substitute_binds_frozen_symbols(shared_prefix_run):
    symbols = ConfigSymbols()
    metrics = SymbolicMetricBuilder(symbols, deployment="colocated").build_all_expressions()
    frozen = freeze(shared_prefix_run)
    bound = frozen.substitute(metrics, symbols)
    for name, expr in bound.as_dict().items():
        assert not set(symbols.frozen_params()) & expr.free_symbols, name
    tpot = frozen.substitute(metrics.tpot, symbols)
    assert symbols.avg_prompt_len not in tpot.free_symbols


def test_freeze_rejects_empty_result():
    # Every prompt is longer than the server accepts, so every request is rejected.
    result = simulate({"workload": {"num_requests": 3, "input_len": {"dist": "uniform", "min": 200_000,
                                                                     "max": 300_000}, "output_len": 2}})
    assert result.summary["num_rejected"] == 3
    with pytest.raises(ConfigError, match="no request completed"):
        freeze(result)
