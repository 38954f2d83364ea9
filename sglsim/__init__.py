"""sglsim: a simulator of SGLang-style LLM serving clusters whose latencies are also SymPy expressions."""

from __future__ import annotations

import importlib
from typing import Any

from .config.scenario import Scenario, load_scenario
from .errors import ConfigError
from .simulation import Simulation, SimulationResult, simulate

__version__ = "0.1.0"

# Symbolic and optimizer names load on first access: importing them pulls in SymPy,
# which `import sglsim` and `sglsim simulate` must not pay for.
_LAZY = {
    "ConfigSymbols": "sglsim.symbolic",
    "SymbolicMetricBuilder": "sglsim.symbolic",
    "MetricExpressions": "sglsim.symbolic",
    "ConstraintBuilder": "sglsim.symbolic",
    "freeze": "sglsim.symbolic",
    "trace_expressions": "sglsim.symbolic",
    "compile_expression": "sglsim.symbolic",
    "MultiObjectiveOptimizer": "sglsim.optimizer",
    "ObjectiveSpec": "sglsim.optimizer",
    "ObjectiveDirection": "sglsim.optimizer",
}

__all__ = ["Scenario", "load_scenario", "ConfigError", "Simulation", "SimulationResult", "simulate", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sglsim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
