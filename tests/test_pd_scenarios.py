"""Requests through a prefill/decode pair, timed exactly from the step and transfer laws.

Setup shared by most tests: Llama-3.1-8B, one TP1 prefill server on an H200
node and one TP1 decode server on an H100 node, so their KV crosses
InfiniBand (50 GB/s per GPU, 15 us). Requests arrive together at t = 0 with
unique prompts (no prefix hits).
"""

from __future__ import annotations

from typing import Any

import pytest

from sglsim.config.scenario import validate_scenario
from sglsim.costs.kv_transfer import kv_transfer_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.simulation import Simulation, SimulationResult

IB_BW, IB_LATENCY = 50e9, 15e-6


def _run(cluster: dict[str, Any], input_len: int, output_len: int, num_requests: int,
         server: dict[str, Any] | None = None) -> tuple[Simulation, SimulationResult]:
    scenario = validate_scenario({
        "model": "llama-3.1-8b", "gpu": "h100", "server": server or {"tp": 1}, "cluster": cluster,
        "workload": {"input_len": input_len, "output_len": output_len, "num_requests": num_requests},
        "check_invariants": True})
    sim = Simulation(scenario)
    result = sim.run()
    for pool in sim.cluster.pools.values():
        assert pool.router.loads == [0] * len(pool.router.loads), f"{pool.name} router still counts requests"
    return sim, result


def _pd(prefill: dict[str, Any] | None = None, decode: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"router": "round_robin",
            "prefill": {"workers": 1, "gpu": "h200", **(prefill or {})},
            "decode": {"workers": 1, **(decode or {})}}


def _record(result: SimulationResult, rid: int) -> dict[str, float]:
    cols = result.requests
    index = list(cols["rid"]).index(rid)
    return {name: float(values[index]) for name, values in cols.items()}


def _prefill_step(sim: Simulation, items: list[tuple[int, int]]) -> float:
    """Step time of one prefill batch of (cached prefix, new tokens) items on the prefill server."""
    cost = sim.servers["prefill"].cost_model()
    return cost.step_time(cost.extend_shape([(None, prefix, new) for prefix, new in items]))


def _transfer(sim: Simulation, tokens: int) -> float:
    law = sim.servers["prefill"].law
    return kv_transfer_time(FLOAT_OPS, law.model, tokens, 1, 1, IB_BW, IB_LATENCY, law.eff)


def _decode_step(sim: Simulation, batch: int, ctx_tokens: int) -> float:
    return sim.servers["decode"].cost_model().decode_step_time(batch, ctx_tokens)


def test_one_request_ttft_is_prefill_plus_transfer():
    sim, result = _run(_pd(), input_len=1000, output_len=4, num_requests=1)
    rec = _record(result, 0)
    prefill = _prefill_step(sim, [(0, 1000)])
    transfer = _transfer(sim, 1000)
    # Decode preallocates at t = 0, the prefill runs [0, prefill], the KV lands at prefill + transfer
    # and the idle decode server merges it at once: that is the client's first token.
    assert rec["first_scheduled_at"] == 0.0
    assert rec["transfer_s"] == pytest.approx(transfer, rel=1e-12)
    assert rec["transfer_queue_s"] == 0.0
    assert rec["first_token_at"] == pytest.approx(prefill + transfer, rel=1e-12)
    # Three decode steps follow, over contexts of 1000, 1001 and 1002 tokens.
    steps = sum(_decode_step(sim, 1, 1000 + k) for k in range(3))
    assert rec["finished_at"] == pytest.approx(prefill + transfer + steps, rel=1e-9)
    assert (rec["prefill_worker_id"], rec["worker_id"]) == (0, 1)
    assert result.summary["kv_transfer_s"]["count"] == 1


def test_prefill_keeps_prompt_after_transfer():
    sim, _ = _run(_pd(), input_len=1000, output_len=4, num_requests=1)
    prefill, decode = sim.cluster.pools["prefill"].workers[0], sim.cluster.pools["decode"].workers[0]
    # The prefill server freed the request's slots but kept its prompt in the radix tree.
    assert prefill.scheduler.sending == {}
    assert prefill.scheduler.private_tokens == 0
    assert prefill.scheduler.tree.total_tokens == 1000
    # The decode server has no radix cache: every slot is free again.
    assert decode.scheduler.free_tokens == decode.scheduler.config.max_total_tokens


def test_two_transfers_share_a_link():
    sim, result = _run(_pd(), input_len=1000, output_len=4, num_requests=2)
    first, second = _record(result, 0), _record(result, 1)
    prefill = _prefill_step(sim, [(0, 1000), (0, 1000)])
    transfer = _transfer(sim, 1000)
    # Both prompts prefill in one batch and are ready at the same instant. The second transfer
    # queues behind the first on the prefill server's egress and the decode server's ingress.
    assert first["transfer_s"] == pytest.approx(transfer, rel=1e-12)
    assert second["transfer_queue_s"] == pytest.approx(transfer, rel=1e-12)
    assert second["transfer_s"] == pytest.approx(2 * transfer, rel=1e-12)
    assert first["first_token_at"] == pytest.approx(prefill + transfer, rel=1e-12)
    # The second KV lands while the decode server runs the first request's first decode step:
    # it merges at the end of that step.
    step = _decode_step(sim, 1, 1000)
    assert transfer < step
    assert second["first_token_at"] == pytest.approx(prefill + transfer + step, rel=1e-12)


