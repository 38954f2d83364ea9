"""Synthetic workloads as a capacity planner sets them up from the command line."""

from __future__ import annotations

from .helpers import run


def test_sessions_send_exactly_num_requests():
    # 20 requests in 3-turn sessions used to run 7 whole sessions, 21 requests.
    _, res = run(workload={"num_requests": 20, "rate": 2.0, "input_len": 50, "output_len": 5,
                           "shared_prefix": {"num_groups": 2, "system_prompt_len": 64, "turns": 3}})
    assert res.summary["num_requests"] == 20
    assert res.summary["num_completed"] == 20
