"""Measured kernel tables as arrays, each predicted by the simulator's own cost laws.

Every table contains one kernel class measured over many shapes, with latencies
in seconds. `predict_s(gpu, eff)` evaluates the law the simulator uses for
that kernel class (`gemm_time`, `attention_time`, `all_reduce_time`) on all
rows at once, so fitted constants mean exactly what they mean in a simulated
forward step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Protocol, TypeVar

import numpy as np

from ..costs.efficiency import Efficiency
from ..costs.forward import LawContext, attention_time
from ..costs.collectives import all_reduce_time
from ..costs.laws import gemm_time
from ..costs.params import HardwareParams, ModelParams, ParallelParams, RuntimeParams, StepShape
from ..hardware.gpus import GPUSpec
from ..hardware.models import DTYPE_BYTES
from .array_ops import ARRAY_OPS

ACT_BYTES = 2.0
"""Bytes per activation element: SGLang keeps activations in BF16."""

GEMM_CONSTANTS = ("gemm_compute", "gemm_memory", "gemm_floor_s")
ATTENTION_CONSTANTS = ("attn_prefill_compute", "attn_prefill_memory", "attn_prefill_pad_tokens",
                       "attn_decode_compute", "attn_decode_memory", "attn_decode_pad_tokens", "attn_floor_s")
ALL_REDUCE_CONSTANTS = ("comm_bandwidth", "allreduce_latency_s", "nccl_hop_latency_s")


class KernelTable(Protocol):
    """Rows of one measured kernel class that a cost law can predict."""

    name: str
    latency_s: np.ndarray

    def predict_s(self, gpu: GPUSpec, eff: Efficiency) -> np.ndarray: ...


TableT = TypeVar("TableT")


def select_rows(table: TableT, keep: np.ndarray, name: str) -> TableT:
    """Return a copy of `table` named `name` with only the rows where `keep` is true."""
    keep = np.asarray(keep, dtype=bool)
    if not keep.any():
        raise ValueError(f"invalid selection {name}: no rows left")
    columns = {f.name: np.asarray(getattr(table, f.name))[keep] for f in fields(table)
               if isinstance(getattr(table, f.name), np.ndarray)}
    return replace(table, name=name, **columns)


def _kernel_model(weight_bytes: float = 2.0, kv_bytes: float = 2.0, num_heads=0, num_kv_heads=0,
                  head_dim=0) -> ModelParams:
    """Model parameters of a single kernel: only the fields its law reads are non-zero."""
    return ModelParams(num_layers=1, num_moe_layers=0, hidden_size=0, num_heads=num_heads,
                       num_kv_heads=num_kv_heads, head_dim=head_dim, intermediate_size=0,
                       vocab_size=0, weight_bytes=weight_bytes, act_bytes=ACT_BYTES, kv_bytes=kv_bytes)


def _checked(name: str, latency_s: np.ndarray, *columns: np.ndarray) -> np.ndarray:
    latency_s = np.asarray(latency_s, dtype=float)
    if latency_s.ndim != 1 or latency_s.size == 0:
        raise ValueError(f"invalid table {name}: expected a non-empty 1-D latency column")
    if not np.all(np.isfinite(latency_s)) or np.any(latency_s <= 0):
        raise ValueError(f"invalid table {name}: latencies must be finite and positive")
    for column in columns:
        if np.shape(column) != latency_s.shape:
            raise ValueError(f"invalid table {name}: every column needs {latency_s.size} rows")
    return latency_s


@dataclass(frozen=True)
class GemmTable:
    """GEMMs [m x k] @ [k x n] with weights in `weight_dtype` (bf16, fp8 or fp4)."""

    name: str
    m_tokens: np.ndarray
    n: np.ndarray
    k: np.ndarray
    latency_s: np.ndarray
    weight_dtype: str = "bf16"

    def __post_init__(self) -> None:
        if self.weight_dtype not in DTYPE_BYTES:
            raise ValueError(f"invalid weight_dtype {self.weight_dtype!r}: expected one of {sorted(DTYPE_BYTES)}")
        _checked(self.name, self.latency_s, self.m_tokens, self.n, self.k)

    def predict_s(self, gpu: GPUSpec, eff: Efficiency) -> np.ndarray:
        """`gemm_time` of one GEMM per row (one step), on the GPU's peak for the weight dtype."""
        hw = HardwareParams.from_gpu(gpu, self.weight_dtype)
        model = _kernel_model(weight_bytes=DTYPE_BYTES[self.weight_dtype])
        return gemm_time(ARRAY_OPS, self.m_tokens, self.n, self.k, 1.0, model, hw, eff)


@dataclass(frozen=True)
class AttentionTable:
    """Attention kernels of one layer: causal prefill or single-token decode.

    Prefill rows run `batch_size` sequences of `seq_len` new tokens with no
    cached prefix; decode rows run one query per sequence against `seq_len`
    cached tokens. Head counts are those of one GPU.
    """

    name: str
    phase: str
    batch_size: np.ndarray
    seq_len: np.ndarray
    num_heads: np.ndarray
    num_kv_heads: np.ndarray
    head_dim: np.ndarray
    latency_s: np.ndarray
    kv_dtype: str = "bf16"

    def __post_init__(self) -> None:
        if self.phase not in ("prefill", "decode"):
            raise ValueError(f"invalid phase {self.phase!r}: expected 'prefill' or 'decode'")
        _checked(self.name, self.latency_s, self.batch_size, self.seq_len, self.num_heads,
                 self.num_kv_heads, self.head_dim)

    def shape(self) -> StepShape:
        """Return the step shape whose attention part is this table's kernel, one row per element."""
        b = np.asarray(self.batch_size, dtype=float)
        s = np.asarray(self.seq_len, dtype=float)
        if self.phase == "prefill":
            return StepShape(tokens=b * s, seqs=b, extend_tokens=b * s, extend_pairs=b * s * (s + 1) / 2,
                             extend_kv_tokens=b * s, extend_seqs=b, has_extend=True)
        return StepShape(tokens=b, seqs=b, decode_seqs=b, decode_ctx_tokens=b * s, has_decode=True)

    def predict_s(self, gpu: GPUSpec, eff: Efficiency) -> np.ndarray:
        """`attention_time` of one layer per row, at TP 1 with the table's per-GPU heads."""
        model = _kernel_model(kv_bytes=DTYPE_BYTES[self.kv_dtype], num_heads=np.asarray(self.num_heads, float),
                              num_kv_heads=np.asarray(self.num_kv_heads, float),
                              head_dim=np.asarray(self.head_dim, float))
        ctx = LawContext(model=model, par=ParallelParams(tp=1), hw=HardwareParams.from_gpu(gpu, "bf16"),
                         eff=eff, rt=RuntimeParams())
        return attention_time(ARRAY_OPS, self.shape(), ctx)


@dataclass(frozen=True)
class AllReduceTable:
    """All-reduces of `message_bytes` over `ranks` GPUs of one NVLink domain."""

    name: str
    ranks: np.ndarray
    message_bytes: np.ndarray
    latency_s: np.ndarray

    def __post_init__(self) -> None:
        _checked(self.name, self.latency_s, self.ranks, self.message_bytes)

    def predict_s(self, gpu: GPUSpec, eff: Efficiency) -> np.ndarray:
        """`all_reduce_time` of one all-reduce per row over the GPU's NVLink bandwidth."""
        ranks = np.asarray(self.ranks, dtype=float)
        return all_reduce_time(ARRAY_OPS, np.asarray(self.message_bytes, float), ranks,
                               HardwareParams.from_gpu(gpu, "bf16"), eff, 1.0)
