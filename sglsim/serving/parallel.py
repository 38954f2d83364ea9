"""SGLang's parallel layout of one server, resolved and checked from its server arguments.

A server launched with `--tp T --dp D --ep E --pp P --enable-dp-attention`
uses T x P GPUs, and its D attention ranks share the T GPUs of each stage.
Without DP attention it uses D x T x P GPUs: D independent copies of a TP-T
group behind SGLang's data-parallel controller. The rules mirror SGLang v0.5
`server_args.py`: DP attention needs tp % dp == 0 and is switched off when
dp == 1; DeepEP forces ep = tp; moe_dense_tp_size accepts only 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..costs.params import ParallelParams
from ..errors import ConfigError
from ..hardware.gpus import GPUSpec
from ..hardware.models import ModelSpec

DEEPEP_MAX_DISPATCH_TOKENS_PER_RANK = 128
"""SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK default: DeepEP low-latency kernels take at most
this many tokens per rank and call; SGLang fails on larger decode batches."""


@dataclass(frozen=True)
class ParallelConfig:
    """The resolved parallel layout of one server (one replica)."""

    tp: int = 1
    dp: int = 1
    ep: int = 1
    pp: int = 1
    dp_attention: bool = False
    moe_a2a_backend: str = "none"
    deepep_mode: str = "auto"
    two_batch_overlap: bool = False
    num_redundant_experts: int = 0
    moe_dense_tp_size: int | None = None
    dp_lm_head: bool = False
    eplb: bool = False

    @property
    def attn_tp(self) -> int:
        """GPUs that split one DP rank's attention heads."""
        return self.tp // self.dp if self.dp_attention else self.tp

    @property
    def moe_tp(self) -> int:
        """GPUs that split one routed expert."""
        return self.tp // self.ep

    @property
    def dense_tp(self) -> int:
        return self.moe_dense_tp_size if self.moe_dense_tp_size is not None else self.tp

    @property
    def shared_tp(self) -> int:
        """GPUs that split the shared experts (SGLang replicates them under DeepEP)."""
        return 1 if self.deepep else self.tp

    @property
    def deepep(self) -> bool:
        return self.moe_a2a_backend == "deepep"

    @property
    def deepep_low_latency_decode(self) -> bool:
        """Whether decode batches go through DeepEP's low-latency kernels (and their token cap)."""
        return self.deepep and self.deepep_mode != "normal"

    @property
    def num_schedulers(self) -> int:
        """Schedulers (KV pools) of one server: one per DP rank or per DP copy."""
        return self.dp

    @property
    def gpus_per_server(self) -> int:
        """GPUs of one server: tp x pp, times dp without DP attention."""
        copies = 1 if self.dp_attention else self.dp
        return self.tp * self.pp * copies

    @property
    def gpus_per_scheduler(self) -> int:
        """GPUs behind one scheduler's law: the TP x PP group (shared by all ranks under DP attention)."""
        return self.tp * self.pp

    def law_params(self) -> ParallelParams:
        """Return the cost-law view of this layout."""
        return ParallelParams(
            tp=self.tp, attn_dp=self.dp if self.dp_attention else 1, ep=self.ep, pp=self.pp,
            dense_tp=self.dense_tp, num_redundant_experts=self.num_redundant_experts,
            dp_attention=self.dp_attention, moe_a2a=self.moe_a2a_backend, deepep_mode=self.deepep_mode,
            two_batch_overlap=self.two_batch_overlap, dp_lm_head=self.dp_lm_head, eplb=self.eplb)

    def describe(self) -> str:
        """Describe the layout in one line, such as 'TP 8, DP-attention 8 (attn TP 1), EP 8, PP 1'."""
        dp = f"DP-attention {self.dp} (attn TP {self.attn_tp})" if self.dp_attention else f"DP {self.dp}"
        extra = f", {self.moe_a2a_backend} {self.deepep_mode}" if self.deepep else ""
        return f"TP {self.tp}, {dp}, EP {self.ep}, PP {self.pp}{extra}"


def _fail(field: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"invalid {field} {value!r}: {allowed}")


