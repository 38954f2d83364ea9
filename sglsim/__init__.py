"""sglsim: a simulator of SGLang-style LLM serving clusters whose latencies are also SymPy expressions."""

from .config.scenario import Scenario, load_scenario
from .errors import ConfigError
from .simulation import Simulation, SimulationResult, simulate

__version__ = "0.1.0"
__all__ = ["Scenario", "load_scenario", "ConfigError", "Simulation", "SimulationResult", "simulate"]
