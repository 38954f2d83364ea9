"""Model architecture presets and a loader for Hugging Face `config.json` files.

A `ModelSpec` holds what the cost laws and the memory plan need: layer count,
hidden size, attention heads (GQA or MLA), MLP or MoE sizes, vocabulary, the
context length and the weight dtype. Preset numbers are the published
`config.json` values of each model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError, invalid, not_utf8, unknown

DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}
"""Bytes per element of each supported weight or KV dtype, scales excluded."""

NVFP4_GROUP = 16
"""NVFP4 stores one FP8 (E4M3) scale per 16 FP4 values (NVIDIA's NVFP4 format)."""
FP32_SCALE_BYTES = 4.0
FP8_SCALE_BYTES = 1.0


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer, as the cost laws see it."""

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_context_len: int
    tie_word_embeddings: bool = False
    weight_dtype: str = "bf16"
    weight_block_size: int = 0
    """FP8 scale block edge (DeepSeek's checkpoints use 128 x 128 blocks); 0 = one scale per tensor."""
    # Mixture of experts (num_experts == 0 means a dense MLP in every layer).
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    """Total intermediate size of the shared experts of one MoE layer (0 = none)."""
    num_dense_layers: int = 0
    """Leading layers that keep a dense MLP in an MoE model (DeepSeek's first_k_dense_replace)."""
    n_group: int = 0
    """Expert groups of group-limited routing (DeepSeek's n_group); 0 = ungrouped."""
    topk_group: int = 0
    """Groups one token may route to (DeepSeek's topk_group); 0 = no limit."""
    # Multi-head latent attention (kv_lora_rank == 0 means plain MHA/GQA).
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers if self.is_moe else 0

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes per quantized weight, scales included.

        FP8 with block scales adds one FP32 scale per block x block tile;
        NVFP4 adds one FP8 scale per 16 values. Per-tensor scales are negligible.
        """
        raw = DTYPE_BYTES[self.weight_dtype]
        if self.weight_dtype == "fp4":
            return raw + FP8_SCALE_BYTES / NVFP4_GROUP
        if self.weight_dtype == "fp8" and self.weight_block_size:
            return raw + FP32_SCALE_BYTES / self.weight_block_size ** 2
        return raw

    @property
    def unquantized_bytes_per_param(self) -> float:
        """Bytes per weight of the parts quantization leaves in BF16: embeddings, LM head, router, norms."""
        return DTYPE_BYTES["bf16"]

    def attention_params_per_layer(self) -> int:
        """Weights of one attention block (projections only)."""
        h = self.hidden_size
        if self.is_mla:
            qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
            heads = self.num_attention_heads
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank * heads * qk_dim
            else:
                q = h * heads * qk_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            o = heads * self.v_head_dim * h
            return q + kv_a + kv_b + o
        q_out = self.num_attention_heads * self.head_dim
        kv_out = 2 * self.num_key_value_heads * self.head_dim
        return h * (q_out + kv_out) + q_out * h

    def dense_mlp_params(self) -> int:
        return 3 * self.hidden_size * self.intermediate_size

    def moe_params_per_layer(self) -> int:
        """Routed experts, shared experts and the router of one MoE layer."""
        return (self.num_experts * self.expert_params() + self.shared_expert_params()
                + self.router_params())

    def expert_params(self) -> int:
        """Weights of one routed expert (gate, up and down projections)."""
        return 3 * self.hidden_size * self.moe_intermediate_size

    def shared_expert_params(self) -> int:
        """Weights of the shared experts of one MoE layer."""
        return 3 * self.hidden_size * self.shared_expert_intermediate_size

    def router_params(self) -> int:
        """Weights of the router (gate) of one MoE layer."""
        return self.hidden_size * self.num_experts

    @property
    def num_mlp_dense_layers(self) -> int:
        """Layers with a dense MLP: all layers of a dense model, the leading ones of an MoE model."""
        return self.num_dense_layers if self.is_moe else self.num_layers

    def embedding_params(self) -> int:
        per_table = self.vocab_size * self.hidden_size
        return per_table if self.tie_word_embeddings else 2 * per_table

    def num_params(self) -> int:
        """Total parameter count (norm weights included)."""
        attn = self.attention_params_per_layer() * self.num_layers
        dense_layers = self.num_dense_layers if self.is_moe else self.num_layers
        mlp = self.dense_mlp_params() * dense_layers + self.moe_params_per_layer() * self.num_moe_layers
        norms = (2 * self.num_layers + 1) * self.hidden_size
        return attn + mlp + self.embedding_params() + norms

    def active_params_per_token(self) -> int:
        """Parameters one token passes through (routed experts counted top-k times)."""
        if not self.is_moe:
            return self.num_params()
        h = self.hidden_size
        active_moe = (self.num_experts_per_tok * 3 * h * self.moe_intermediate_size
                      + 3 * h * self.shared_expert_intermediate_size + h * self.num_experts)
        attn = self.attention_params_per_layer() * self.num_layers
        mlp = self.dense_mlp_params() * self.num_dense_layers + active_moe * self.num_moe_layers
        return attn + mlp + self.embedding_params()

    def kv_elements_per_token_per_layer(self) -> int:
        """KV-cache elements one token stores in one layer, before TP sharding.

        GQA stores K and V for every KV head: 2 x kv_heads x head_dim. MLA stores
        the compressed latent plus the shared RoPE key: kv_lora_rank + qk_rope_head_dim.
        """
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_key_value_heads * self.head_dim

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> float:
        """KV bytes of one token over all layers of the whole model (unsharded)."""
        return self.kv_elements_per_token_per_layer() * self.num_layers * DTYPE_BYTES[kv_dtype]

    def with_weight_dtype(self, dtype: str, block_size: int = 0) -> "ModelSpec":
        """Return the model quantized to `dtype` (online quantization keeps per-tensor FP8 scales)."""
        if dtype not in DTYPE_BYTES:
            raise unknown("quantization", dtype, DTYPE_BYTES)
        if dtype == self.weight_dtype:
            return self
        return replace(self, weight_dtype=dtype, weight_block_size=block_size)


def _llama(name: str, layers: int, hidden: int, heads: int, kv_heads: int, inter: int,
           vocab: int, ctx: int) -> ModelSpec:
    return ModelSpec(name, layers, hidden, heads, kv_heads, hidden // heads, inter, vocab, ctx)


MODEL_PRESETS: dict[str, ModelSpec] = {
    "llama-2-7b": _llama("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096),
    "llama-3.1-8b": _llama("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, 131072),
    "llama-3.1-70b": _llama("llama-3.1-70b", 80, 8192, 64, 8, 28672, 128256, 131072),
    "llama-3.1-405b": _llama("llama-3.1-405b", 126, 16384, 128, 8, 53248, 128256, 131072),
    "qwen3-8b": ModelSpec("qwen3-8b", 36, 4096, 32, 8, 128, 12288, 151936, 40960),
    "qwen3-32b": ModelSpec("qwen3-32b", 64, 5120, 64, 8, 128, 25600, 151936, 40960),
    "mixtral-8x7b": ModelSpec("mixtral-8x7b", 32, 4096, 32, 8, 128, 14336, 32000, 32768,
                              num_experts=8, num_experts_per_tok=2, moe_intermediate_size=14336),
    "qwen3-30b-a3b": ModelSpec("qwen3-30b-a3b", 48, 2048, 32, 4, 128, 6144, 151936, 40960,
                               num_experts=128, num_experts_per_tok=8, moe_intermediate_size=768),
    "qwen3-235b-a22b": ModelSpec("qwen3-235b-a22b", 94, 4096, 64, 4, 128, 12288, 151936, 40960,
                                 num_experts=128, num_experts_per_tok=8, moe_intermediate_size=1536),
    "deepseek-v3": ModelSpec("deepseek-v3", 61, 7168, 128, 128, 128, 18432, 129280, 163840,
                             weight_dtype="fp8", weight_block_size=128, num_experts=256,
                             num_experts_per_tok=8, moe_intermediate_size=2048,
                             shared_expert_intermediate_size=2048, num_dense_layers=3,
                             n_group=8, topk_group=4, kv_lora_rank=512, q_lora_rank=1536,
                             qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128),
}
MODEL_PRESETS["deepseek-r1"] = replace(MODEL_PRESETS["deepseek-v3"], name="deepseek-r1")


def get_model(name_or_path: str) -> ModelSpec:
    """Resolve a preset id (case-insensitive) or a path to a Hugging Face config.json."""
    key = name_or_path.lower()
    if key in MODEL_PRESETS:
        return MODEL_PRESETS[key]
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return load_hf_config(path)
    raise unknown("model", name_or_path, MODEL_PRESETS)


def _require(cfg: dict, key: str, path: Path) -> int:
    if key not in cfg:
        raise ConfigError(f"invalid model config {path}: missing key {key!r}")
    value = cfg[key]
    if not isinstance(value, int) or value <= 0:
        raise invalid(f"model config {path} key {key!r}", value, "a positive integer")
    return value


def load_hf_config(path: str | Path) -> ModelSpec:
    """Build a `ModelSpec` from a Hugging Face `config.json`.

    Reads the Llama/Qwen/Mixtral/DeepSeek key names; a multimodal wrapper's
    `text_config` is used when present. FP8 checkpoints (a `quantization_config`
    with quant_method fp8) load with FP8 weights.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model config not found: {path}")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise not_utf8("model config", path, exc) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"invalid model config {path}: not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"invalid model config {path}: expected a JSON object")
    quant = cfg.get("quantization_config") or {}
    if isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg["text_config"], "tie_word_embeddings": cfg.get("tie_word_embeddings", False)}
    hidden = _require(cfg, "hidden_size", path)
    heads = _require(cfg, "num_attention_heads", path)
    num_experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0)
    moe_inter = int(cfg.get("moe_intermediate_size") or 0)
    if num_experts and not moe_inter:
        moe_inter = _require(cfg, "intermediate_size", path)
    shared = int(cfg.get("shared_expert_intermediate_size") or 0)
    if not shared and cfg.get("n_shared_experts"):
        shared = int(cfg["n_shared_experts"]) * moe_inter
    dtype = "fp8" if str(quant.get("quant_method", "")).lower() == "fp8" else "bf16"
    block = quant.get("weight_block_size") if dtype == "fp8" else None
    block_size = int(block[0]) if isinstance(block, list) and block else 0
    return ModelSpec(
        name=path.name.removesuffix(".json").removesuffix(".config"),
        num_layers=_require(cfg, "num_hidden_layers", path),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        intermediate_size=int(cfg.get("intermediate_size") or moe_inter),
        vocab_size=_require(cfg, "vocab_size", path),
        max_context_len=int(cfg.get("max_position_embeddings") or 4096),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        weight_dtype=dtype,
        weight_block_size=block_size,
        num_experts=num_experts,
        num_experts_per_tok=int(cfg.get("num_experts_per_tok") or 0),
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared,
        num_dense_layers=int(cfg.get("first_k_dense_replace") or 0) if num_experts else 0,
        n_group=int(cfg.get("n_group") or 0) if num_experts else 0,
        topk_group=int(cfg.get("topk_group") or 0) if num_experts else 0,
        kv_lora_rank=int(cfg.get("kv_lora_rank") or 0),
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 0),
        v_head_dim=int(cfg.get("v_head_dim") or 0),
    )
