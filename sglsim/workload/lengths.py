"""Token-length distributions for synthetic workloads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, unknown

LENGTH_DISTS = ("constant", "uniform", "normal", "lognormal", "exponential")


@dataclass(frozen=True)
class LengthDist:
    """A distribution of token counts, truncated to [min, max] and rounded to integers.

    constant: `mean`; uniform: integers in [min, max]; normal: mean and std;
    lognormal: mean and cv (std / mean); exponential: mean.
    """

    dist: str = "constant"
    mean: float = 128.0
    std: float = 0.0
    cv: float = 1.0
    min: int = 1
    max: int = 1 << 30

    def __post_init__(self) -> None:
        if self.dist not in LENGTH_DISTS:
            raise unknown("length distribution", self.dist, LENGTH_DISTS)
        if self.min < 1 or self.max < self.min:
            raise ConfigError(f"invalid length bounds min={self.min} max={self.max}: expected 1 <= min <= max")
        if self.dist != "uniform" and not self.mean >= 1:
            raise ConfigError(f"invalid length mean {self.mean!r}: expected a number >= 1")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == "constant":
            values = np.full(n, self.mean)
        elif self.dist == "uniform":
            values = rng.integers(self.min, self.max + 1, size=n).astype(float)
        elif self.dist == "normal":
            values = rng.normal(self.mean, self.std, size=n)
        elif self.dist == "lognormal":
            sigma2 = np.log1p(self.cv ** 2)
            values = rng.lognormal(np.log(self.mean) - sigma2 / 2, np.sqrt(sigma2), size=n)
        else:
            values = rng.exponential(self.mean, size=n)
        return np.clip(np.rint(values), self.min, self.max).astype(np.int64)


def cap_total_tokens(input_len: np.ndarray, output_len: np.ndarray, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink prompt and output proportionally so each request has at most `max_tokens` tokens.

    The rule Vidur's trace length generator applies (both parts reduced by
    ceil(excess x share), each kept >= 1), so runs on its traces are comparable.
    """
    total = input_len + output_len
    excess = np.clip(total - max_tokens, 0, None)
    new_in = input_len - np.ceil(excess * input_len / total).astype(np.int64)
    new_out = output_len - np.ceil(excess * output_len / total).astype(np.int64)
    return np.clip(new_in, 1, None), np.clip(new_out, 1, None)
