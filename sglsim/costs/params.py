"""Parameter containers the cost laws read, in either algebra.

Every numeric field may hold a Python number or a SymPy expression; the laws
never branch on them in Python, only through the ops layer. Boolean and
string fields (`is_moe`, `is_mla`, `cuda_graph`, `overlap`, `dp_attention`,
`moe_a2a`, `deepep_mode`, `two_batch_overlap`, ...) choose which laws exist at
all and stay Python values in both algebras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

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
    moe_num_groups: Num = 0
    """Expert groups of group-limited routing (DeepSeek's n_group); 0 = ungrouped."""
    moe_topk_group: Num = 0
    """Groups one token may route to (DeepSeek's topk_group); 0 = no limit."""
    a2a_dispatch_bytes: Num = 2.0
    """Bytes per hidden element an all-to-all dispatch sends: FP8 plus one FP32 scale per
    128 elements for FP8 checkpoints (DeepEP's FP8 dispatch), else BF16."""
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
            moe_num_groups=spec.n_group,
            moe_topk_group=spec.topk_group,
            a2a_dispatch_bytes=1.0 + 4.0 / 128 if spec.weight_dtype == "fp8" else 2.0,
            is_moe=spec.is_moe,
            is_mla=spec.is_mla,
        )


A2A_BACKENDS = ("none", "deepep")
DEEPEP_MODES = ("auto", "normal", "low_latency")
PP_SCHEDULES = ("steady", "gpipe")


@dataclass(frozen=True)
class ParallelParams:
    """The split of one server's model over its GPUs (SGLang's parallel layout).

    `tp` is SGLang's tp_size: the GPUs of one pipeline stage of one server.
    Defaults derive the sub-group sizes as SGLang does: attention runs with
    attn_tp = tp / attn_dp, each expert is split over moe_tp = tp / ep GPUs,
    dense MLP layers use dense_tp = tp and shared experts shared_tp = tp, or 1
    with DeepEP (SGLang replicates shared experts when it dispatches with
    DeepEP). Numeric fields may be SymPy symbols.
    """

    tp: Num = 1
    """Tensor-parallel degree of the whole server stage (GPUs per pipeline stage)."""
    attn_dp: Num = 1
    """DP-attention ranks; 1 unless `dp_attention`."""
    ep: Num = 1
    """Expert-parallel degree: routed experts are split over ep GPUs."""
    pp: Num = 1
    """Pipeline stages."""
    attn_tp: Optional[Num] = None
    """Tensor-parallel degree of attention (default tp / attn_dp)."""
    moe_tp: Optional[Num] = None
    """Tensor-parallel degree inside each expert (default tp / ep)."""
    dense_tp: Optional[Num] = None
    """Tensor-parallel degree of dense MLP layers (SGLang's moe_dense_tp_size; default tp)."""
    shared_tp: Optional[Num] = None
    """Tensor-parallel degree of shared experts (default tp, or 1 with DeepEP)."""
    num_redundant_experts: Num = 0
    """Extra expert replicas placed by EPLB (SGLang's ep_num_redundant_experts)."""
    pp_microbatches: Optional[Num] = None
    """Micro-batches in flight through the pipeline (default pp, as SGLang's PP event loop keeps)."""
    dp_attention: bool = False
    """SGLang's --enable-dp-attention: per-rank attention, gathered MoE/MLP."""
    moe_a2a: str = "none"
    """MoE token exchange: none (all-reduce or gather) or deepep (all-to-all dispatch and combine)."""
    deepep_mode: str = "auto"
    """DeepEP kernels: normal (throughput), low_latency, or auto (normal when any rank prefills)."""
    two_batch_overlap: bool = False
    """Two micro-batches hide DeepEP dispatch and combine behind computation."""
    dp_lm_head: bool = False
    """SGLang's --enable-dp-lm-head: each DP rank runs the LM head on its own rows."""
    eplb: bool = False
    """Expert placement rebalanced by EPLB (also implied by redundant experts)."""
    pp_schedule: str = "steady"
    """steady: SGLang keeps micro-batches flowing; gpipe: each step fills and drains the pipeline."""

    def __post_init__(self) -> None:
        if self.moe_a2a not in A2A_BACKENDS:
            raise ValueError(f"invalid moe_a2a {self.moe_a2a!r}: expected one of {A2A_BACKENDS}")
        if self.deepep_mode not in DEEPEP_MODES:
            raise ValueError(f"invalid deepep_mode {self.deepep_mode!r}: expected one of {DEEPEP_MODES}")
        if self.pp_schedule not in PP_SCHEDULES:
            raise ValueError(f"invalid pp_schedule {self.pp_schedule!r}: expected one of {PP_SCHEDULES}")
        defaults = {
            "attn_tp": self.tp / self.attn_dp if self.dp_attention else self.tp,
            "moe_tp": self.tp / self.ep,
            "dense_tp": self.tp,
            "shared_tp": 1 if self.moe_a2a == "deepep" else self.tp,
            "pp_microbatches": self.pp,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)

    @property
    def deepep(self) -> bool:
        return self.moe_a2a == "deepep"


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
    """NVLink bandwidth per GPU and direction, bytes/s."""
    net_bw: Num = 50e9
    """Scale-out (InfiniBand) bandwidth per GPU and direction, bytes/s."""
    nvlink_domain: Num = 8
    """GPUs in one NVLink domain (8 on an HGX board, 72 on an NVL72 rack)."""

    @classmethod
    def from_gpu(cls, gpu: GPUSpec, weight_dtype: str = "bf16") -> "HardwareParams":
        return cls(
            gemm_flops=gpu.peak_flops(weight_dtype),
            attn_flops=gpu.bf16_flops,
            mem_bw=gpu.mem_bw_bytes_s,
            tp_link_bw=gpu.nvlink_bw_bytes_s,
            net_bw=gpu.network_bw_bytes_s,
            nvlink_domain=gpu.gpus_per_node,
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

    All fields except the flags are additive: the shape of a group of steps
    is the field-wise sum, and every law is homogeneous of degree one in them,
    which is what lets the symbolic trace sum steps that share a roofline side.

    extend_pairs is sum_i q_i * (p_i + (q_i + 1) / 2) over extend requests with
    q_i new tokens after p_i cached ones: the causal query-key pairs per head.

    Under DP attention a shape describes one DP rank: the per-request fields
    are that rank's, while `dp_tokens`, `dp_seqs` and `any_extend` describe the
    whole server (the MoE/MLP runs on the gathered tokens of every rank).
    Without DP attention the laws ignore those three fields.
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
    moe_rank_assignments: float = 0.0
    """Expected (token, routed expert) pairs on the busiest EP rank of one MoE layer."""
    dp_tokens: float = 0.0
    """Tokens of all DP-attention ranks in this step (the MoE/MLP batch)."""
    dp_seqs: float = 0.0
    """Sequences of all DP-attention ranks (LM-head rows without --enable-dp-lm-head)."""
    has_extend: bool = False
    has_decode: bool = False
    any_extend: bool = False
    """Some DP rank runs an extend batch (DeepEP normal mode, no CUDA graph on any rank)."""

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
        self.moe_rank_assignments += weight * other.moe_rank_assignments
        self.dp_tokens += weight * other.dp_tokens
        self.dp_seqs += weight * other.dp_seqs
        self.has_extend = self.has_extend or other.has_extend
        self.has_decode = self.has_decode or other.has_decode
        self.any_extend = self.any_extend or other.any_extend