def _check_heads(tp: int, attn_tp: int, model: ModelSpec) -> None:
    """SGLang's attention layers split query heads evenly over the attention TP group, and KV
    heads either evenly or, when fewer than the group, replicated evenly (MLA has no KV heads)."""
    heads = model.num_attention_heads
    if heads % attn_tp:
        raise _fail("tp", tp, f"the {heads} attention heads of {model.name} must split evenly over the "
                              f"attention TP size {attn_tp}")
    kv = model.num_key_value_heads
    if not model.is_mla and (kv % attn_tp if kv >= attn_tp else attn_tp % kv):
        raise _fail("tp", tp, f"the {kv} KV heads of {model.name} must split evenly over the attention "
                              f"TP size {attn_tp}, or {attn_tp} be a multiple of {kv}")


def resolve_parallel(args: object, model: ModelSpec, gpu: GPUSpec) -> ParallelConfig:
    """Check SGLang's parallel arguments against the model and GPU and resolve their defaults."""
    tp, dp, pp = args.tp, args.dp, args.pp
    dp_attention = bool(args.enable_dp_attention) and dp > 1
    if dp_attention and tp % dp:
        raise _fail("dp", dp, f"with --enable-dp-attention tp ({tp}) must be a multiple of dp")
    domain = gpu.gpus_per_node
    if tp > domain and tp % domain:
        raise _fail("tp", tp, f"a tensor-parallel group larger than one {gpu.name} node must span "
                              f"whole nodes of {domain} GPUs")
    if not dp_attention and dp > 1 and dp * tp * pp > domain:
        raise _fail("dp", dp, f"data parallelism without --enable-dp-attention keeps its dp x tp x pp = "
                              f"{dp * tp * pp} GPUs in one node of {domain}; use --replicas for more servers")
    if pp > model.num_layers:
        raise _fail("pp", pp, f"at most the model's {model.num_layers} layers")
    _check_heads(tp, tp // dp if dp_attention else tp, model)

    backend = args.moe_a2a_backend
    ep = args.ep
    if not model.is_moe:
        expert_settings = [("ep", ep, ep > 1), ("moe_a2a_backend", backend, backend != "none"),
                           ("enable_eplb", True, args.enable_eplb),
                           ("ep_num_redundant_experts", args.ep_num_redundant_experts, args.ep_num_redundant_experts > 0)]
        for field, value, is_set in expert_settings:
            if is_set:
                raise _fail(field, value, f"model {model.name} has no experts; this setting needs an MoE model")
    if backend == "deepep":
        ep = tp  # SGLang sets ep_size = tp_size whenever DeepEP dispatches.
    if ep < 1 or tp % ep:
        raise _fail("ep", ep, f"tp ({tp}) must be a multiple of ep")

    if args.enable_two_batch_overlap and backend != "deepep":
        raise _fail("enable_two_batch_overlap", True, "two-batch overlap hides DeepEP all-to-alls; "
                                                      "it needs --moe-a2a-backend deepep")
    if args.moe_dense_tp_size not in (None, 1):
        raise _fail("moe_dense_tp_size", args.moe_dense_tp_size, "SGLang accepts only 1 (or unset)")
    if args.enable_dp_lm_head and not dp_attention:
        raise _fail("enable_dp_lm_head", True, "it needs --enable-dp-attention with dp > 1")
    redundant = args.ep_num_redundant_experts
    if redundant and (model.num_experts + redundant) % ep:
        raise _fail("ep_num_redundant_experts", redundant,
                    f"the {model.num_experts} experts plus the redundant ones must divide evenly over ep {ep}")
    return ParallelConfig(tp=tp, dp=dp, ep=ep, pp=pp, dp_attention=dp_attention, moe_a2a_backend=backend,
                          deepep_mode=args.deepep_mode, two_batch_overlap=args.enable_two_batch_overlap,
                          num_redundant_experts=redundant, moe_dense_tp_size=args.moe_dense_tp_size,
                          dp_lm_head=args.enable_dp_lm_head, eplb=args.enable_eplb)
