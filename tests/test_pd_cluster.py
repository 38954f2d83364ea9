"""Clusters with P/D pools: mixed with aggregated replicas, rejections, DP-aware targets, invariants."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import validate_scenario
from sglsim.simulation import Simulation, SimulationResult


def _run(data: dict[str, Any]) -> tuple[Simulation, SimulationResult]:
    scenario = validate_scenario({"model": "llama-3.1-8b", "gpu": "h100", "check_invariants": True, **data})
    sim = Simulation(scenario)
    result = sim.run()
    for pool in sim.cluster.pools.values():
        assert pool.router.loads == [0] * len(pool.router.loads), f"{pool.name} router still counts requests"
    return sim, result


def test_mixed_cluster_splits_by_server_count():
    data = {"cluster": {"replicas": 2, "prefill": {"workers": 1}, "decode": {"workers": 1}, "seed": 3},
            "workload": {"input_len": 300, "output_len": 5, "num_requests": 400, "rate": 50}}
    sim, result = _run(data)
    prefill_ids = result.requests["prefill_worker_id"]
    via_pd = int((prefill_ids >= 0).sum())
    # Two aggregated servers against two P/D servers: about half the requests each way.
    assert 150 < via_pd < 250
    aggregated = prefill_ids < 0
    assert set(result.requests["worker_id"][aggregated].astype(int)) == {2, 3}
    assert (result.requests["transfer_s"][aggregated] == 0).all()
    assert set(result.summary["pools"]) == {"prefill", "decode", "aggregated"}
    assert result.config["num_gpus"] == 4
    # Same seed, same split.
    _, again = _run(data)
    assert np.array_equal(again.requests["prefill_worker_id"], prefill_ids)


def test_heterogeneous_pools():
    data = {"server": {"tp": 2},
            "cluster": {"prefill": {"workers": 1, "gpu": "h200", "server": {"tp": 4}},
                        "decode": {"workers": 2, "gpu": "h100"}},
            "workload": {"input_len": 2000, "output_len": 20, "num_requests": 30, "rate": 20}}
    sim, result = _run(data)
    assert result.summary["num_completed"] == 30
    servers = result.config["pools"]
    assert (servers["prefill"]["gpu"], servers["prefill"]["tp"]) == ("h200", 4)
    assert (servers["decode"]["gpu"], servers["decode"]["tp"]) == ("h100", 2)
    assert result.config["num_gpus"] == 8
    # KV moves from TP4 to TP2: the TP2 side bounds the shard size.
    assert (sim.cluster.pd.transfers.prefill_tp, sim.cluster.pd.transfers.decode_tp) == (4, 2)


def test_requests_too_long_for_decode_are_rejected():
    data = {"cluster": {"prefill": {"workers": 1}, "decode": {"workers": 1, "server": {"kv_pool_tokens": 3000}}},
            "workload": {"input_len": {"dist": "uniform", "mean": 2000, "std": 1500, "min": 100, "max": 4000},
                         "output_len": 5, "num_requests": 60, "rate": 30}}
    _, result = _run(data)
    summary = result.summary
    assert summary["num_rejected"] > 0
    # Prompts above 2994 tokens exceed the decode server's context (its KV pool minus 6 tokens);
    # prompts above 2488 leave no room for the 512 reserved decode tokens.
    assert set(summary["rejected_reasons"]) == {"input does not fit the decode server's KV pool",
                                                "input longer than the server accepts"}
    assert summary["num_completed"] + summary["num_rejected"] == 60
    assert (result.requests["input_len"] + 512 <= 3000).all()


def test_dp_aware_router_targets_each_rank():
    sim, result = _run({"cluster": {"replicas": 2, "dp_aware": True, "router": "round_robin"},
                        "workload": {"input_len": 100, "output_len": 4, "num_requests": 4}})
    targets = sim.cluster.pools["aggregated"].router.targets
    # Servers have one scheduler (DP rank 0) each today.
    assert [(t.worker_id, t.dp_rank) for t in targets] == [(0, 0), (1, 0)]
    assert result.summary["num_completed"] == 4


def test_router_targets_without_dp_awareness_leave_rank_open():
    sim, _ = _run({"cluster": {"replicas": 2}, "workload": {"input_len": 100, "output_len": 4, "num_requests": 2}})
    assert [t.dp_rank for t in sim.cluster.pools["aggregated"].router.targets] == [None, None]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefill=st.integers(1, 3), decode=st.integers(1, 3), chunk=st.sampled_from([256, 1024, 8192]),
       kv_pool=st.integers(2000, 20000), max_running=st.integers(1, 8), policy=st.sampled_from(
           ["cache_aware", "round_robin", "power_of_two", "random", "shortest_queue"]),
       groups=st.integers(1, 4), rate=st.floats(1, 200), seed=st.integers(0, 5))
def test_pd_invariants_hold(prefill, decode, chunk, kv_pool, max_running, policy, groups, rate, seed):
    data = {"cluster": {"router": policy, "seed": seed,
                        "prefill": {"workers": prefill, "server": {"chunked_prefill_size": chunk}},
                        "decode": {"workers": decode,
                                   "server": {"kv_pool_tokens": kv_pool, "max_running_requests": max_running}}},
            "workload": {"num_requests": 24, "rate": rate, "seed": seed,
                         "shared_prefix": {"num_groups": groups, "system_prompt_len": 300, "turns": 2},
                         "input_len": {"dist": "uniform", "mean": 400, "std": 300, "min": 10, "max": 900},
                         "output_len": {"dist": "uniform", "mean": 40, "std": 30, "min": 1, "max": 90}}}
    _, result = _run(data)
    summary, cols = result.summary, result.requests
    assert summary["num_completed"] + summary["num_rejected"] == 24
    # The client's first token comes after the KV arrived, which comes after the prefill started.
    assert (cols["first_token_at"] >= cols["first_scheduled_at"] + cols["transfer_s"] - 1e-12).all()
    assert (cols["transfer_queue_s"] >= 0).all()
    assert (cols["finished_at"] >= cols["first_token_at"]).all()
    assert summary["pools"]["decode"]["decode_batch_size"]["max"] is None or \
        summary["pools"]["decode"]["decode_batch_size"]["max"] <= max_running


def test_dp_copies_share_a_target_unless_dp_aware():
    base = {"server": {"dp": 2}, "workload": {"input_len": 100, "output_len": 4, "num_requests": 4}}
    sim, result = _run({**base, "cluster": {"replicas": 1, "router": "round_robin"}})
    # One target for the replica; the replica hands requests to its two DP copies in turn.
    assert [(t.worker_id, t.dp_rank) for t in sim.cluster.pools["aggregated"].router.targets] == [(0, None)]
    assert sorted(result.requests["worker_id"].astype(int).tolist()) == [0, 0, 1, 1]
    assert result.config["num_gpus"] == 2
    sim, _ = _run({**base, "cluster": {"replicas": 1, "router": "round_robin", "dp_aware": True}})
    assert [(t.worker_id, t.dp_rank) for t in sim.cluster.pools["aggregated"].router.targets] == [(0, 0), (1, 1)]


def test_dp_attention_ranks_are_dp_aware_targets():
    data = {"model": "deepseek-v3", "gpu": "h200",
            "server": {"tp": 8, "dp": 8, "enable_dp_attention": True, "ep": 8},
            "cluster": {"replicas": 1, "dp_aware": True, "router": "shortest_queue"},
            "workload": {"input_len": 200, "output_len": 4, "num_requests": 16, "rate": 100}}
    sim, result = _run(data)
    targets = sim.cluster.pools["aggregated"].router.targets
    assert [t.dp_rank for t in targets] == list(range(8))
    assert result.summary["num_completed"] == 16
    assert len(set(result.requests["worker_id"].astype(int).tolist())) == 8


def test_pd_pool_with_dp_copies():
    sim, result = _run({"cluster": {"prefill": {"workers": 1, "server": {"dp": 2}}, "decode": {"workers": 1}},
                        "workload": {"input_len": 300, "output_len": 4, "num_requests": 6, "rate": 50}})
    assert result.summary["num_completed"] == 6
    assert sorted(set(result.requests["prefill_worker_id"].astype(int).tolist())) == [0, 1]
    assert result.config["num_gpus"] == 3


def test_pd_pool_with_dp_attention_prefill():
    # DP-attention prefill ranks (0-7) hand KV to a plain TP-8 decode server (worker 8)
    data = {"model": "deepseek-v3", "gpu": "h200", "server": {"tp": 8, "ep": 8},
            "cluster": {"prefill": {"workers": 1, "server": {"dp": 8, "enable_dp_attention": True}},
                        "decode": {"workers": 1}},
            "workload": {"input_len": 200, "output_len": 4, "num_requests": 2}}
    result = Simulation(validate_scenario(data)).run()
    assert result.summary["num_completed"] == 2
    assert sorted(result.requests["prefill_worker_id"].astype(int).tolist()) == [0, 1]
    assert result.requests["worker_id"].astype(int).tolist() == [8, 8]
    assert result.config["num_gpus"] == 16
