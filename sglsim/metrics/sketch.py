"""A fixed-size log-bucket histogram for latencies too numerous to keep one by one."""

from __future__ import annotations

import math

import numpy as np


class LogHistogram:
    """Counts of positive values in log-spaced buckets (relative width about 1 %).

    Quantiles are read at the geometric centre of the bucket that holds them,
    so they carry at most half a bucket (about 0.5 %) of error; the mean is exact.
    """

    def __init__(self, low: float = 1e-6, high: float = 1e4, buckets_per_decade: int = 230) -> None:
        self.low = low
        self.decades = math.log10(high / low)
        self.per_decade = buckets_per_decade
        self.counts = np.zeros(int(self.decades * buckets_per_decade) + 2, dtype=np.float64)
        self.total = 0.0
        self.weighted_sum = 0.0
        self.max = 0.0

    def _bucket(self, value: float) -> int:
        if value <= self.low:
            return 0
        index = int(math.log10(value / self.low) * self.per_decade) + 1
        return min(index, len(self.counts) - 1)

    def add(self, value: float, count: float = 1.0) -> None:
        if count <= 0:
            return
        self.counts[self._bucket(value)] += count
        self.total += count
        self.weighted_sum += value * count
        if value > self.max:
            self.max = value

    def mean(self) -> float | None:
        return self.weighted_sum / self.total if self.total else None

    def quantile(self, q: float) -> float | None:
        if not self.total:
            return None
        target = q * self.total
        cumulative = np.cumsum(self.counts)
        index = int(np.searchsorted(cumulative, target, side="left"))
        index = min(index, len(self.counts) - 1)
        if index == 0:
            return self.low
        centre = self.low * 10 ** ((index - 0.5) / self.per_decade)
        return min(centre, self.max)
