"""Parameter containers the cost laws read, in either algebra.

Every numeric field may hold a Python number or a SymPy expression; the laws
never branch on them in Python, only through the ops layer. Boolean fields
(`is_moe`, `is_mla`, `cuda_graph`, `overlap`) choose which laws exist at all
and stay Python booleans in both algebras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..hardware.gpus import GPUSpec
from ..hardware.models import DTYPE_BYTES, ModelSpec

Num = Any
"""A float, an int or a SymPy expression."""


@dataclass(frozen=True)
class ModelParams:
    """Model dimensions and dtypes (whole model, before any sharding)."""

    num_layers: Num
    num_moe_layers: Num
    hidden_size: Num
    num_heads: Num
    num_kv_heads: Num
    head_dim: Num
    intermediate_size: Num
    vocab_size: Num
    weight_bytes: Num
    """Bytes per weight element (2 for BF16, 1 for FP8)."""
    act_bytes: Num
    """Bytes per activation element (2: SGLang keeps activations in BF16)."""
    kv_bytes: Num
    """Bytes per KV-cache element."""
    num_experts: Num = 0
    top_k: Num = 0
    moe_intermediate_size: Num = 0
    shared_intermediate_size: Num = 0
    kv_lora_rank: Num = 0
    qk_rope_head_dim: Num = 0
    qk_nope_head_dim: Num = 0
    v_head_dim: Num = 0
    q_lora_rank: Num = 0
    is_moe: bool = False
    is_mla: bool = False

    @classmethod
    def from_spec(cls, spec: ModelSpec, kv_dtype: str = "bf16") -> "ModelParams":
        return cls(
            num_layers=spec.num_layers,
            num_moe_layers=spec.num_moe_layers,
            hidden_size=spec.hidden_size,
            num_heads=spec.num_attention_heads,
            num_kv_heads=spec.num_key_value_heads,
            head_dim=spec.head_dim,
            intermediate_size=spec.intermediate_size,
            vocab_size=spec.vocab_size,
            weight_bytes=spec.weight_bytes_per_param,
            act_bytes=2.0,
            kv_bytes=DTYPE_BYTES[kv_dtype],
            num_experts=spec.num_experts,
            top_k=spec.num_experts_per_tok,
            moe_intermediate_size=spec.moe_intermediate_size,
            shared_intermediate_size=spec.shared_expert_intermediate_size,
            kv_lora_rank=spec.kv_lora_rank,
            qk_rope_head_dim=spec.qk_rope_head_dim,
            qk_nope_head_dim=spec.qk_nope_head_dim,
            v_head_dim=spec.v_head_dim,
            q_lora_rank=spec.q_lora_rank,
            is_moe=spec.is_moe,
            is_mla=spec.is_mla,
        )


@dataclass(frozen=True)
class ParallelParams:
    """How one server splits the model over its GPUs."""

    tp: Num = 1
    """Tensor-parallel degree of the attention and dense layers."""


@dataclass(frozen=True)
class HardwareParams:
    """Per-GPU peaks and the link inside the tensor-parallel group."""

    gemm_flops: Num
    """Dense tensor-core peak for GEMMs in the weight dtype, FLOP/s."""
    attn_flops: Num
    """Dense BF16 peak used by attention kernels, FLOP/s."""
    mem_bw: Num
    """HBM bandwidth, bytes/s."""
    tp_link_bw: Num
    """Bandwidth per GPU and direction of the TP group's link, bytes/s."""

    @classmethod
    def from_gpu(cls, gpu: GPUSpec, weight_dtype: str = "bf16") -> "HardwareParams":
        return cls(
            gemm_flops=gpu.peak_flops(weight_dtype),
            attn_flops=gpu.bf16_flops,
            mem_bw=gpu.mem_bw_bytes_s,
            tp_link_bw=gpu.nvlink_bw_bytes_s,
        )


@dataclass(frozen=True)
class RuntimeParams:
    """Server knobs that change the step law itself."""

    cuda_graph_max_bs: Num = 256
    """Largest decode batch that replays a captured CUDA graph."""
    cuda_graph: bool = True
    """False mirrors `--disable-cuda-graph`: every step launches kernels eagerly."""
    overlap: bool = True
    """True mirrors SGLang's default overlap scheduler: CPU work hides behind the GPU step."""


@dataclass(slots=True)
class StepShape:
    """The work of one forward step (or, summed, of several).

    All fields except the two flags are additive: the shape of a group of steps
    is the field-wise sum, and every law is homogeneous of degree one in them,
    which is what lets the symbolic trace sum steps that share a roofline side.

    extend_pairs is sum_i q_i * (p_i + (q_i + 1) / 2) over extend requests with
    q_i new tokens after p_i cached ones: the causal query-key pairs per head.
    """

    steps: float = 1.0
    tokens: float = 0.0
    """Tokens through the dense layers: new prompt tokens plus one per decoding sequence."""
    seqs: float = 0.0
    """Sequences in the batch; each yields one row of logits."""
    extend_tokens: float = 0.0
    extend_pairs: float = 0.0
    extend_kv_tokens: float = 0.0
    """Sum over extend requests of prefix + new tokens: KV read by prefill attention."""
    extend_seqs: float = 0.0
    decode_seqs: float = 0.0
    decode_ctx_tokens: float = 0.0
    """Sum of the context lengths of the decoding sequences: KV read by decode attention."""
    experts_touched: float = 0.0
    """Expected distinct routed experts one MoE layer reads (0 for dense models)."""
    has_extend: bool = False
    has_decode: bool = False

    def scaled_sum(self, other: "StepShape", weight: float = 1.0) -> None:
        """Add `weight` x `other` field-wise into this shape (flags are OR-ed)."""
        self.steps += weight * other.steps
        self.tokens += weight * other.tokens
        self.seqs += weight * other.seqs
        self.extend_tokens += weight * other.extend_tokens
        self.extend_pairs += weight * other.extend_pairs
        self.extend_kv_tokens += weight * other.extend_kv_tokens
        self.extend_seqs += weight * other.extend_seqs
        self.decode_seqs += weight * other.decode_seqs
        self.decode_ctx_tokens += weight * other.decode_ctx_tokens
        self.experts_touched += weight * other.experts_touched
        self.has_extend = self.has_extend or other.has_extend
        self.has_decode = self.has_decode or other.has_decode
