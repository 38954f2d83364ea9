"""P/D runs that stalled: a prefill server whose admission cap filled one batch."""

from __future__ import annotations

from .helpers import run


def test_prefill_cap_clears_between_batches():
    # max_running_requests 2: the first prefill batch admitted two requests and set batch_is_full.
    # A prefill server has no running batch to shrink, so the flag never cleared and the server
    # went idle with 18 requests waiting (RuntimeError). SGLang's prefill event loop resets the
    # flag before every batch.
    _, res = run(server={"max_running_requests": 2},
                 cluster={"prefill": {"workers": 1}, "decode": {"workers": 1}},
                 workload={"num_requests": 20, "rate": 100.0, "input_len": 300, "output_len": 50})
    assert res.summary["num_completed"] == 20
    prefill = [w for w in res.summary["workers"] if w["pool"] == "prefill"]
    # Two prompts per prefill step at most: 20 requests need at least 10 steps.
    assert prefill[0]["prefill_steps"] >= 10


def test_prefill_waits_for_transfers():
    # A 1000-token prefill pool fits one 600-token prompt at a time. After the first prefill its KV
    # stays locked until the transfer to the decode server completes. So the server has queued
    # work and nothing running, and must wait. That wait raised "went idle with requests waiting".
    _, res = run(cluster={"prefill": {"workers": 1, "server": {"kv_pool_tokens": 1000}},
                          "decode": {"workers": 1}},
                 workload={"num_requests": 3, "input_len": 600, "output_len": 20})
    assert res.summary["num_completed"] == 3
    prefill = [w for w in res.summary["workers"] if w["pool"] == "prefill"][0]
    # One prompt per prefill step, each after the previous transfer freed its KV.
    assert prefill["prefill_steps"] == 3
    ttft = sorted(res.requests["ttft_s"].tolist())
    assert ttft[0] < ttft[1] < ttft[2]
