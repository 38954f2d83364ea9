"""Cluster schema and CLI: P/D pools, per-pool fallbacks and one-line errors on bad input."""

from __future__ import annotations

import pytest

from sglsim.cli.main import main
from sglsim.cli.simulate_cmd import scenario_from_args
from sglsim.cli.main import build_parser
from sglsim.config.defaults import DEMO_SCENARIO
from sglsim.config.scenario import Scenario, validate_scenario
from sglsim.errors import ConfigError
from sglsim.simulation import Simulation


def _args(*argv: str):
    return build_parser().parse_args(["simulate", *argv])


def test_default_router_is_cache_aware():
    assert Scenario().cluster.router == "cache_aware"
    assert DEMO_SCENARIO.cluster.router == "cache_aware"


def test_pool_flags_fall_back_to_shared_flags():
    scenario = scenario_from_args(_args("--input-len", "100", "--tp", "2", "--chunked-prefill-size", "4096",
                                        "--prefill-workers", "3", "--decode-workers", "1", "--decode-tp", "4",
                                        "--prefill-gpu", "h200", "--router", "round_robin",
                                        "--decode-policy", "power_of_two"))
    prefill, decode = scenario.pool_server_args("prefill"), scenario.pool_server_args("decode")
    assert (prefill.tp, prefill.chunked_prefill_size) == (2, 4096)
    assert (decode.tp, decode.chunked_prefill_size) == (4, 4096)
    assert (scenario.pool_gpu("prefill"), scenario.pool_gpu("decode")) == ("h200", "h100")
    assert scenario.cluster.prefill.policy is None
    assert scenario.cluster.decode.policy == "power_of_two"
    assert scenario.cluster.num_replicas == 0


def test_pool_switch_flags():
    scenario = scenario_from_args(_args("--input-len", "100", "--prefill-workers", "1", "--decode-workers", "1",
                                        "--prefill-disable-radix-cache"))
    assert scenario.pool_server_args("prefill").disable_radix_cache is True
    assert scenario.pool_server_args("decode").disable_radix_cache is False


def test_router_knob_flags():
    scenario = scenario_from_args(_args("--input-len", "100", "--cache-threshold", "0.5",
                                        "--balance-abs-threshold", "32", "--max-tree-size", "1000", "--dp-aware"))
    knobs = scenario.cluster.cache_aware
    assert (knobs.cache_threshold, knobs.balance_abs_threshold, knobs.max_tree_size) == (0.5, 32, 1000)
    assert scenario.cluster.dp_aware is True


def test_replicas_default_depends_on_pools():
    assert validate_scenario({}).cluster.num_replicas == 1
    both = {"cluster": {"replicas": 2, "prefill": {"workers": 1}, "decode": {"workers": 1}}}
    assert validate_scenario(both).cluster.num_replicas == 2


@pytest.mark.parametrize("cluster,message", [
    ({"prefill": {"workers": 0}, "decode": {"workers": 1}},
     "invalid cluster.prefill.workers 0 in scenario: input should be greater than 0"),
    ({"prefill": {"workers": 2}},
     "missing cluster.decode in scenario: P/D disaggregation needs both a prefill and a decode pool"),
    ({"replicas": 0}, "invalid cluster.replicas 0 in scenario: expected at least one aggregated replica"),
    ({"router": "fastest"}, "invalid cluster.router 'fastest' in scenario: input should be 'cache_aware'"),
    ({"prefill": {"workers": 1, "policy": "lru"}, "decode": {"workers": 1}},
     "invalid cluster.prefill.policy 'lru' in scenario"),
    ({"prefill": {"workers": 1, "server": {"tp": 0}}, "decode": {"workers": 1}},
     "invalid cluster.prefill.server.tp 0 in scenario"),
    ({"prefill": {"workers": 1, "server": {"chunked_prefill_size": -5}}, "decode": {"workers": 1}},
     "invalid cluster.prefill.server.chunked_prefill_size -5 in scenario"),
])
def test_bad_cluster_is_one_line_error(cluster, message):
    with pytest.raises(ConfigError) as err:
        validate_scenario({"cluster": cluster})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_decode_pool_that_cannot_hold_one_request():
    scenario = validate_scenario({
        "model": "llama-3.1-8b", "workload": {"input_len": 1000, "output_len": 10, "num_requests": 1},
        "cluster": {"prefill": {"workers": 1}, "decode": {"workers": 1, "server": {"kv_pool_tokens": 1200}}}})
    with pytest.raises(ConfigError, match="invalid decode pool KV capacity 1200 tokens: one request needs "
                                          "1000 prompt tokens \\+ 512 reserved decode tokens"):
        Simulation(scenario)


@pytest.mark.parametrize("argv,fragment", [
    (["--prefill-workers", "0", "--decode-workers", "1"], "invalid cluster.prefill.workers 0"),
    (["--router", "fastest"], "invalid cluster.router 'fastest'"),
    (["--prefill-workers", "1", "--decode-workers", "1", "--decode-kv-pool-tokens", "600"],
     "invalid decode pool KV capacity 600 tokens"),
    (["--decode-workers", "1"], "missing cluster.prefill in command line"),
    (["--prefill-workers", "1", "--decode-workers", "1", "--prefill-gpu", "tpu"], "unknown gpu 'tpu'"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    code = main(["simulate", "--input-len", "100", "--output-len", "10", "--num-requests", "2",
                 "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_cli_pd_run_prints_pool_table(capsys, tmp_path):
    out = tmp_path / "out.json"
    code = main(["simulate", "--input-len", "500", "--output-len", "8", "--num-requests", "6", "--rate", "10",
                 "--prefill-workers", "2", "--decode-workers", "1", "--no-progress", "--output", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "P99 KV transfer (ms):" in text
    assert "prefill          2 h100" in text
    import json

    data = json.loads(out.read_text())
    assert set(data["summary"]["kv_transfer_s"]) >= {"mean", "p50", "p99"}
    assert set(data["summary"]["pools"]) == {"prefill", "decode"}
