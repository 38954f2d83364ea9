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


def _doc_ep_prefill_rows() -> list[tuple[int, int]]:
    """(predicted, published) per row of the large-scale EP prefill table in docs/parallelism.md."""
    text = (BENCH.parents[1] / "docs" / "parallelism.md").read_text()
    section = text.split("## Large-scale EP prefill", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("1K", "2K", "4K"):
            rows.append((int(cells[1].replace(",", "")), int(cells[2].replace(",", ""))))
    return rows


def test_docs_ep_prefill_table_matches_the_bench(checks):
    # The table kept the figures of the hand-set constants (64,013 tok/s, +11 %) after the per-GPU
    # fitted constants moved the prediction to about 50,000 (-13 %).
    documented = _doc_ep_prefill_rows()
    rows = checks.ep_prefill_rows()
    assert [published for _, published in documented] == [row["measured"] for row in rows]
    for (predicted, _), row in zip(documented, rows):
        assert predicted == round(row["predicted"])
