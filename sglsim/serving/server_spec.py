"""Resolves one server's SGLang arguments into its parallel layout, scheduler config and step law,
and builds the simulated servers of a pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..costs.efficiency import DEFAULT_EFFICIENCY, Efficiency, efficiency_for_gpu
from ..costs.forward import LawContext
from ..costs.params import HardwareParams, ModelParams, RuntimeParams
from ..costs.step_model import StepCostModel
from ..errors import ConfigError
from ..hardware.gpus import GPUSpec, get_gpu
from ..hardware.models import ModelSpec, get_model
from .memory_plan import MemoryPlan, plan_memory, resolve_kv_dtype
from .parallel import ParallelConfig, resolve_parallel
from .scheduler import SchedulerConfig

QUANTIZATION_DTYPES = {"fp8": "fp8", "w8a8_fp8": "fp8", "modelopt_fp8": "fp8", "fp4": "fp4",
                       "modelopt_fp4": "fp4"}


@dataclass(frozen=True)
class ServerSpec:
    """Everything needed to build identical servers of one pool."""

    model: ModelSpec
    gpu: GPUSpec
    args: Any
    """The pool's `ServerArgs`."""
    memory: MemoryPlan
    scheduler: SchedulerConfig
    """Config of each scheduler: one per DP rank under DP attention, one per DP copy otherwise."""
    law: LawContext
    parallel: ParallelConfig = ParallelConfig()

    def cost_model(self) -> StepCostModel:
        return StepCostModel(self.law)

    @property
    def num_gpus(self) -> int:
        """GPUs of one server (one replica)."""
        return self.parallel.gpus_per_server

    def resolved(self) -> dict[str, Any]:
        """The configuration as SGLang would run it (auto values filled in)."""
        mem = self.memory
        par = self.parallel
        return {
            "model": self.model.name,
            "gpu": self.gpu.name,
            "weight_dtype": self.model.weight_dtype,
            **self.args.model_dump(),
            "ep": par.ep,
            "enable_dp_attention": par.dp_attention,
            "attn_tp": par.attn_tp,
            "moe_tp": par.moe_tp,
            "gpus_per_server": par.gpus_per_server,
            "chunked_prefill_size": mem.chunked_prefill_size,
            "cuda_graph_max_bs": mem.cuda_graph_max_bs,
            "mem_fraction_static": mem.mem_fraction_static,
            "max_total_num_tokens": mem.max_total_num_tokens,
            "max_running_requests": mem.max_running_requests,
            "schedule_conservativeness": mem.schedule_conservativeness,
            "context_length": mem.context_len,
            "weight_bytes_per_gpu": mem.weight_bytes_per_gpu,
            "kv_bytes_per_token_per_gpu": mem.kv_bytes_per_token_per_gpu,
        }


def resolve_model(name: str, quantization: str | None) -> ModelSpec:
    model = get_model(name)
    if quantization is not None:
        model = model.with_weight_dtype(QUANTIZATION_DTYPES[quantization])
    return model


def build_efficiency(overrides: Mapping[str, float] | None = None, gpu_name: str | None = None,
                     weight_dtype: str = "bf16") -> Efficiency:
    """Return the fitted constants of `gpu_name` for `weight_dtype` weights, with user overrides on top.

    Without a GPU name the base is `DEFAULT_EFFICIENCY`. Overrides use the
    field names of `Efficiency` (a scenario's `efficiency:` mapping).
    """
    base = DEFAULT_EFFICIENCY if gpu_name is None else efficiency_for_gpu(gpu_name, weight_dtype)
    return base.updated(**overrides) if overrides else base


def _check_precision(model: ModelSpec, gpu: GPUSpec) -> None:
    if model.weight_dtype == "fp8" and gpu.fp8_flops is None:
        raise ConfigError(f"invalid quantization fp8 on {gpu.name}: the GPU has no FP8 tensor cores")
    if model.weight_dtype == "fp4" and gpu.fp4_flops is None:
        raise ConfigError(f"invalid quantization fp4 on {gpu.name}: NVFP4 needs a Blackwell GPU")


