"""The calibration fit: array evaluation of the laws, and recovery of known constants from synthetic tables."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.calibration.array_ops import ARRAY_OPS
from sglsim.calibration.fit import ErrorStats, fit_constants, table_errors
from sglsim.calibration.kernels import (ALL_REDUCE_CONSTANTS, ATTENTION_CONSTANTS, GEMM_CONSTANTS,
                                        AllReduceTable, AttentionTable, GemmTable, select_rows)
from sglsim.costs.efficiency import Efficiency
from sglsim.costs.laws import gemm_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.costs.params import HardwareParams, ModelParams
from sglsim.hardware.gpus import get_gpu

H100 = get_gpu("h100")


def gemm_grid(weight_dtype: str = "bf16") -> GemmTable:
    """GEMMs from 1 to 16K tokens over square and skinny weights: both roofline sides and the floor."""
    m, n, k = np.meshgrid([1.0, 8, 64, 512, 4096, 16384], [256.0, 4096, 16384], [1024.0, 8192],
                          indexing="ij")
    m, n, k = m.ravel(), n.ravel(), k.ravel()
    return GemmTable("synthetic gemm", m, n, k, np.ones_like(m), weight_dtype)


def with_latency(table, eff: Efficiency, noise: float = 0.0, seed: int = 0):
    """The same table with latencies predicted by `eff`, times lognormal noise of sigma `noise`."""
    latency = table.predict_s(H100, eff)
    if noise:
        latency = latency * np.exp(np.random.default_rng(seed).normal(0.0, noise, latency.size))
    return replace(table, latency_s=latency)


def attention_grid() -> list[AttentionTable]:
    b, s, kv = np.meshgrid([1.0, 16, 256], [16.0, 1024, 16384], [1.0, 8], indexing="ij")
    b, s, kv = b.ravel(), s.ravel(), kv.ravel()
    heads, dim = 8 * kv, np.full(b.size, 128.0)
    ones = np.ones(b.size)
    return [AttentionTable("prefill", "prefill", b, s, heads, kv, dim, ones),
            AttentionTable("decode", "decode", b, s, heads, kv, dim, ones)]


# ----- the array algebra -----

def test_array_ops_gemm_matches_float_ops():
    table = gemm_grid()
    eff = Efficiency()
    hw = HardwareParams.from_gpu(H100, "bf16")
    model = ModelParams(1, 0, 0, 0, 0, 0, 0, 0, weight_bytes=2.0, act_bytes=2.0, kv_bytes=2.0)
    # Each array element must equal the float law evaluated alone on that row.
    expected = [gemm_time(FLOAT_OPS, m, n, k, 1.0, model, hw, eff)
                for m, n, k in zip(table.m_tokens, table.n, table.k)]
    np.testing.assert_allclose(table.predict_s(H100, eff), expected, rtol=1e-12)
    assert ARRAY_OPS.max(np.array([1.0, 3.0]), 2.0).tolist() == [2.0, 3.0]


# ----- error statistics -----

def test_error_stats_exact_values():
    # |1.1/1 - 1| = 0.1, |0.8/1 - 1| = 0.2, |1/1 - 1| = 0: median 0.1; p90 interpolates 0.1..0.2 at 0.8.
    stats = ErrorStats.of("t", np.array([1.1, 0.8, 1.0]), np.ones(3))
    assert stats.count == 3
    assert stats.median == pytest.approx(0.1)
    assert stats.p90 == pytest.approx(0.18)


# ----- recovering known constants -----

def test_gemm_fit_recovers_known_constants():
    truth = Efficiency(gemm_compute=0.61, gemm_memory=0.77, gemm_floor_s=6e-6)
    table = with_latency(gemm_grid(), truth)
    # Start far from the truth: the hand-set defaults.
    result = fit_constants([table], H100, Efficiency(), GEMM_CONSTANTS)
    assert result.converged
    for name in GEMM_CONSTANTS:
        assert result.values[name] == pytest.approx(getattr(truth, name), rel=1e-4)
    assert result.after[0].p90 < 1e-6
    assert result.before[0].median > 0.01


def test_gemm_fit_tolerates_noise():
    truth = Efficiency(gemm_compute=0.55, gemm_memory=0.8, gemm_floor_s=5e-6)
    table = with_latency(gemm_grid("fp8"), truth, noise=0.03)
    result = fit_constants([table], H100, Efficiency(), GEMM_CONSTANTS)
    assert result.values["gemm_compute"] == pytest.approx(0.55, rel=0.03)
    assert result.values["gemm_memory"] == pytest.approx(0.8, rel=0.03)
    assert result.values["gemm_floor_s"] == pytest.approx(5e-6, rel=0.15)


def test_attention_fit_recovers_known_constants():
    truth = Efficiency(attn_prefill_compute=0.55, attn_prefill_memory=0.5, attn_prefill_pad_tokens=250.0,
                       attn_decode_compute=0.3, attn_decode_memory=0.85, attn_decode_pad_tokens=90.0,
                       attn_floor_s=9e-6)
    tables = [with_latency(t, truth) for t in attention_grid()]
    result = fit_constants(tables, H100, Efficiency(), ATTENTION_CONSTANTS)
    # Every constant binds somewhere on this grid except the decode compute roofline and the
    # prefill memory roofline (GQA decode and long prefill are on the other sides), so compare
    # the predictions, which is what the simulator uses.
    for table in tables:
        np.testing.assert_allclose(table.predict_s(H100, result.efficiency), table.latency_s, rtol=1e-4)
    for name in ("attn_prefill_compute", "attn_prefill_pad_tokens", "attn_decode_memory",
                 "attn_decode_pad_tokens", "attn_floor_s"):
        assert result.values[name] == pytest.approx(getattr(truth, name), rel=1e-3)


def test_all_reduce_fit_recovers_known_constants():
    ranks, size = np.meshgrid([2.0, 4, 8], 2.0 ** np.arange(8, 30, 2), indexing="ij")
    ranks, size = ranks.ravel(), size.ravel()
    truth = Efficiency(comm_bandwidth=0.7, allreduce_latency_s=4e-6, nccl_hop_latency_s=1.5e-6)
    table = with_latency(AllReduceTable("synthetic all-reduce", ranks, size, np.ones(size.size)), truth)
    result = fit_constants([table], H100, Efficiency(), ALL_REDUCE_CONSTANTS)
    for name in ALL_REDUCE_CONSTANTS:
        assert result.values[name] == pytest.approx(getattr(truth, name), rel=1e-3)


@settings(max_examples=8, deadline=None)
@given(compute=st.floats(0.2, 0.95), memory=st.floats(0.2, 0.95), floor_us=st.floats(1.0, 20.0))
def test_gemm_fit_reproduces_any_truth(compute, memory, floor_us):
    truth = Efficiency(gemm_compute=compute, gemm_memory=memory, gemm_floor_s=floor_us * 1e-6)
    table = with_latency(gemm_grid(), truth)
    result = fit_constants([table], H100, Efficiency(), GEMM_CONSTANTS)
    assert table_errors([table], H100, result.efficiency)[0].p90 < 1e-4


# ----- input checks -----

def test_fit_rejects_bad_input():
    table = with_latency(gemm_grid(), Efficiency())
    with pytest.raises(ValueError, match="at least one kernel table"):
        fit_constants([], H100, Efficiency(), GEMM_CONSTANTS)
    with pytest.raises(ValueError, match="unknown efficiency constant"):
        fit_constants([table], H100, Efficiency(), ["gemm_speed"])
    with pytest.raises(ValueError, match="invalid bounds"):
        fit_constants([table], H100, Efficiency(), ["gemm_compute"], {"gemm_compute": (0.9, 0.1)})


def test_tables_reject_bad_latencies():
    ones = np.ones(2)
    with pytest.raises(ValueError, match="finite and positive"):
        GemmTable("g", ones, ones, ones, np.array([1e-5, 0.0]))
    with pytest.raises(ValueError, match="every column needs 2 rows"):
        GemmTable("g", np.ones(3), ones, ones, ones)
    with pytest.raises(ValueError, match="invalid phase"):
        AttentionTable("a", "verify", ones, ones, ones, ones, ones, ones)


def test_select_rows_keeps_matching_rows():
    table = with_latency(gemm_grid(), Efficiency())
    large = select_rows(table, table.n >= 4096, "large")
    assert large.name == "large"
    assert large.latency_s.size == int((table.n >= 4096).sum())
    assert set(large.n.tolist()) == {4096.0, 16384.0}
    with pytest.raises(ValueError, match="no rows left"):
        select_rows(table, table.n > 1e9, "none")
