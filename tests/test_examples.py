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
