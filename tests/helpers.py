"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any

from sglsim.config.scenario import validate_scenario
from sglsim.costs.forward import LawContext
from sglsim.simulation import Simulation


def scenario(**fields: Any):
    """A scenario from nested keyword dicts, e.g. scenario(server={'tp': 2})."""
    return validate_scenario(fields)


def run(**fields: Any):
    """Build and run a simulation; return (simulation, result)."""
    sim = Simulation(scenario(**fields))
    return sim, sim.run()


def law_context(**fields: Any) -> LawContext:
    return Simulation(scenario(**fields)).server.law