def build_server_spec(model_name: str, gpu_name: str, args: Any,
                      efficiency: Efficiency | Mapping[str, float] | None = None) -> ServerSpec:
    """Resolve a model, a GPU and SGLang server arguments into a `ServerSpec`.

    `efficiency` is either complete constants, used as given, or a mapping of
    overrides applied on top of the GPU's preset for the model's weight dtype
    (None: the preset alone).
    """
    model = resolve_model(model_name, args.quantization)
    gpu = get_gpu(gpu_name)
    _check_precision(model, gpu)
    parallel = resolve_parallel(args, model, gpu)
    memory = plan_memory(
        model, gpu, parallel, chunked_prefill_size=args.chunked_prefill_size,
        max_prefill_tokens=args.max_prefill_tokens, cuda_graph_max_bs=args.cuda_graph_max_bs,
        mem_fraction_static=args.mem_fraction_static, max_total_tokens=args.max_total_tokens,
        max_running_requests=args.max_running_requests, context_length=args.context_length,
        kv_cache_dtype=args.kv_cache_dtype, kv_pool_tokens=args.kv_pool_tokens,
        schedule_conservativeness=args.schedule_conservativeness, page_size=args.page_size)
    scheduler = SchedulerConfig(
        max_total_tokens=memory.max_total_num_tokens,
        chunked_prefill_size=memory.chunked_prefill_size,
        max_prefill_tokens=args.max_prefill_tokens,
        max_running_requests=memory.max_running_requests,
        schedule_policy=args.schedule_policy,
        schedule_conservativeness=memory.schedule_conservativeness,
        page_size=args.page_size,
        enable_mixed_chunk=args.enable_mixed_chunk,
        disable_radix_cache=args.disable_radix_cache,
        context_len=memory.context_len,
    )
    law = build_law_context(model, gpu, args, parallel, efficiency, memory.cuda_graph_max_bs)
    return ServerSpec(model, gpu, args, memory, scheduler, law, parallel)


def build_law_context(model: ModelSpec, gpu: GPUSpec, args: Any, parallel: ParallelConfig,
                      efficiency: Efficiency | Mapping[str, float] | None, cuda_graph_max_bs: int) -> LawContext:
    """The step law's parameters of one server (no memory check: the caller plans memory)."""
    # SGLang runs DeepEP's normal kernels eagerly (no CUDA graph) and turns the overlap
    # scheduler off under pipeline parallelism.
    cuda_graph = not args.disable_cuda_graph and not (parallel.deepep and parallel.deepep_mode == "normal")
    overlap = not args.disable_overlap_schedule and parallel.pp == 1
    if not isinstance(efficiency, Efficiency):
        efficiency = build_efficiency(efficiency, gpu.name, model.weight_dtype)
    return LawContext(
        model=ModelParams.from_spec(model, resolve_kv_dtype(args.kv_cache_dtype)),
        par=parallel.law_params(),
        hw=HardwareParams.from_gpu(gpu, model.weight_dtype),
        eff=efficiency,
        rt=RuntimeParams(cuda_graph_max_bs=cuda_graph_max_bs, cuda_graph=cuda_graph, overlap=overlap),
    )


def build_servers(spec: ServerSpec, replicas: int, engine: Any, observer: Any, pool: str = "default",
                  first_worker_id: int = 0) -> tuple[list[Any], list[Any]]:
    """Build the simulated servers of a pool and the routing targets they expose.

    Returns (servers, targets). Without DP attention every DP copy of every
    replica is an independent `Worker` (its own scheduler and step law), and
    each is its own routing target. With DP attention each replica is one
    `DPAttentionServer` whose ranks are the routing targets (SGLang's router
    picks the DP rank with --dp-aware). Worker ids number the targets from
    `first_worker_id`.
    """
    from .dp_server import DPAttentionServer
    from .worker import Worker

    cost = spec.cost_model()
    servers: list[Any] = []
    targets: list[Any] = []
    next_id = first_worker_id
    for _ in range(replicas):
        if spec.parallel.dp_attention:
            server = DPAttentionServer(next_id, spec.parallel.dp, spec.scheduler, cost, engine, observer, pool)
            servers.append(server)
            targets.extend(server.ranks)
            next_id += spec.parallel.dp
            continue
        for _ in range(spec.parallel.dp):
            worker = Worker(next_id, spec.scheduler, cost, engine, observer, pool)
            servers.append(worker)
            targets.append(worker)
            next_id += 1
    return servers, targets

