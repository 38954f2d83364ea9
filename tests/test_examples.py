"""Example scenario files load, and the demo YAML is the built-in default scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from sglsim.config.defaults import DEMO_SCENARIO
from sglsim.config.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_scenarios_validate(path):
    load_scenario(path)


def test_demo_yaml_is_the_default_scenario():
    assert load_scenario(EXAMPLES / "chat_sessions.yaml") == DEMO_SCENARIO


def test_scenario_errors_name_the_field(tmp_path):
    from sglsim.errors import ConfigError

    path = tmp_path / "s.yaml"
    path.write_text("server: {tp: 0}\n")
    with pytest.raises(ConfigError, match=r"invalid server\.tp 0 in .*s\.yaml: input should be greater than 0"):
        load_scenario(path)
    path.write_text("servr: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'servr'"):
        load_scenario(path)
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_scenario(path)


def test_scenario_paths_are_relative_to_the_file(tmp_path):
    # A trace named relative to the scenario file is found from any working folder.
    (tmp_path / "data").mkdir()
    trace = tmp_path / "data" / "t.csv"
    trace.write_text("num_prefill_tokens,num_decode_tokens\n10,2\n")
    scenario_dir = tmp_path / "scenarios"
    scenario_dir.mkdir()
    path = scenario_dir / "s.yaml"
    path.write_text("workload: {trace: ../data/t.csv, rate: 1.0}\n")
    assert load_scenario(path).workload.trace == str(trace)


def test_loose_numbers_are_rejected(tmp_path):
    from sglsim.errors import ConfigError

    path = tmp_path / "s.yaml"
    for text, fragment in (("server: {tp: true}\n", "invalid server.tp True"),
                           ("server: {tp: '4'}\n", "invalid server.tp '4'")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=fragment):
            load_scenario(path)
    # YAML 1.1 reads 1e-6 as text: floats still accept it.
    path.write_text("efficiency: {gemm_floor_s: 1e-6}\n")
    assert load_scenario(path).efficiency["gemm_floor_s"] == 1e-6