def test_decode_prealloc_blocks_when_kv_is_full():
    sim, result = _run(_pd(decode={"server": {"kv_pool_tokens": 2000}}), input_len=1000, output_len=4,
                       num_requests=2)
    first, second = _record(result, 0), _record(result, 1)
    # The first request takes 1000 of 2000 slots; the second needs 1000 + 512 reserved decode tokens
    # but only 2000 - 1000 - 512 (reserved for the first) = 488 are allocatable. Its prefill cannot
    # start until the first request leaves the decode server.
    assert first["first_scheduled_at"] == 0.0
    assert second["first_scheduled_at"] == first["finished_at"]
    prefill = _prefill_step(sim, [(0, 1000)])
    transfer = _transfer(sim, 1000)
    assert second["first_token_at"] == pytest.approx(first["finished_at"] + prefill + transfer, rel=1e-12)
    assert result.summary["pools"]["decode"]["queue_len_max"] >= 1


def test_prealloc_exceeds_max_running_requests():
    sim, result = _run(_pd(decode={"server": {"max_running_requests": 1}}), input_len=1000, output_len=4,
                       num_requests=2)
    first, second = _record(result, 0), _record(result, 1)
    # Both requests are preallocated and prefilled at once (preallocation ignores the cap) ...
    assert first["first_scheduled_at"] == second["first_scheduled_at"] == 0.0
    # ... but only one may run: the second merges at the boundary where the first finishes.
    assert second["first_token_at"] == first["finished_at"]
    assert result.summary["pools"]["decode"]["decode_batch_size"]["max"] == 1


def test_chunk_kv_is_sent_while_later_chunks_compute():
    sim, result = _run(_pd(prefill={"server": {"chunked_prefill_size": 512}}), input_len=1200, output_len=2,
                       num_requests=1)
    rec = _record(result, 0)
    # The prompt runs in chunks of 512, 512 and 176 tokens. Each of the first two chunks' KV crosses
    # the link during the next chunk, so only the last 176 tokens' transfer follows the prefill.
    prefill = (_prefill_step(sim, [(0, 512)]) + _prefill_step(sim, [(512, 512)])
               + _prefill_step(sim, [(1024, 176)]))
    assert _transfer(sim, 512) < _prefill_step(sim, [(512, 512)])
    assert rec["transfer_s"] == pytest.approx(_transfer(sim, 176), rel=1e-12)
    assert rec["first_token_at"] == pytest.approx(prefill + _transfer(sim, 176), rel=1e-12)


def test_single_token_output_finishes_at_merge():
    sim, result = _run(_pd(), input_len=1000, output_len=1, num_requests=1)
    rec = _record(result, 0)
    expected = _prefill_step(sim, [(0, 1000)]) + _transfer(sim, 1000)
    assert rec["first_token_at"] == pytest.approx(expected, rel=1e-12)
    assert rec["finished_at"] == rec["first_token_at"]
    assert result.summary["pools"]["decode"]["decode_batch_size"]["steps"] == 0


def test_same_node_pair_uses_nvlink():
    sim, result = _run({"router": "round_robin", "prefill": {"workers": 1}, "decode": {"workers": 1}},
                       input_len=1000, output_len=2, num_requests=1)
    law = sim.servers["prefill"].law
    nvlink = kv_transfer_time(FLOAT_OPS, law.model, 1000, 1, 1, 450e9, 10e-6, law.eff)
    assert _record(result, 0)["transfer_s"] == pytest.approx(nvlink, rel=1e-12)


def test_pool_figures_in_summary():
    _, result = _run(_pd(), input_len=1000, output_len=4, num_requests=2)
    pools = result.summary["pools"]
    assert list(pools) == ["prefill", "decode"]
    assert pools["prefill"]["prefill_tokens"] == 2000
    assert pools["decode"]["prefill_tokens"] == 0
    assert pools["decode"]["decode_batch_size"]["max"] == 2
    assert pools["prefill"]["kv_transfer_s"]["count"] == 2
    assert len(pools["decode"]["queue_len_series"]["t"]) == 200
    assert result.config["pools"]["prefill"]["gpu"] == "h200"
    assert result.config["num_gpus"] == 2


def test_decode_retraction_offloads_and_resumes():
    sim, result = _run(_pd(decode={"server": {"kv_pool_tokens": 1100}, "num_reserved_decode_tokens": 0}),
                       input_len=500, output_len=100, num_requests=2)
    first, second = _record(result, 0), _record(result, 1)
    # Both prompts fit (500 + 500 of 1100 slots), but after about 50 decode steps of both requests
    # the pool is full and the decode server retracts one of them, keeping its KV offloaded.
    assert result.summary["retractions"] == 1
    assert result.summary["pools"]["decode"]["retractions"] == 1
    # The retracted request resumes when the other one has finished and freed its slots.
    # It is not prefilled again: the prefill server computed each prompt once.
    assert result.summary["pools"]["prefill"]["prefill_tokens"] == 1000
    assert min(first["finished_at"], second["finished_at"]) < max(first["finished_at"], second["finished_at"])
    assert first["output_len"] == second["output_len"] == 100
    decode = sim.cluster.pools["decode"].workers[0].scheduler
    assert decode.retracted == []
    assert decode.free_tokens == 1100
