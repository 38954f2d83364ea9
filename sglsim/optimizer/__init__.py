"""Constrained and multi-objective search over the symbolic model, verified by simulation.

`optimize(problem, method=...)` searches a `Problem` (a `DecisionSpace` plus
objectives and constraints compiled to NumPy) and returns an
`OptimizeResult`; `MultiObjectiveOptimizer` is the same with the objectives
given once. SymPy is imported only when an expression is compiled.
"""

from .objectives import ConstraintSpec, ObjectiveDirection, ObjectiveSpec
from .problem import Problem
from .result import Candidate, OptimizeResult, Status, TERMINATION_MESSAGES
from .search import METHODS, MultiObjectiveOptimizer, optimize
from .space import DecisionSpace, Domain

__all__ = ["ConstraintSpec", "ObjectiveDirection", "ObjectiveSpec", "Problem", "Candidate", "OptimizeResult",
           "Status", "TERMINATION_MESSAGES", "METHODS", "MultiObjectiveOptimizer", "optimize", "DecisionSpace",
           "Domain"]
