"""The decision space: one finite, sorted domain per decision variable and their integer lattice.

A configuration is one value per variable. The lattice is the Cartesian
product of the domains; point `i` of the lattice is found by mixed-radix
decoding of `i` (the last variable varies fastest), so the space can be
enumerated in memory-bounded chunks of consecutive indices without ever
materialising it. Search methods that move between neighbours (the local
integer search, NSGA-II) work in *index coordinates*: variable `j` at index
`k` takes the value `domain_j[k]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

DEFAULT_CHUNK_POINTS = 1 << 18
MAX_DOMAIN_VALUES = 100_000
"""Most values one decision variable may take: more is a mistyped range, not a search."""
"""Configurations evaluated per chunk: 2^18 points x ~20 float64 columns stays near 40 MB."""


@dataclass(frozen=True)
class Domain:
    """The finite, sorted set of values one decision variable may take."""

    name: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError(f"invalid domain of {self.name}: expected at least one value")
        array = np.asarray(self.values, dtype=float)
        if not np.all(np.isfinite(array)):
            raise ConfigError(f"invalid domain of {self.name} {list(self.values)}: expected finite numbers")
        if np.any(np.diff(array) <= 0):
            raise ConfigError(f"invalid domain of {self.name} {list(self.values)}: "
                              "expected strictly increasing values")

    @classmethod
    def of(cls, name: str, values: Iterable[float]) -> "Domain":
        """A domain from any iterable of numbers (sorted, duplicates dropped)."""
        items = sorted(set(_number(name, v) for v in values))
        return cls(name, tuple(items))

    @classmethod
    def range(cls, name: str, start: int, stop: int, step: int = 1) -> "Domain":
        """Integers start, start + step, ... up to and including `stop`."""
        if step <= 0 or stop < start:
            raise ConfigError(f"invalid range for {name} ({start}, {stop}, step {step}): "
                              "expected start <= stop and a positive step")
        count = (int(stop) - int(start)) // int(step) + 1
        if count > MAX_DOMAIN_VALUES:
            raise ConfigError(f"invalid range for {name} ({start}, {stop}, step {step}): {count:,} values, "
                              f"expected at most {MAX_DOMAIN_VALUES:,}; use a larger step or powers of two")
        return cls(name, tuple(range(int(start), int(stop) + 1, int(step))))

    @classmethod
    def powers_of_two(cls, name: str, low: int, high: int) -> "Domain":
        """Powers of two from `low` to `high` inclusive (both must be powers of two)."""
        for bound in (low, high):
            if bound < 1 or (int(bound) & (int(bound) - 1)) != 0:
                raise ConfigError(f"invalid power-of-two range for {name} ({low}, {high}): "
                                  f"{bound} is not a power of two")
        if high < low:
            raise ConfigError(f"invalid power-of-two range for {name} ({low}, {high}): expected low <= high")
        values = []
        value = int(low)
        while value <= high:
            values.append(value)
            value *= 2
        return cls(name, tuple(values))

    @classmethod
    def fixed(cls, name: str, value: float) -> "Domain":
        return cls(name, (_number(name, value),))

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.values, dtype=float)

    def nearest_index(self, value: float) -> int:
        """Index of the domain value closest to `value` (ties go to the lower value)."""
        return int(np.argmin(np.abs(self.array - value)))

    def describe(self) -> str:
        if self.size <= 6:
            return "{" + ", ".join(_fmt(v) for v in self.values) + "}"
        return f"{{{_fmt(self.values[0])}, {_fmt(self.values[1])}, ..., {_fmt(self.values[-1])}}} ({self.size} values)"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"invalid value {value!r} in the domain of {name}: expected a number")
    return int(value) if float(value).is_integer() else float(value)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def parse_domain(name: str, spec: Any) -> Domain:
    """Build a domain from a list of numbers, a single number or a mapping.

    Mappings: `{"range": [start, stop]}` or `{"range": [start, stop, step]}`,
    `{"pow2": [low, high]}`. These are the forms a scenario file or a Python
    caller uses to describe a search space.
    """
    if isinstance(spec, Domain):
        return spec
    if isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(spec, bool):
        return Domain.fixed(name, spec)
    if isinstance(spec, Mapping):
        if set(spec) == {"range"} and len(spec["range"]) in (2, 3):
            return Domain.range(name, *spec["range"])
        if set(spec) == {"pow2"} and len(spec["pow2"]) == 2:
            return Domain.powers_of_two(name, *spec["pow2"])
        raise ConfigError(f"invalid domain of {name} {dict(spec)!r}: expected a list of values, "
                          "{'range': [start, stop(, step)]} or {'pow2': [low, high]}")
    if isinstance(spec, (str, bytes)):
        raise ConfigError(f"invalid domain of {name} {spec!r}: expected numbers")
    if isinstance(spec, Iterable):
        return Domain.of(name, spec)
    raise ConfigError(f"invalid domain of {name} {spec!r}: expected a list of values, a range or powers of two")


class DecisionSpace:
    """The Cartesian product of named domains (the integer lattice the optimizer searches)."""

    def __init__(self, domains: Sequence[Domain] | Mapping[str, Any]) -> None:
        if isinstance(domains, Mapping):
            domains = [parse_domain(str(name), spec) for name, spec in domains.items()]
        names = [d.name for d in domains]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"invalid decision space: variable {duplicated[0]} has two domains")
        if not domains:
            raise ConfigError("invalid decision space: expected at least one variable")
        self.domains: tuple[Domain, ...] = tuple(domains)
        self.names: tuple[str, ...] = tuple(names)
        self.shape: tuple[int, ...] = tuple(d.size for d in domains)
        self._arrays = [d.array for d in domains]

    @property
    def size(self) -> int:
        """Number of configurations in the lattice (a Python int: it may exceed 2^63)."""
        total = 1
        for n in self.shape:
            total *= n
        return total

    def domain(self, name: str) -> Domain:
        return self.domains[self.names.index(name)]

    # ----- index coordinates -----

    def decode(self, flat: np.ndarray) -> np.ndarray:
        """Index coordinates (n x d ints) of flat lattice indices."""
        return np.stack(np.unravel_index(np.asarray(flat, dtype=np.int64), self.shape), axis=1)

    def encode(self, coords: np.ndarray) -> np.ndarray:
        """Flat lattice indices of index coordinates (n x d)."""
        coords = np.atleast_2d(coords)
        return np.ravel_multi_index(tuple(coords.T), self.shape)

    def values_at(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        """Decision arrays (variable name -> values) at index coordinates."""
        coords = np.atleast_2d(np.asarray(coords, dtype=np.int64))
        return {name: arr[coords[:, j]] for j, (name, arr) in enumerate(zip(self.names, self._arrays))}

    def point(self, coords: Sequence[int]) -> dict[str, float]:
        """One configuration as plain Python numbers."""
        return {name: _plain(arr[int(k)]) for name, arr, k in zip(self.names, self._arrays, coords)}

    def coords_of(self, config: Mapping[str, float]) -> np.ndarray:
        """Index coordinates of a configuration whose values lie in the domains."""
        coords = []
        for name, arr in zip(self.names, self._arrays):
            hits = np.flatnonzero(arr == float(config[name]))
            if len(hits) == 0:
                raise ConfigError(f"invalid {name} {config[name]!r}: not in its domain {self.domain(name).describe()}")
            coords.append(int(hits[0]))
        return np.asarray(coords, dtype=np.int64)

    # ----- enumeration -----

    def chunks(self, max_points: int = DEFAULT_CHUNK_POINTS) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Yield (flat indices, decision arrays) over the whole lattice, at most `max_points` at a time."""
        if max_points <= 0:
            raise ConfigError(f"invalid chunk size {max_points}: expected a positive number of points")
        total = self.size
        start = 0
        while start < total:
            flat = np.arange(start, min(start + max_points, total), dtype=np.int64)
            yield flat, self.values_at(self.decode(flat))
            start += max_points

    # ----- continuous relaxation -----

    def interpolate(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Decision arrays at fractional index coordinates (piecewise-linear between domain values).

        Relaxing in index coordinates handles lists and powers of two alike:
        u = 2.5 on {1, 2, 4, 8} is 6.
        """
        u = np.atleast_2d(np.asarray(u, dtype=float))
        out = {}
        for j, (name, arr) in enumerate(zip(self.names, self._arrays)):
            grid = np.arange(len(arr), dtype=float)
            out[name] = np.interp(u[:, j], grid, arr)
        return out

    def neighbours(self, coords: np.ndarray, radius: int = 1) -> np.ndarray:
        """Index coordinates one step (up to `radius`) away along each axis, inside the lattice."""
        coords = np.asarray(coords, dtype=np.int64)
        moves = []
        for j, n in enumerate(self.shape):
            for step in range(-radius, radius + 1):
                if step == 0:
                    continue
                k = coords[j] + step
                if 0 <= k < n:
                    moved = coords.copy()
                    moved[j] = k
                    moves.append(moved)
        return np.asarray(moves, dtype=np.int64).reshape(-1, len(self.shape))

    def describe(self) -> str:
        return ", ".join(f"{d.name} in {d.describe()}" for d in self.domains)


def _plain(value: Any) -> float:
    value = float(value)
    return int(value) if value.is_integer() else value
