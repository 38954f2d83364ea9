"""Kernel choices of the steady-state model: attention backends with their feasibility guards.

SGLang picks one attention backend per server (`--attention-backend`);
which ones can run depends on the GPU generation and the KV page size. The
model takes the fastest feasible one: Min over backends of
Piecewise((s_b, feasible_b), (oo, True)) times the calibrated attention
time, so an infeasible backend can never win and a configuration with no
feasible backend costs infinity.

Guards, from the SGLang attention-backend documentation (docs.sglang.io,
"Attention Backend", support matrix and automatic selection):

- fa3 (FlashAttention 3): Hopper, compute capability 9.0;
- flashinfer: every CUDA GPU from compute capability 7.5 (FlashInfer's
  stated support);
- trtllm_mha: Blackwell (compute capability 10.x) with native page sizes
  16, 32 or 64;
- triton: every CUDA GPU.

NOTE: every backend's time factor `s_<backend>` binds to 1.0: the
efficiency constants were fitted on one backend's kernel timings and no
per-backend timings were available, so the Min chooses among equal times
until those factors are calibrated.
"""

from __future__ import annotations

import sympy
from sympy import Expr

from .symbols import ATTENTION_BACKENDS, ConfigSymbols


def backend_guards(symbols: ConfigSymbols) -> dict[str, sympy.Basic]:
    """Feasibility condition of each attention backend."""
    sm, page = symbols.sm_version, symbols.block_size
    native_page = sympy.Or(sympy.Eq(page, 16), sympy.Eq(page, 32), sympy.Eq(page, 64))
    guards = {
        "fa3": sympy.Eq(sm, 90),
        "flashinfer": sm >= 75,
        "trtllm_mha": sympy.And(sm >= 100, native_page),
        "triton": sympy.true,
    }
    missing = set(ATTENTION_BACKENDS) - set(guards)
    if missing:
        raise RuntimeError(f"attention backends without a feasibility guard: {sorted(missing)}")
    return guards


def attention_backend_factor(symbols: ConfigSymbols) -> Expr:
    """Min over feasible backends of their time factor (oo when none is feasible)."""
    terms = []
    for name, guard in backend_guards(symbols).items():
        speed = symbols.backend_speed[name]
        terms.append(speed if guard is sympy.true else sympy.Piecewise((speed, guard), (sympy.oo, True)))
    return sympy.Min(*terms)
