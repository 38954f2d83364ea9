"""Decision-space domains, lattice enumeration and the relaxation's interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sglsim.errors import ConfigError
from sglsim.optimizer import DecisionSpace, Domain
from sglsim.optimizer.space import parse_domain


def test_domain_constructors():
    assert Domain.range("c", 1, 7, 2).values == (1, 3, 5, 7)
    assert Domain.powers_of_two("TP", 1, 8).values == (1, 2, 4, 8)
    assert Domain.of("B", [64, 16, 16, 32]).values == (16, 32, 64)
    assert parse_domain("c", {"pow2": [2048, 16384]}).values == (2048, 4096, 8192, 16384)
    assert parse_domain("N", {"range": [1, 3]}).values == (1, 2, 3)
    assert parse_domain("N", 4).values == (4,)


@pytest.mark.parametrize("spec, message", [
    ([], "expected at least one value"),
    ({"pow2": [3, 8]}, "3 is not a power of two"),
    ({"range": [5, 1]}, "expected start <= stop"),
    ("eight", "expected numbers"),
    ({"grid": [1, 2]}, "expected a list of values"),
    ([1, float("nan")], "expected finite numbers"),
])
def test_bad_domains_name_the_variable(spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_domain("TP", spec)
    assert "TP" in str(err.value)


def test_duplicate_variable_is_rejected():
    with pytest.raises(ConfigError, match="variable N has two domains"):
        DecisionSpace([Domain.of("N", [1]), Domain.of("N", [2])])


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(1, 50))
def test_chunks_enumerate_lattice_once(sizes, chunk):
    space = DecisionSpace({f"v{i}": range(n) for i, n in enumerate(sizes)})
    seen = []
    for flat, values in space.chunks(chunk):
        assert len(flat) <= chunk
        seen.extend(zip(*(values[name] for name in space.names)))
    assert len(seen) == space.size
    assert len(set(seen)) == space.size


def test_coords_round_trip():
    space = DecisionSpace({"N": range(1, 9), "TP": [1, 2, 4, 8]})
    coords = space.coords_of({"N": 5, "TP": 4})
    assert coords.tolist() == [4, 2]
    assert space.point(coords) == {"N": 5, "TP": 4}
    assert space.decode(space.encode(coords))[0].tolist() == [4, 2]
    with pytest.raises(ConfigError, match="invalid TP 3: not in its domain"):
        space.coords_of({"N": 5, "TP": 3})


def test_interpolation_and_neighbours():
    space = DecisionSpace({"TP": [1, 2, 4, 8], "N": range(1, 4)})
    values = space.interpolate(np.array([[2.5, 0.5]]))
    # Halfway between 4 and 8, and between 1 and 2.
    assert values["TP"][0] == 6.0 and values["N"][0] == 1.5
    neighbours = {tuple(p) for p in space.neighbours(np.array([0, 1]))}
    assert neighbours == {(1, 1), (0, 0), (0, 2)}
