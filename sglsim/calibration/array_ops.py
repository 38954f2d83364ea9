"""NumPy-array ops for evaluating cost laws on many shapes at once (defined in `sglsim.costs.ops`)."""

from ..costs.ops import ARRAY_OPS, ArrayOps

__all__ = ["ARRAY_OPS", "ArrayOps"]
