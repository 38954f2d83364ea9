"""P/D pools whose servers run DP attention, and the lock-step decode span that times them.

Setup: Qwen3-30B-A3B, a prefill server of 2 H200 GPUs and a decode server of
2 H100 GPUs. Each runs DP attention over 2 ranks (attention TP 1). The two
servers sit on different nodes, so KV crosses InfiniBand (50 GB/s per GPU,
15 us) from one rank to one rank.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import ServerArgs, validate_scenario
from sglsim.costs.kv_transfer import kv_transfer_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.serving.server_spec import build_efficiency, build_server_spec
from sglsim.simulation import Simulation

DP2 = {"tp": 2, "dp": 2, "enable_dp_attention": True}


def _run(num_requests: int, input_len, output_len, prefill_workers: int = 1) -> tuple[Simulation, dict]:
    scenario = validate_scenario({
        "model": "qwen3-30b-a3b", "gpu": "h100",
        "cluster": {"router": "round_robin",
                    "prefill": {"workers": prefill_workers, "gpu": "h200", "server": DP2},
                    "decode": {"workers": 1, "server": DP2}},
        "workload": {"num_requests": num_requests, "input_len": input_len, "output_len": output_len},
        "check_invariants": True})
    sim = Simulation(scenario)
    result = sim.run()
    for pool in sim.cluster.pools.values():
        assert pool.router.loads == [0] * len(pool.router.loads), f"{pool.name} router still counts requests"
    return sim, result


def _lock_step(cost, shapes) -> float:
    cost.link_dp_shapes(shapes)
    return cost.dp_step_time(shapes)


def test_one_request_through_dp_attention_pools():
    sim, result = _run(1, 1000, 4)
    cols = {name: float(values[0]) for name, values in result.requests.items()}
    prefill_cost = sim.servers["prefill"].cost_model()
    decode_cost = sim.servers["decode"].cost_model()
    # The request lands on rank 0 of each server. The prefill is one lock-step forward of
    # that rank's 1000 tokens beside the idle rank 1.
    prefill = _lock_step(prefill_cost, [prefill_cost.extend_shape([(None, 0, 1000)]), prefill_cost.idle_shape()])
    # Its KV goes from one attention-TP-1 rank to another over InfiniBand.
    law = sim.servers["prefill"].law
    transfer = kv_transfer_time(FLOAT_OPS, law.model, 1000, 1, 1, 50e9, 15e-6, law.eff)
    assert cols["transfer_s"] == pytest.approx(transfer, rel=1e-12)
    # The idle decode server merges it when it lands: that is the client's first token.
    assert cols["first_token_at"] == pytest.approx(prefill + transfer, rel=1e-12)
    # Three lock-step decode steps follow, rank 1 idle beside them.
    steps = sum(_lock_step(decode_cost, [decode_cost.decode_shape(1, 1000 + k), decode_cost.idle_shape()])
                for k in range(3))
    assert cols["finished_at"] == pytest.approx(prefill + transfer + steps, rel=1e-9)
    # worker ids: prefill ranks 0 and 1, decode ranks 2 and 3
    assert (cols["prefill_worker_id"], cols["worker_id"]) == (0, 2)


def test_busy_dp_attention_pools_finish_every_request():
    sim, result = _run(96, {"dist": "uniform", "min": 200, "max": 3000}, {"dist": "uniform", "min": 2, "max": 200},
                       prefill_workers=2)
    summary = result.summary
    assert summary["num_completed"] == 96
    assert summary["kv_transfer_s"]["count"] == 96
    # two prefill servers of two ranks, one decode server of two ranks; every rank took requests
    assert set(result.requests["prefill_worker_id"].tolist()) == {0, 1, 2, 3}
    assert set(result.requests["worker_id"].tolist()) == {4, 5}
    assert summary["pools"]["decode"]["num_workers"] == 2


def _cost():
    spec = build_server_spec("qwen3-30b-a3b", "h100", ServerArgs(tp=4, dp=4, enable_dp_attention=True),
                             build_efficiency({}))
    return spec.cost_model()


@settings(max_examples=40, deadline=None)
@given(ranks=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40_000)), min_size=4, max_size=4))
def test_lock_step_span_times_every_rank(ranks):
    cost = _cost()
    ranks = [(bs, ctx if bs else 0) for bs, ctx in ranks]
    if not any(bs for bs, _ in ranks):
        return
    # a one-step span is exactly the slowest rank's step, with every rank timed
    shapes = [cost.decode_shape(bs, ctx) if bs else cost.idle_shape() for bs, ctx in ranks]
    assert cost.dp_decode_span(ranks, 1).duration(1) == _lock_step(cost, shapes)
    # longer spans follow every rank's growing context
    total = 0.0
    for k in range(25):
        shapes = [cost.decode_shape(bs, ctx + k * bs) if bs else cost.idle_shape() for bs, ctx in ranks]
        total += _lock_step(cost, shapes)
    assert cost.dp_decode_span(ranks, 25).duration(25) == pytest.approx(total, rel=1e-9)


def test_lock_step_span_ranks_of_equal_batch():
    cost = _cost()
    # ranks 0 and 2 both run 3 requests; rank 2 has the longer context and sets the pace
    ranks = [(3, 1_000), (1, 50_000), (3, 90_000), (0, 0)]
    shapes = [cost.decode_shape(3, 1_000), cost.decode_shape(1, 50_000), cost.decode_shape(3, 90_000),
              cost.idle_shape()]
    expected = _lock_step(cost, shapes)
    assert cost.dp_decode_span(ranks, 1).duration(1) == expected
    assert np.isfinite(expected)
