"""The numeric bridge: compiled evaluation over arrays, sensitivities and exports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from sglsim import ConfigError
from sglsim.symbolic import bridge
from sglsim.symbolic.functions import UnitStep
from sglsim.symbolic.symbols import ConfigSymbols

S = ConfigSymbols()
B, TP, c = S.batch_cap_requests, S.tp_size, S.chunk_size
EXPR = sympy.Max(B * 2 / TP, 3 * sympy.sqrt(B)) + sympy.ceiling(1000 / c) * B + sympy.Min(TP, 4)


def test_compiled_matches_symbolic_over_arrays():
    compiled = bridge.compile_expression(EXPR)
    assert compiled.names == ["B_req", "TP", "c"]
    grid_b = np.array([1.0, 16.0, 64.0, 300.0])
    grid_tp = np.array([1.0, 2.0, 4.0, 8.0])
    out = compiled(B_req=grid_b, TP=grid_tp, c=512.0)
    for i in range(4):
        exact = float(EXPR.subs({B: grid_b[i], TP: grid_tp[i], c: 512}))
        assert out[i] == pytest.approx(exact, rel=1e-14)


def test_bound_values_are_constants():
    compiled = bridge.compile_expression(EXPR, bind_values={TP: 2.0, c: 1000.0})
    assert compiled.names == ["B_req"]
    assert compiled(np.array([4.0]))[0] == pytest.approx(float(EXPR.subs({B: 4, TP: 2, c: 1000})))


def test_division_by_zero_is_infinite():
    x = sympy.Symbol("x", positive=True)
    compiled = bridge.compile_expression(1 / sympy.Max(1 - x, 0))
    assert compiled(2.0) == math.inf


def test_unit_step_compiles():
    x = sympy.Symbol("x")
    compiled = bridge.compile_expression(UnitStep(x))
    assert compiled(np.array([-1.0, 0.0, 2.0, -np.inf])).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert UnitStep(sympy.Integer(-3)) == 0
    assert UnitStep(sympy.oo) == 1
    assert sympy.diff(UnitStep(x**2), x) == 0


def test_compile_errors():
    with pytest.raises(ConfigError, match="neither bound nor arguments"):
        bridge.compile_expression(EXPR, symbols=[B])
    compiled = bridge.compile_expression(EXPR)
    with pytest.raises(ConfigError, match="missing"):
        compiled(B_req=1.0)
    with pytest.raises(ConfigError, match="no value"):
        compiled.evaluate({B: 1.0})


def test_bind_keeps_symbolic_max_unevaluated():
    partly = bridge.bind(EXPR, {c: 100})
    assert partly.free_symbols == {B, TP}
    assert float(bridge.bind(partly, {B: 9, TP: 1})) == float(EXPR.subs({B: 9, TP: 1, c: 100}))


@pytest.mark.parametrize("method", ["symbolic", "numeric"])
def test_sensitivities(method):
    point = {B: 64.0, TP: 2.0, c: 300.0}
    rows = bridge.sensitivities(EXPR, point, method=method)
    by_symbol = {sym: (d, e) for sym, d, e in rows}
    # d/dB of max(B, 3 sqrt(B)) + ceil(1000/300) B + min(TP, 4) at B = 64, TP = 2 is 1 + 4 = 5.
    assert by_symbol[B][0] == pytest.approx(5.0, rel=1e-6)
    # The ceiling is held constant: the chunk size has no slope here.
    assert by_symbol[c][0] == pytest.approx(0.0, abs=1e-6)
    value = float(EXPR.subs(point))
    assert by_symbol[TP][1] == pytest.approx(by_symbol[TP][0] * 2.0 / value, rel=1e-6)
    assert [r[0] for r in rows][0] == B
    assert len(bridge.sensitivities(EXPR, point, top=1, method=method)) == 1


def test_sensitivities_input_errors():
    with pytest.raises(ConfigError, match="no value"):
        bridge.sensitivities(EXPR, {B: 1.0})
    with pytest.raises(ConfigError, match="unknown sensitivity method"):
        bridge.sensitivities(EXPR, {B: 1.0, TP: 1.0, c: 1.0}, method="adjoint")


def test_exports_round_trip():
    text = bridge.to_json(EXPR, "demo")
    restored = bridge.from_json(text)
    assert restored == EXPR
    assert all(s.is_integer for s in restored.free_symbols)
    assert "B_{req}" in bridge.to_latex(EXPR)
    assert bridge.to_text(EXPR) == str(EXPR)


def test_python_export_runs():
    source = bridge.to_python(EXPR, "demo")
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["demo"](B_req=64.0, TP=2.0, c=300.0) == pytest.approx(float(EXPR.subs({B: 64, TP: 2, c: 300})))


def test_closed_form_of_sum():
    j, n = sympy.symbols("j n", integer=True, positive=True)
    total = bridge.closed_form(sympy.Sum(2 * j + 1, (j, 0, n - 1)))
    assert sympy.simplify(total - n**2) == 0
