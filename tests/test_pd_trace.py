"""P/D runs on the real Mooncake conversation trace (12,031 requests with prefix block ids)."""

from __future__ import annotations

import json

import pytest

from sglsim.cli.main import main
from sglsim.config.scenario import validate_scenario
from sglsim.simulation import simulate

pytestmark = pytest.mark.slow


def _pd_scenario(trace, policy: str, num_requests: int | None, workers: int) -> dict:
    return {"model": "llama-3.1-70b", "gpu": "h100", "server": {"tp": 4},
            "cluster": {"router": policy, "prefill": {"workers": workers}, "decode": {"workers": workers}},
            "workload": {"trace": str(trace), "num_requests": num_requests}}


def test_whole_trace_3p1d_cli(mooncake_trace, tmp_path):
    out = tmp_path / "out.json"
    code = main(["simulate", "--trace", str(mooncake_trace), "--model", "llama-3.1-70b", "--gpu", "h100",
                 "--tp", "4", "--prefill-workers", "3", "--decode-workers", "1", "--router", "cache_aware",
                 "--output", str(out), "--no-progress", "--quiet"])
    assert code == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["num_completed"] + summary["num_rejected"] == 12031
    assert summary["num_completed"] == 12031
    transfer = summary["kv_transfer_s"]
    assert transfer["count"] == 12031
    assert 0 < transfer["p50"] <= transfer["p99"]
    pools = summary["pools"]
    assert (pools["prefill"]["num_workers"], pools["decode"]["num_workers"]) == (3, 1)
    for name in ("prefill", "decode"):
        assert 0 < pools[name]["utilization"] <= 1
        assert pools[name]["kv_transfer_s"]["p99"] == pytest.approx(transfer["p99"])
    assert pools["decode"]["decode_batch_size"]["mean"] > 1


def test_cache_aware_beats_round_robin_on_prefix_hits(mooncake_trace):
    hits = {}
    for policy in ("cache_aware", "round_robin"):
        result = simulate(validate_scenario(_pd_scenario(mooncake_trace, policy, 4000, 4)))
        assert result.summary["num_completed"] == 4000
        hits[policy] = result.summary["cache_hit_rate"]
    # Prefix hits are counted on the prefill servers (the decode servers have no radix cache).
    assert hits["cache_aware"] >= 1.1 * hits["round_robin"]
