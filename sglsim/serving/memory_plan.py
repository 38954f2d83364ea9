"""SGLang's memory plan: automatic knobs, weights per GPU, and the KV-pool size.

Mirrors SGLang v0.5 `server_args._handle_gpu_memory_settings` and
`model_runner.profile_max_num_token`:

- chunked_prefill_size and cuda_graph_max_bs default by GPU memory tier;
- mem_fraction_static defaults to (memory - reserve) / memory, rounded to
  3 decimals, where the reserve (MB) is 512 + 1.5 x max(chunk, 2048) +
  2 x cuda_graph_max_bs + tp x pp / 8 x 1024, and at least 10 GB on GPUs
  above 60 GB;
- KV tokens = (memory x mem_fraction_static - weights per GPU) / KV bytes
  per token per GPU;
- `max_total_tokens` can only lower the pool (SGLang takes the minimum);
  `kv_pool_tokens` is a simulation-only override that sets it outright;
- max_running_requests defaults to clamp(KV tokens / context x 512, 2048, 4096),
  capped at half the KV tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..hardware.gpus import GPUSpec
from ..hardware.models import DTYPE_BYTES, ModelSpec

MB = 1024 * 1024

# (memory below this many MB, chunked_prefill_size, cuda_graph_max_bs, cuda_graph_max_bs when tp >= 4)
_MEMORY_TIERS = (
    (20 * 1024, 2048, 8, 8),
    (35 * 1024, 2048, 24, 80),
    (60 * 1024, 4096, 32, 160),
    (90 * 1024, 8192, 256, 512),
    (160 * 1024, 8192, 256, 512),
    (float("inf"), 16384, 512, 512),
)


@dataclass(frozen=True)
class MemoryPlan:
    """How one server's GPU memory is split, with the knobs derived from it."""

    gpu_memory_bytes: float
    weight_bytes_per_gpu: float
    mem_fraction_static: float
    reserve_bytes: float
    kv_bytes_per_token_per_gpu: float
    max_total_num_tokens: int
    chunked_prefill_size: int | None
    cuda_graph_max_bs: int
    max_running_requests: int
    context_len: int
    tp: int

    @property
    def kv_pool_bytes(self) -> float:
        return self.max_total_num_tokens * self.kv_bytes_per_token_per_gpu

    def explain(self) -> str:
        """A human-readable breakdown, as printed by `--explain-memory`."""
        gb = 1e9
        rows = [
            ("GPU memory", f"{self.gpu_memory_bytes / gb:.1f} GB"),
            ("mem_fraction_static", f"{self.mem_fraction_static:.3f}"),
            ("static budget", f"{self.gpu_memory_bytes * self.mem_fraction_static / gb:.1f} GB"),
            ("weights per GPU", f"{self.weight_bytes_per_gpu / gb:.2f} GB (TP {self.tp})"),
            ("KV pool per GPU", f"{self.kv_pool_bytes / gb:.2f} GB"),
            ("KV bytes per token per GPU", f"{self.kv_bytes_per_token_per_gpu:,.0f}"),
            ("max_total_num_tokens", f"{self.max_total_num_tokens:,}"),
            ("reserved (activations, graphs)", f"{self.reserve_bytes / gb:.1f} GB"),
            ("chunked_prefill_size", str(self.chunked_prefill_size or "off")),
            ("cuda_graph_max_bs", str(self.cuda_graph_max_bs)),
            ("max_running_requests", str(self.max_running_requests)),
            ("context length", f"{self.context_len:,}"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def memory_tier(gpu: GPUSpec) -> tuple[int, int, int]:
    """(chunked_prefill_size, cuda_graph_max_bs, cuda_graph_max_bs at tp >= 4) for a GPU."""
    mem_mb = gpu.mem_capacity_bytes / MB
    for limit, chunk, graph_bs, graph_bs_tp4 in _MEMORY_TIERS:
        if mem_mb < limit:
            return chunk, graph_bs, graph_bs_tp4
    raise RuntimeError("memory tiers must end with an unbounded tier")


def weight_bytes_per_gpu(model: ModelSpec, tp: int) -> float:
    """Weights one GPU of a TP group holds.

    Everything is split by TP except KV projections when kv_heads < TP (each
    GPU keeps a whole KV head) and the norms (replicated).
    """
    per_param = model.weight_bytes_per_param
    total = model.num_params() * per_param
    if not model.is_mla and model.num_key_value_heads < tp:
        kv_proj = 2 * model.hidden_size * model.num_key_value_heads * model.head_dim * model.num_layers
        replicated = kv_proj * per_param * (tp / model.num_key_value_heads - 1)
        total += replicated
    return total / tp


def kv_bytes_per_token_per_gpu(model: ModelSpec, tp: int, kv_dtype: str) -> float:
    """KV bytes one token occupies on one GPU: heads split by TP, replicated below one head.

    MLA caches one latent per token that every TP rank keeps in full.
    """
    dtype_bytes = DTYPE_BYTES[kv_dtype]
    if model.is_mla:
        return (model.kv_lora_rank + model.qk_rope_head_dim) * model.num_layers * dtype_bytes
    heads = max(model.num_key_value_heads / tp, 1)
    return 2 * heads * model.head_dim * model.num_layers * dtype_bytes


def resolve_kv_dtype(kv_cache_dtype: str) -> str:
    return "fp8" if kv_cache_dtype.startswith("fp8") else "bf16"


def reserve_memory_mb(gpu: GPUSpec, chunk: int | None, max_prefill_tokens: int, cuda_graph_max_bs: int,
                      tp: int) -> float:
    """Memory SGLang keeps outside the static pool (activations, graphs), MB.

    512 + 1.5 x max(chunk, 2048) + 2 x cuda_graph_max_bs + tp / 8 x 1024,
    and at least 10 GB on GPUs above 60 GB; without chunking the prefill
    token budget takes the chunk's place.
    """
    tokens = chunk if chunk is not None else max_prefill_tokens
    reserve_mb = 512 + 1.5 * max(tokens, 2048) + 2 * cuda_graph_max_bs + tp / 8 * 1024
    if gpu.mem_capacity_bytes / MB > 60 * 1024:
        reserve_mb = max(reserve_mb, 10 * 1024)
    return reserve_mb


def default_mem_fraction_static(gpu: GPUSpec, reserve_mb: float) -> float:
    """SGLang's default mem_fraction_static: (memory - reserve) / memory, rounded to 3 decimals."""
    mem_mb = gpu.mem_capacity_bytes / MB
    return round((mem_mb - reserve_mb) / mem_mb, 3)


def plan_memory(model: ModelSpec, gpu: GPUSpec, tp: int, *, chunked_prefill_size: int | None = None,
                max_prefill_tokens: int = 16384, cuda_graph_max_bs: int | None = None,
                mem_fraction_static: float | None = None, max_total_tokens: int | None = None,
                max_running_requests: int | None = None, context_length: int | None = None,
                kv_cache_dtype: str = "auto", kv_pool_tokens: int | None = None) -> MemoryPlan:
    """Resolve SGLang's memory-dependent defaults and size the KV pool of one server."""
    auto_chunk, graph_bs, graph_bs_tp4 = memory_tier(gpu)
    if chunked_prefill_size is None:
        chunk: int | None = auto_chunk
    else:
        chunk = None if chunked_prefill_size == -1 else chunked_prefill_size
    graph = cuda_graph_max_bs if cuda_graph_max_bs is not None else (graph_bs_tp4 if tp >= 4 else graph_bs)
    reserve_mb = reserve_memory_mb(gpu, chunk, max_prefill_tokens, graph, tp)
    fraction = mem_fraction_static if mem_fraction_static is not None else default_mem_fraction_static(gpu, reserve_mb)
    weights = weight_bytes_per_gpu(model, tp)
    kv_dtype = resolve_kv_dtype(kv_cache_dtype)
    kv_per_token = kv_bytes_per_token_per_gpu(model, tp, kv_dtype)
    static_bytes = gpu.mem_capacity_bytes * fraction
    rest = static_bytes - weights
    if rest < kv_per_token:
        raise ConfigError(
            f"model {model.name} does not fit on {tp} x {gpu.name}: weights need {weights / 1e9:.1f} GB per GPU, "
            f"mem_fraction_static {fraction:.3f} leaves {static_bytes / 1e9:.1f} GB of "
            f"{gpu.mem_capacity_bytes / 1e9:.1f} GB; use more GPUs (--tp), a smaller dtype or a larger GPU")
    tokens = int(rest // kv_per_token)
    if max_total_tokens is not None:
        tokens = min(tokens, max_total_tokens)
    if kv_pool_tokens is not None:
        tokens = kv_pool_tokens
    context = context_length or model.max_context_len
    if max_running_requests is None:
        running = min(max(int(tokens / context * 512), 2048), 4096)
        running = max(min(running, tokens // 2), 1)
    else:
        running = max_running_requests
    return MemoryPlan(gpu.mem_capacity_bytes, weights, fraction, reserve_mb * MB, kv_per_token, tokens,
                      chunk, graph, running, context, tp)
