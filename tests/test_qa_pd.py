"""P/D runs that stalled: a prefill server whose admission cap filled one batch."""

from __future__ import annotations

from .helpers import run


def test_prefill_server_admits_again_after_its_cap_filled_a_batch():
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

