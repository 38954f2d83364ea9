"""Resolves one server's SGLang arguments into its scheduler config and step law."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..costs.efficiency import DEFAULT_EFFICIENCY, Efficiency
from ..costs.forward import LawContext
from ..costs.params import HardwareParams, ModelParams, ParallelParams, RuntimeParams
from ..costs.step_model import StepCostModel
from ..errors import ConfigError
from ..hardware.gpus import GPUSpec, get_gpu
from ..hardware.models import ModelSpec, get_model
from .memory_plan import MemoryPlan, plan_memory, resolve_kv_dtype
from .scheduler import SchedulerConfig

QUANTIZATION_DTYPES = {"fp8": "fp8", "w8a8_fp8": "fp8", "fp4": "fp4", "modelopt_fp4": "fp4"}


@dataclass(frozen=True)
class ServerSpec:
    """Everything needed to build identical servers of one pool."""

    model: ModelSpec
    gpu: GPUSpec
    args: Any
    """The pool's `ServerArgs`."""
    memory: MemoryPlan
    scheduler: SchedulerConfig
    law: LawContext

    def cost_model(self) -> StepCostModel:
        return StepCostModel(self.law)

    @property
    def num_gpus(self) -> int:
        return self.args.tp

    def resolved(self) -> dict[str, Any]:
        """The configuration as SGLang would run it (auto values filled in)."""
        mem = self.memory
        return {
            "model": self.model.name,
            "gpu": self.gpu.name,
            "weight_dtype": self.model.weight_dtype,
            **self.args.model_dump(),
            "chunked_prefill_size": mem.chunked_prefill_size,
            "cuda_graph_max_bs": mem.cuda_graph_max_bs,
            "mem_fraction_static": mem.mem_fraction_static,
            "max_total_num_tokens": mem.max_total_num_tokens,
            "max_running_requests": mem.max_running_requests,
            "context_length": mem.context_len,
            "weight_bytes_per_gpu": mem.weight_bytes_per_gpu,
            "kv_bytes_per_token_per_gpu": mem.kv_bytes_per_token_per_gpu,
        }


def resolve_model(name: str, quantization: str | None) -> ModelSpec:
    model = get_model(name)
    if quantization is not None:
        model = model.with_weight_dtype(QUANTIZATION_DTYPES[quantization])
    return model


def build_efficiency(overrides: dict[str, float]) -> Efficiency:
    return DEFAULT_EFFICIENCY.updated(**overrides) if overrides else DEFAULT_EFFICIENCY


def build_server_spec(model_name: str, gpu_name: str, args: Any, efficiency: Efficiency) -> ServerSpec:
    """Resolve a model, a GPU and SGLang server arguments into a `ServerSpec`."""
    model = resolve_model(model_name, args.quantization)
    gpu = get_gpu(gpu_name)
    if model.weight_dtype == "fp8" and gpu.fp8_flops is None:
        raise ConfigError(f"invalid quantization fp8 on {gpu.name}: the GPU has no FP8 tensor cores")
    if model.weight_dtype == "fp4" and gpu.fp4_flops is None:
        raise ConfigError(f"invalid quantization fp4 on {gpu.name}: NVFP4 needs a Blackwell GPU")
    if args.tp > gpu.gpus_per_node:
        raise ConfigError(f"invalid tp {args.tp}: a {gpu.name} node has {gpu.gpus_per_node} GPUs "
                          "(tensor parallelism stays inside one NVLink domain)")
    memory = plan_memory(
        model, gpu, args.tp, chunked_prefill_size=args.chunked_prefill_size,
        max_prefill_tokens=args.max_prefill_tokens, cuda_graph_max_bs=args.cuda_graph_max_bs,
        mem_fraction_static=args.mem_fraction_static, max_total_tokens=args.max_total_tokens,
        max_running_requests=args.max_running_requests, context_length=args.context_length,
        kv_cache_dtype=args.kv_cache_dtype, kv_pool_tokens=args.kv_pool_tokens)
    scheduler = SchedulerConfig(
        max_total_tokens=memory.max_total_num_tokens,
        chunked_prefill_size=memory.chunked_prefill_size,
        max_prefill_tokens=args.max_prefill_tokens,
        max_running_requests=memory.max_running_requests,
        schedule_policy=args.schedule_policy,
        schedule_conservativeness=args.schedule_conservativeness,
        page_size=args.page_size,
        enable_mixed_chunk=args.enable_mixed_chunk,
        disable_radix_cache=args.disable_radix_cache,
        context_len=memory.context_len,
    )
    law = build_law_context(model, gpu, args, efficiency, memory.cuda_graph_max_bs)
    return ServerSpec(model, gpu, args, memory, scheduler, law)


def build_law_context(model: ModelSpec, gpu: GPUSpec, args: Any, efficiency: Efficiency,
                      cuda_graph_max_bs: int) -> LawContext:
    """The step law's parameters of one server (no memory check: the caller plans memory)."""
    return LawContext(
        model=ModelParams.from_spec(model, resolve_kv_dtype(args.kv_cache_dtype)),
        par=ParallelParams(tp=args.tp),
        hw=HardwareParams.from_gpu(gpu, model.weight_dtype),
        eff=efficiency,
        rt=RuntimeParams(cuda_graph_max_bs=cuda_graph_max_bs, cuda_graph=not args.disable_cuda_graph,
                         overlap=not args.disable_overlap_schedule),
    )
