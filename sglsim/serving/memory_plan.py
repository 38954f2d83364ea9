"""SGLang's memory plan: automatic knobs, weights per GPU, and the KV-pool size.

Mirrors SGLang v0.5 `server_args._handle_gpu_memory_settings`,
`_handle_data_parallelism` and `model_runner.profile_max_num_token`:

- chunked_prefill_size and cuda_graph_max_bs default by GPU memory tier;
- mem_fraction_static defaults to (memory - reserve) / memory, rounded to
  3 decimals, where the reserve (MB) is 512 + 1.5 x max(chunk, 2048) +
  2 x cuda_graph_max_bs + tp x pp / 8 x 1024, plus 3 x cuda_graph_max_bs x dp
  under DP attention (and 1.5 x cuda_graph_max_bs x dp more above a graph
  batch of 300), and at least 10 GB on GPUs above 60 GB;
- KV tokens per scheduler = (memory x mem_fraction_static - weights per GPU)
  / KV bytes per token per GPU;
- DP attention divides chunked_prefill_size and a user's max_running_requests
  by dp (each rank has its own scheduler and KV pool) and scales
  schedule_conservativeness by 0.3;
- `max_total_tokens` can only lower the pool (SGLang takes the minimum);
  `kv_pool_tokens` is a simulation-only override that sets it outright;
- the pool is rounded down to whole pages, and chunked_prefill_size must be
  a multiple of page_size;
- max_running_requests defaults to clamp(KV tokens / context x 512, 2048, 4096),
  capped at half the KV tokens.

Weights per GPU follow SGLang's sharding: attention heads split by attention
TP (MLA's down projections and KV projections below one head per GPU are
replicated), dense MLPs by their TP degree, routed experts by EP and moe_tp,
shared experts by shared_tp; embeddings, LM head, router and norms stay in
BF16 when the linear layers are quantized. A pipeline stage holds
ceil(layers / pp) layers and one of the two vocabulary tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..hardware.gpus import GPUSpec
from ..hardware.models import DTYPE_BYTES, ModelSpec
from .parallel import DEEPEP_MAX_DISPATCH_TOKENS_PER_RANK, ParallelConfig

MB = 1024 * 1024
GB = 1e9

# (memory below this many MB, chunked_prefill_size, cuda_graph_max_bs, cuda_graph_max_bs when tp >= 4)
_MEMORY_TIERS = (
    (20 * 1024, 2048, 8, 8),
    (35 * 1024, 2048, 24, 80),
    (60 * 1024, 4096, 32, 160),
    (90 * 1024, 8192, 256, 512),
    (160 * 1024, 8192, 256, 512),
    (float("inf"), 16384, 512, 512),
)
DP_ATTENTION_CONSERVATIVENESS = 0.3
"""SGLang multiplies schedule_conservativeness by this under DP attention."""


@dataclass(frozen=True)
class WeightBreakdown:
    """Weight bytes one GPU holds, by part of the model."""

    attention: float
    dense_mlp: float
    routed_experts: float
    shared_experts: float
    router: float
    embeddings: float
    norms: float

    @property
    def total(self) -> float:
        return (self.attention + self.dense_mlp + self.routed_experts + self.shared_experts + self.router
                + self.embeddings + self.norms)


@dataclass(frozen=True)
class MemoryPlan:
    """The split of one server's GPU memory, with the knobs derived from it.

    Token counts are per scheduler: under DP attention every rank has its own
    KV pool of max_total_num_tokens tokens and its own request cap.
    """

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
    parallel: ParallelConfig | None = None
    weights: WeightBreakdown | None = None
    model_weight_bytes: float = 0.0
    schedule_conservativeness: float = 1.0

    @property
    def kv_pool_bytes(self) -> float:
        return self.max_total_num_tokens * self.kv_bytes_per_token_per_gpu

    def explain(self) -> str:
        """Format the plan as the human-readable breakdown `--explain-memory` prints."""
        par = self.parallel or ParallelConfig(tp=self.tp)
        rows = [
            ("parallel layout", par.describe()),
            ("GPUs per server", str(par.gpus_per_server)),
            ("GPU memory", f"{self.gpu_memory_bytes / GB:.1f} GB"),
            ("mem_fraction_static", f"{self.mem_fraction_static:.3f}"),
            ("static budget", f"{self.gpu_memory_bytes * self.mem_fraction_static / GB:.1f} GB"),
            ("model weights (all GPUs)", f"{self.model_weight_bytes / GB:.1f} GB"),
            ("weights per GPU", f"{self.weight_bytes_per_gpu / GB:.2f} GB"),
        ]
        if self.weights is not None:
            w = self.weights
            for label, value in (("attention", w.attention), ("dense MLP", w.dense_mlp),
                                 ("routed experts", w.routed_experts), ("shared experts", w.shared_experts),
                                 ("router", w.router), ("embeddings + LM head", w.embeddings),
                                 ("norms", w.norms)):
                if value:
                    rows.append((f"  {label}", f"{value / GB:.2f} GB"))
        per_scheduler = " per DP rank" if par.dp_attention else ""
        rows += [
            ("KV pool per GPU", f"{self.kv_pool_bytes / GB:.2f} GB"),
            ("KV bytes per token per GPU", f"{self.kv_bytes_per_token_per_gpu:,.0f}"),
            (f"max_total_num_tokens{per_scheduler}", f"{self.max_total_num_tokens:,}"),
            ("reserved (activations, graphs)", f"{self.reserve_bytes / GB:.1f} GB"),
            (f"chunked_prefill_size{per_scheduler}", str(self.chunked_prefill_size or "off")),
            ("cuda_graph_max_bs", str(self.cuda_graph_max_bs)),
            (f"max_running_requests{per_scheduler}", str(self.max_running_requests)),
            ("schedule_conservativeness", f"{self.schedule_conservativeness:g}"),
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


def _layout(parallel: ParallelConfig | int) -> ParallelConfig:
    return ParallelConfig(tp=parallel) if isinstance(parallel, int) else parallel


def _attention_bytes(model: ModelSpec, par: ParallelConfig) -> float:
    """Attention weights of one layer on one GPU."""
    wb = model.weight_bytes_per_param
    h = model.hidden_size
    if model.is_mla:
        heads = model.num_attention_heads
        qk_dim = model.qk_nope_head_dim + model.qk_rope_head_dim
        q_in = model.q_lora_rank or h
        replicated = h * (model.kv_lora_rank + model.qk_rope_head_dim) + (h * model.q_lora_rank if model.q_lora_rank else 0)
        split = (q_in * heads * qk_dim + model.kv_lora_rank * heads * (model.qk_nope_head_dim + model.v_head_dim)
                 + heads * model.v_head_dim * h)
        return (replicated + split / par.attn_tp) * wb
    q = h * model.num_attention_heads * model.head_dim
    o = q
    kv = 2 * h * model.num_key_value_heads * model.head_dim
    kv_per_gpu = kv / min(par.attn_tp, model.num_key_value_heads)
    return ((q + o) / par.attn_tp + kv_per_gpu) * wb


def weight_breakdown(model: ModelSpec, parallel: ParallelConfig | int) -> WeightBreakdown:
    """Weight bytes of the largest pipeline stage on one GPU, by part."""
    par = _layout(parallel)
    wb = model.weight_bytes_per_param
    raw = model.unquantized_bytes_per_param
    stage = math.ceil(model.num_layers / par.pp) / model.num_layers
    attention = _attention_bytes(model, par) * model.num_layers * stage
    dense = model.dense_mlp_params() * model.num_mlp_dense_layers * wb / par.dense_tp * stage
    routed = shared = router = 0.0
    if model.is_moe:
        experts_per_gpu = (model.num_experts + par.num_redundant_experts) / par.ep
        moe_layers = model.num_moe_layers * stage
        routed = experts_per_gpu * model.expert_params() * wb / par.moe_tp * moe_layers
        shared = model.shared_expert_params() * wb / par.shared_tp * moe_layers
        router = model.router_params() * raw * moe_layers
    table = model.vocab_size * model.hidden_size * raw
    # SGLang replicates the embedding under DP attention; the LM head follows --enable-dp-lm-head.
    embed = table if par.dp_attention else table / par.tp
    head_tp = par.attn_tp if par.dp_lm_head else par.tp
    head = 0.0 if model.tie_word_embeddings else table / head_tp
    embeddings = max(embed, head) if par.pp > 1 else embed + head
    norms = (2 * model.num_layers * stage + 1) * model.hidden_size * raw
    return WeightBreakdown(attention, dense, routed, shared, router, embeddings, norms)


def weight_bytes_per_gpu(model: ModelSpec, parallel: ParallelConfig | int) -> float:
    """Return the weight bytes on one GPU of a server (its largest pipeline stage)."""
    return weight_breakdown(model, parallel).total


def model_weight_bytes(model: ModelSpec) -> float:
    """Weights of the whole model, once (quantized linear layers, BF16 elsewhere)."""
    return weight_breakdown(model, ParallelConfig()).total


def kv_bytes_per_token_per_gpu(model: ModelSpec, parallel: ParallelConfig | int, kv_dtype: str) -> float:
    """KV bytes one token occupies on one GPU: heads split by attention TP (one head at least),
    layers split by PP. MLA caches one latent per token that every GPU keeps in full."""
    par = _layout(parallel)
    dtype_bytes = DTYPE_BYTES[kv_dtype]
    layers = math.ceil(model.num_layers / par.pp)
    if model.is_mla:
        return (model.kv_lora_rank + model.qk_rope_head_dim) * layers * dtype_bytes
    heads = max(model.num_key_value_heads / par.attn_tp, 1)
    return 2 * heads * model.head_dim * layers * dtype_bytes


def resolve_kv_dtype(kv_cache_dtype: str) -> str:
    return "fp8" if kv_cache_dtype.startswith("fp8") else "bf16"


def reserve_mb(gpu: GPUSpec, par: ParallelConfig, chunk: int | None, max_prefill_tokens: int,
               graph_bs: int) -> float:
    """SGLang's memory reserve for activations and CUDA graphs, MB."""
    reserve = 512 + 1.5 * max(chunk if chunk is not None else max_prefill_tokens, 2048) + 2 * graph_bs
    reserve += par.tp * par.pp / 8 * 1024
    if par.dp_attention:
        reserve += graph_bs * par.dp * 3
        if graph_bs > 300:
            reserve += graph_bs * par.dp * 1.5
    if gpu.mem_capacity_bytes / MB > 60 * 1024:
        reserve = max(reserve, 10 * 1024)
    return reserve


