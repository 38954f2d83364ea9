"""Constrained and multi-objective search over the symbolic model, verified by simulation.

`optimize(problem, method=...)` searches a `Problem` (a `DecisionSpace` plus
objectives and constraints compiled to NumPy) and returns an
`OptimizeResult`; `MultiObjectiveOptimizer` is the same with the objectives
given once. Names load on first use, so building the command-line parser
imports neither SciPy's solvers nor SymPy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConstraintSpec": "objectives", "ObjectiveDirection": "objectives", "ObjectiveSpec": "objectives",
    "Problem": "problem", "Candidate": "result", "OptimizeResult": "result", "Status": "result",
    "TERMINATION_MESSAGES": "result", "METHODS": "choices", "MultiObjectiveOptimizer": "search",
    "optimize": "search", "DecisionSpace": "space", "Domain": "space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sglsim.optimizer' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
