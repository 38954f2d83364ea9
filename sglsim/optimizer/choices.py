"""Names the command line offers, kept apart so that building the parser imports no solver."""

METHODS = ("auto", "grid", "relax", "pareto", "weighted_sum", "epsilon_constraint", "nsga2")
"""Search methods of `optimize` (see `sglsim.optimizer.search`)."""
OBJECTIVE_NAMES = ("throughput", "throughput_per_gpu", "cost", "ttft", "tpot")
"""Objectives of a deployment plan (see `sglsim.optimizer.planner.OBJECTIVES`)."""
EXECUTORS = ("serial", "local", "ray")
"""Where verification simulations run (see `sglsim.optimizer.executors`)."""