def _check_fits(model: ModelSpec, gpu: GPUSpec, par: ParallelConfig, weights: float, fraction: float,
                kv_per_token: float) -> None:
    static_bytes = gpu.mem_capacity_bytes * fraction
    if static_bytes - weights >= kv_per_token:
        return
    total = model_weight_bytes(model)
    gpus = par.gpus_per_scheduler
    raise ConfigError(
        f"model {model.name} does not fit on {gpus} x {gpu.name} ({par.describe()}): its weights take "
        f"{total / GB:.0f} GB ({_gpu_count(gpus)} {gpus * gpu.mem_capacity_bytes / GB:.0f} GB in all) and "
        f"{weights / GB:.1f} GB per GPU in this layout, but mem_fraction_static {fraction:.3f} leaves "
        f"{static_bytes / GB:.1f} GB per GPU for weights and KV cache; use more GPUs (--tp, --pp, --ep), "
        "a smaller dtype (--quantization) or a larger GPU")


def _gpu_count(gpus: int) -> str:
    return "the GPU has" if gpus == 1 else f"the {gpus} GPUs have"


def plan_memory(model: ModelSpec, gpu: GPUSpec, parallel: ParallelConfig | int, *,
                chunked_prefill_size: int | None = None, max_prefill_tokens: int = 16384,
                cuda_graph_max_bs: int | None = None, mem_fraction_static: float | None = None,
                max_total_tokens: int | None = None, max_running_requests: int | None = None,
                context_length: int | None = None, kv_cache_dtype: str = "auto",
                kv_pool_tokens: int | None = None, schedule_conservativeness: float = 1.0,
                page_size: int = 1) -> MemoryPlan:
    """Resolve SGLang's memory-dependent defaults and size the KV pool of each scheduler."""
    par = _layout(parallel)
    auto_chunk, graph_bs, graph_bs_tp4 = memory_tier(gpu)
    if chunked_prefill_size is None:
        chunk: int | None = auto_chunk
    else:
        chunk = None if chunked_prefill_size == -1 else chunked_prefill_size
    if chunk is not None and chunk % page_size:
        raise ConfigError(f"invalid page_size {page_size}: SGLang needs chunked_prefill_size {chunk} to be a "
                          "multiple of it; set --chunked-prefill-size to a multiple of the page size")
    graph = cuda_graph_max_bs
    if graph is None:
        graph = graph_bs_tp4 if par.tp >= 4 else graph_bs
    if par.deepep_low_latency_decode and cuda_graph_max_bs is None:
        # NOTE: SGLang itself fails to capture larger graphs here unless --cuda-graph-max-bs is lowered;
        # sglsim lowers the automatic value instead of rejecting the default configuration.
        graph = min(graph, _deepep_request_cap(par))
    reserve = reserve_mb(gpu, par, chunk, max_prefill_tokens, graph)
    mem_mb = gpu.mem_capacity_bytes / MB
    fraction = mem_fraction_static if mem_fraction_static is not None else round((mem_mb - reserve) / mem_mb, 3)
    if fraction <= 0:
        raise ConfigError(
            f"invalid mem_fraction_static {fraction:.3f}: SGLang's automatic rule reserves {reserve * MB / GB:.1f} GB "
            f"of a {gpu.mem_capacity_bytes / GB:.1f} GB GPU for activations and CUDA graphs of this layout "
            f"({par.describe()}); set --mem-fraction-static (for example 0.8)")
    breakdown = weight_breakdown(model, par)
    weights = breakdown.total
    kv_per_token = kv_bytes_per_token_per_gpu(model, par, resolve_kv_dtype(kv_cache_dtype))
    _check_fits(model, gpu, par, weights, fraction, kv_per_token)
    tokens = int((gpu.mem_capacity_bytes * fraction - weights) // kv_per_token)
    if max_total_tokens is not None:
        tokens = min(tokens, max_total_tokens)
    if kv_pool_tokens is not None:
        tokens = kv_pool_tokens
    if tokens // page_size == 0:
        raise ConfigError(f"invalid page_size {page_size}: the KV pool of {tokens:,} tokens contains no whole page; "
                          "use a smaller page or a larger KV pool")
    tokens = tokens // page_size * page_size  # SGLang keeps whole pages only
    if par.dp_attention and chunk is not None:
        chunk = max(chunk // par.dp, 1)
    if context_length is not None and context_length > model.max_context_len:
        raise ConfigError(
            f"invalid context_length {context_length}: {model.name} has a context window of {model.max_context_len} "
            "tokens; SGLang rejects a longer one unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN is set, so give "
            "a model config with a larger max_position_embeddings instead")
    context = context_length or model.max_context_len
    running = _max_running_requests(par, tokens, context, max_running_requests)
    conservativeness = schedule_conservativeness * (DP_ATTENTION_CONSERVATIVENESS if par.dp_attention else 1.0)
    return MemoryPlan(gpu.mem_capacity_bytes, weights, fraction, reserve * MB, kv_per_token, tokens,
                      chunk, graph, running, context, par.tp, par, breakdown, model_weight_bytes(model),
                      conservativeness)


def _max_running_requests(par: ParallelConfig, tokens: int, context: int, requested: int | None) -> int:
    """Request cap of one scheduler (one DP rank under DP attention)."""
    cap = _deepep_request_cap(par) if par.deepep_low_latency_decode else None
    if requested is None:
        running = min(max(int(tokens / context * 512), 2048), 4096)
        running = max(min(running, tokens // 2), 1)
        return min(running, cap) if cap is not None else running
    per_scheduler = max(requested // par.dp, 1) if par.dp_attention else requested
    if cap is not None and per_scheduler > cap:
        raise ConfigError(
            f"invalid max_running_requests {requested}: DeepEP low-latency kernels dispatch at most "
            f"{DEEPEP_MAX_DISPATCH_TOKENS_PER_RANK} tokens per GPU, so at most {cap} running requests per "
            "scheduler; use --deepep-mode normal or a smaller cap")
    return per_scheduler


def _deepep_request_cap(par: ParallelConfig) -> int:
    """Decode batch one scheduler may run through DeepEP's low-latency kernels: its tokens are
    split over the attention TP group before dispatch."""
    return DEEPEP_MAX_DISPATCH_TOKENS_PER_RANK * par.attn_tp
