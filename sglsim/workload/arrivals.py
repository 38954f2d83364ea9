"""Inter-arrival time processes for open-loop workloads."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, unknown

ARRIVAL_PROCESSES = ("poisson", "gamma", "constant")


def arrival_times(process: str, rate: float, n: int, rng: np.random.Generator, cv: float = 1.0) -> np.ndarray:
    """Arrival times (s) of n requests at `rate` requests/s, starting at 0.

    poisson: exponential gaps; gamma: gaps with coefficient of variation `cv`
    (cv = 1 is Poisson, larger is burstier); constant: equal gaps.
    """
    if process not in ARRIVAL_PROCESSES:
        raise unknown("arrival process", process, ARRIVAL_PROCESSES)
    if not rate > 0:
        raise ConfigError(f"invalid rate {rate!r}: expected requests per second > 0")
    if process == "poisson":
        gaps = rng.exponential(1.0 / rate, size=n)
    elif process == "gamma":
        if not cv > 0:
            raise ConfigError(f"invalid cv {cv!r}: expected > 0")
        shape = 1.0 / cv ** 2
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    else:
        gaps = np.full(n, 1.0 / rate)
    gaps[0] = 0.0
    return np.cumsum(gaps)
