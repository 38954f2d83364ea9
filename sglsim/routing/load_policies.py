"""Load-only routing policies of SGLang's router: random, round_robin, power_of_two, shortest_queue.

Loads are the router's in-flight request counts per target. Ties go to the
lowest target index, so runs are deterministic for a given router seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..serving.request import Request
from .base import CacheAwareConfig, register_policy


@register_policy("random")
class RandomPolicy:
    """Uniform choice over the targets."""

    name = "random"

    def __init__(self, num_targets: int, config: CacheAwareConfig, rng: np.random.Generator) -> None:
        self.num_targets = num_targets
        self.rng = rng

    def select(self, req: Request, loads: Sequence[int], now: float) -> int:
        return int(self.rng.integers(self.num_targets))


@register_policy("round_robin")
class RoundRobinPolicy:
    """Targets in cyclic order, starting at index 0."""

    name = "round_robin"

    def __init__(self, num_targets: int, config: CacheAwareConfig, rng: np.random.Generator) -> None:
        self.num_targets = num_targets
        self._next = 0

    def select(self, req: Request, loads: Sequence[int], now: float) -> int:
        index = self._next % self.num_targets
        self._next += 1
        return index


@register_policy("shortest_queue")
class ShortestQueuePolicy:
    """The target with the fewest requests in flight (what cache_aware does when imbalanced)."""

    name = "shortest_queue"

    def __init__(self, num_targets: int, config: CacheAwareConfig, rng: np.random.Generator) -> None:
        pass

    def select(self, req: Request, loads: Sequence[int], now: float) -> int:
        return least_loaded(loads)


@register_policy("power_of_two")
class PowerOfTwoPolicy:
    """Sample two distinct targets uniformly and take the less loaded (the first on a tie)."""

    name = "power_of_two"

    def __init__(self, num_targets: int, config: CacheAwareConfig, rng: np.random.Generator) -> None:
        self.num_targets = num_targets
        self.rng = rng

    def select(self, req: Request, loads: Sequence[int], now: float) -> int:
        if self.num_targets == 1:
            return 0
        first, second = (int(i) for i in self.rng.choice(self.num_targets, size=2, replace=False))
        return first if loads[first] <= loads[second] else second


def least_loaded(loads: Sequence[int]) -> int:
    """Index of the smallest load, the lowest index on a tie."""
    best = 0
    for index in range(1, len(loads)):
        if loads[index] < loads[best]:
            best = index
    return best
