"""Synthetic workloads as a capacity planner sets them up from the command line."""

from __future__ import annotations

from .helpers import run


def test_sessions_send_exactly_num_requests():
    # 20 requests in 3-turn sessions used to run 7 whole sessions, 21 requests.
    _, res = run(workload={"num_requests": 20, "rate": 2.0, "input_len": 50, "output_len": 5,
                           "shared_prefix": {"num_groups": 2, "system_prompt_len": 64, "turns": 3}})
    assert res.summary["num_requests"] == 20
    assert res.summary["num_completed"] == 20


def test_num_requests_alone_keeps_the_demo_workload(tmp_path):
    # `--num-requests 40` replaced the demo's chat sessions with 40 requests of 1024/256 tokens
    # all sent at t = 0, although the docstring of default_scenario names only workload flags.
    import json

    from sglsim.cli.main import main

    out = tmp_path / "o.json"
    assert main(["simulate", "--num-requests", "40", "--output", str(out), "--no-progress", "--quiet"]) == 0
    data = json.loads(out.read_text())
    workload = data["config"]["scenario"]["workload"]
    assert workload["num_requests"] == 40
    assert workload["shared_prefix"]["turns"] == 4
    assert data["summary"]["num_completed"] == 40
    assert data["summary"]["cache_hit_rate"] > 0.5


def test_simulate_rejects_a_wrong_argument_type():
    # simulate(5) failed deep inside with "'int' object has no attribute 'cluster'".
    import pytest

    from sglsim import simulate

    with pytest.raises(TypeError, match="simulate.. expects a Scenario, a dict of its fields or a YAML path, got int"):
        simulate(5)


def test_per_request_json_is_strict_json(tmp_path):
    # Single-token requests have no TPOT; --include-requests wrote it as NaN, which strict JSON
    # parsers reject, and every column (ids, token counts) as floats.
    import json

    from sglsim.cli.main import main

    out = tmp_path / "o.json"
    assert main(["simulate", "--input-len", "10", "--output-len", "1", "--num-requests", "2",
                 "--include-requests", "--output", str(out), "--no-progress", "--quiet"]) == 0

    def reject_constant(name):
        raise AssertionError(f"{name} in JSON output")

    records = json.loads(out.read_text(), parse_constant=reject_constant)["requests"]
    assert records["tpot_s"] == [None, None]
    assert records["rid"] == [0, 1]
    assert records["input_len"] == [10, 10]
    assert records["output_len"] == [1, 1]
    assert records["worker_id"] == [0, 0]
