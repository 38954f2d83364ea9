"""Symbolic metrics: SymPy expressions of the configuration built from the simulator's cost laws.

Names load on first use, so `import sglsim` and `sglsim simulate` never import SymPy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigSymbols": "symbols",
    "SYMBOL_UNITS": "symbols",
    "SymbolicMetricBuilder": "steady_state",
    "MetricExpressions": "steady_state",
    "ConstraintBuilder": "constraints",
    "Constraint": "constraints",
    "FrozenParams": "frozen",
    "freeze": "frozen",
    "TraceExpressions": "trace",
    "trace_expressions": "trace",
    "compile_expression": "bridge",
    "sensitivities": "bridge",
    "to_text": "bridge",
    "to_latex": "bridge",
    "to_json": "bridge",
    "from_json": "bridge",
    "to_python": "bridge",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sglsim.symbolic' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
