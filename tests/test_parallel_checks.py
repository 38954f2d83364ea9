"""The published operator and large-scale EP rows that `bench/bench_parallel_checks.py` reports.

These guard the prediction error documented in docs/parallelism.md: a change
to the laws or their constants that moves a row far off its measurement
fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_parallel_checks.py"


@pytest.fixture(scope="module")
def checks():
    spec = importlib.util.spec_from_file_location("parallel_checks", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error(row):
    return (row["predicted"] - row["measured"]) / row["measured"]


def test_all_reduce_rows_within_25_percent(checks):
    rows = checks.all_reduce_rows()
    assert len(rows) == 6
    for row in rows:
        assert abs(_error(row)) < 0.25, row


def test_deepep_rows_within_15_percent(checks):
    rows = checks.deepep_rows()
    assert len(rows) == 14
    for row in rows:
        assert abs(_error(row)) < 0.15, row


def test_large_scale_ep_prefill(checks):
    rows = checks.ep_prefill_rows()
    per_node = [row["predicted"] for row in rows]
    # longer prompts spend more time in quadratic attention, as the published rows show
    assert per_node[0] > per_node[1] > per_node[2]
    for row in rows:
        assert abs(_error(row)) < 0.35, row


def test_ep_prefill_rank_batches(checks):
    from sglsim.simulation import simulate

    result = simulate(checks.ep_prefill_scenario(2048))
    workers = result.summary["workers"]
    # 32 DP ranks, each prefilling 8 prompts of 2048 tokens per step for 6 steps
    assert len(workers) == 32
    assert all(w["prefill_steps"] == 6 for w in workers)
    assert all(w["prefill_tokens"] == 6 * 16384 for w in workers)
    assert result.config["num_gpus"] == 32
