"""Typed, validated scenario files (YAML) and their defaults.

Field names follow SGLang's server arguments where one exists
(`chunked_prefill_size`, `max_running_requests`, `mem_fraction_static`, ...).
Unknown keys are rejected; every validation error becomes one line naming
the field, the value and what is allowed.

A cluster is aggregated replicas (`cluster.replicas` servers of `server`),
prefill/decode pools (`cluster.prefill`, `cluster.decode`), or both. A pool
may run another GPU and its own server arguments: each field it sets
overrides the shared `server` value, and a field it leaves out (or null)
inherits it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from ..errors import ConfigError, not_utf8
from ..limits import MAX_CV, MAX_PARALLEL, MAX_REQUESTS, MAX_SERVERS, MAX_TOKENS
from .yaml_file import load_yaml

PositiveInt = Field(gt=0)


class _Strict(BaseModel):
    # allow_inf_nan=False: an infinite rate, scale or time is never a meaningful setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_loose_numbers(cls, data: Any) -> Any:
        """Reject booleans for numeric fields and text for integer fields.

        Pydantic's lax mode would read `tp: true` as 1 and `tp: "4"` as 4. Text stays
        allowed for floats because YAML 1.1 reads `1e-6` (no dot) as a string.
        """
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            value = data.get(name)
            if value is None:
                continue
            kinds = _numeric_kinds(field.annotation)
            if not kinds:
                continue
            if isinstance(value, bool) or (isinstance(value, str) and "int" in kinds and "float" not in kinds):
                from pydantic_core import PydanticCustomError

                raise PydanticCustomError("loose_number", "expected a number", {"field": name, "value": value})
        return data


class ServerArgs(_Strict):
    """SGLang server arguments of one server."""

    tp: int = Field(1, gt=0, le=MAX_PARALLEL, description="Tensor-parallel size (--tp-size): GPUs of one pipeline stage")
    dp: int = Field(1, gt=0, le=MAX_PARALLEL, description="Data-parallel size (--dp-size): DP-attention ranks, or copies "
                                         "of the TP group without --enable-dp-attention")
    ep: int = Field(1, gt=0, le=MAX_PARALLEL, description="Expert-parallel size (--ep-size): GPUs the routed experts are split over")
    pp: int = Field(1, gt=0, le=MAX_PARALLEL, description="Pipeline-parallel size (--pp-size): stages of layers")
    enable_dp_attention: bool = False
    moe_a2a_backend: Literal["none", "deepep"] = "none"
    deepep_mode: Literal["auto", "normal", "low_latency"] = "auto"
    enable_two_batch_overlap: bool = False
    ep_num_redundant_experts: int = Field(0, ge=0, le=MAX_TOKENS)
    enable_eplb: bool = False
    moe_dense_tp_size: Optional[int] = Field(None, gt=0, le=MAX_PARALLEL)
    enable_dp_lm_head: bool = False
    chunked_prefill_size: Optional[int] = Field(
        None, description="Max new tokens of one prefill chunk; None picks SGLang's GPU-memory rule, -1 disables chunking")
    max_prefill_tokens: int = Field(16384, gt=0, le=MAX_TOKENS, description="Token budget of one prefill batch")
    max_running_requests: Optional[int] = Field(None, gt=0, le=MAX_TOKENS, description="Cap on the decode batch; None derives it as SGLang does")
    schedule_policy: Literal["fcfs", "lpm"] = "fcfs"
    schedule_conservativeness: float = Field(1.0, gt=0)
    mem_fraction_static: Optional[float] = Field(None, gt=0, lt=1)
    page_size: int = Field(1, gt=0, le=MAX_TOKENS)
    enable_mixed_chunk: bool = False
    disable_overlap_schedule: bool = False
    cuda_graph_max_bs: Optional[int] = Field(None, gt=0, le=MAX_TOKENS)
    disable_cuda_graph: bool = False
    disable_radix_cache: bool = False
    max_total_tokens: Optional[int] = Field(None, gt=0, le=MAX_TOKENS, description="Upper bound on the KV-pool size in tokens")
    kv_pool_tokens: Optional[int] = Field(
        None, gt=0, le=MAX_TOKENS, description="Simulation only: KV-pool size in tokens regardless of GPU memory")
    context_length: Optional[int] = Field(None, gt=0, le=MAX_TOKENS)
    kv_cache_dtype: Literal["auto", "bf16", "fp8_e4m3", "fp8_e5m2"] = "auto"
    quantization: Optional[Literal["fp8", "w8a8_fp8", "modelopt_fp8", "fp4", "modelopt_fp4"]] = None

    @field_validator("chunked_prefill_size")
    @classmethod
    def _chunk(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value != -1 and not 0 < value <= MAX_TOKENS:
            raise ValueError(f"expected a token count from 1 to {MAX_TOKENS}, or -1 to disable chunking")
        return value


def _overrides_of(model: type[BaseModel]) -> type[BaseModel]:
    """Build a model with every field of `model` optional and None by default (None = inherit)."""
    fields: dict[str, Any] = {name: (Optional[info.annotation], None) for name, info in model.model_fields.items()}
    return create_model(f"{model.__name__}Overrides", __base__=_Strict, **fields)


ServerArgsOverrides = _overrides_of(ServerArgs)
"""Per-pool server arguments; unset fields take the shared `server` value."""

RouterPolicy = Literal["cache_aware", "power_of_two", "random", "round_robin", "shortest_queue"]
"""Routing policies of SGLang's router (`--policy`); `shortest_queue` is cache_aware's fallback."""


class CacheAwareArgs(_Strict):
    """Knobs of the cache_aware policy, named and defaulted as SGLang's `launch_router`."""

    cache_threshold: float = Field(0.3, ge=0, le=1, description="Min prefix match ratio for cache-affine routing")
    balance_abs_threshold: int = Field(64, ge=0, description="Imbalance needs max - min load above this")
    balance_rel_threshold: float = Field(1.5, ge=1, description="...and max load above min load x this")
    eviction_interval_secs: float = Field(120.0, ge=0, description="Seconds between tree trims (0: never)")
    max_tree_size: int = Field(1 << 26, gt=0, description="Tokens per server kept in the tree by a trim")


class PoolConfig(_Strict):
    """One prefill or decode pool of identical servers."""

    workers: int = Field(gt=0, le=MAX_SERVERS, description="Servers in the pool")
    gpu: Optional[str] = Field(None, description="GPU preset of the pool (default: the scenario's gpu)")
    server: ServerArgsOverrides = ServerArgsOverrides()  # type: ignore[valid-type]
    policy: Optional[RouterPolicy] = Field(None, description="Routing policy of the pool (default: cluster.router)")


class DecodePoolConfig(PoolConfig):
    num_reserved_decode_tokens: int = Field(
        512, ge=0, le=MAX_TOKENS, description="SGLANG_NUM_RESERVED_DECODE_TOKENS: decode room kept per active request")


class ClusterConfig(_Strict):
    """How many servers run, in which pools, and how requests reach them."""

    replicas: Optional[int] = Field(
        None, ge=0, le=MAX_SERVERS,
        description="Aggregated servers, each with its own tp x pp (x dp) GPUs (default: 1, or 0 with P/D pools)")
    router: RouterPolicy = "cache_aware"
    cache_aware: CacheAwareArgs = CacheAwareArgs()
    dp_aware: bool = Field(False, description="Route to each DP rank of a server as its own target")
    seed: int = Field(0, ge=0, description="Seed of the routers' random choices")
    inter_node_link: Literal["infiniband", "ethernet"] = "infiniband"
    prefill: Optional[PoolConfig] = None
    decode: Optional[DecodePoolConfig] = None

    @property
    def has_pd(self) -> bool:
        return self.prefill is not None and self.decode is not None

    @property
    def num_replicas(self) -> int:
        """Aggregated servers: `replicas` when given, else 1 without P/D pools and 0 with them."""
        if self.replicas is not None:
            return self.replicas
        return 0 if self.has_pd else 1


class LengthSpec(_Strict):
    dist: Literal["constant", "uniform", "normal", "lognormal", "exponential"] = "constant"
    mean: float = Field(128.0, ge=1, le=MAX_TOKENS)
    std: float = Field(0.0, ge=0, le=MAX_TOKENS)
    cv: float = Field(1.0, gt=0, le=MAX_CV)
    min: int = Field(1, ge=1, le=MAX_TOKENS)
    max: int = Field(1 << 30, ge=1, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _bounds(self) -> "LengthSpec":
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class SharedPrefixSpec(_Strict):
    """Groups of requests sharing a system prompt, optionally as multi-turn sessions."""

    num_groups: int = Field(8, gt=0, le=MAX_REQUESTS)
    system_prompt_len: int = Field(1024, ge=0, le=MAX_TOKENS)
    turns: int = Field(1, gt=0, le=MAX_REQUESTS, description="Turns per session; each turn re-sends the history")
    think_time_s: float = Field(0.0, ge=0)


class WorkloadConfig(_Strict):
    """Where requests come from and when they arrive."""

    trace: Optional[str] = None
    trace_format: Literal["auto", "mooncake", "azure", "vidur"] = "auto"
    trace_sampling: Literal["in_order", "shuffle", "with_replacement"] = "in_order"
    num_requests: Optional[int] = Field(None, gt=0, le=MAX_REQUESTS)
    rate: Optional[float] = Field(
        None, gt=0, description="Requests/s; with a trace, replaces its timestamps; with concurrency, the pace "
                                "at which requests are issued to wait for a free slot (bench_serving "
                                "--request-rate with --max-concurrency)")
    arrival: Literal["poisson", "gamma", "constant"] = "poisson"
    cv: float = Field(1.0, gt=0, le=MAX_CV, description="Coefficient of variation of gamma inter-arrival gaps")
    time_scale: float = Field(1.0, gt=0, description="Multiplies a trace's timestamps")
    concurrency: Optional[int] = Field(
        None, gt=0, le=MAX_REQUESTS, description="Requests in flight at most; alone, a closed loop of this many clients")
    concurrency_ramp_s: float = Field(
        0.0, ge=0, description="Seconds over which the concurrency cap grows from 1 to concurrency, one slot "
                               "at a time (aiperf --concurrency-ramp-duration)")
    input_len: Optional[LengthSpec] = None
    output_len: Optional[LengthSpec] = None
    shared_prefix: Optional[SharedPrefixSpec] = None
    max_request_tokens: Optional[int] = Field(None, gt=1, le=MAX_TOKENS, description="Shrink longer requests proportionally (Vidur's cap)")
    seed: int = Field(0, ge=0, description="Seed of every random draw of the workload")

    @field_validator("input_len", "output_len", mode="before")
    @classmethod
    def _int_length(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"dist": "constant", "mean": value}
        return value


class SLOConfig(_Strict):
    ttft_s: Optional[float] = Field(None, gt=0)
    tpot_s: Optional[float] = Field(None, gt=0)


class Scenario(_Strict):
    """A whole simulation: model, hardware, servers, cluster and workload."""

    model: str = "llama-3.1-8b"
    gpu: str = "h100"
    server: ServerArgs = ServerArgs()
    cluster: ClusterConfig = ClusterConfig()
    workload: WorkloadConfig = WorkloadConfig()
    slo: SLOConfig = SLOConfig()
    efficiency: dict[str, float] = Field(default_factory=dict)
    check_invariants: bool = False

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Scenario":
        return load_scenario(path)

    def pool_server_args(self, pool: str) -> ServerArgs:
        """Server arguments of the `prefill` or `decode` pool: the shared ones plus its overrides."""
        config = getattr(self.cluster, pool)
        overrides = config.server.model_dump(exclude_none=True)
        return ServerArgs.model_validate({**self.server.model_dump(), **overrides})

    def pool_gpu(self, pool: str) -> str:
        config = getattr(self.cluster, pool)
        return config.gpu or self.gpu

    def updated(self, overrides: dict[str, Any]) -> "Scenario":
        """Return a copy with dotted-path overrides applied (e.g. {'server.tp': 4})."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for part in parts[:-1]:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            node[parts[-1]] = value
        return validate_scenario(data)


def _numeric_kinds(annotation: Any) -> set[str]:
    """'int'/'float' for a field typed int, float or Optional of them (empty otherwise)."""
    import typing

    args = typing.get_args(annotation) or (annotation,)
    return {kind.__name__ for kind in args if kind in (int, float)}


def _format_error(err: ValidationError, source: str, prefix: str = "") -> ConfigError:
    first = err.errors()[0]
    loc = ".".join([prefix] * bool(prefix) + [str(p) for p in first["loc"]]) or "scenario"
    value = first.get("input")
    msg = first["msg"]
    if first["type"] == "loose_number":
        ctx = first["ctx"]
        field = f"{loc}.{ctx['field']}" if loc != "scenario" else ctx["field"]
        return ConfigError(f"invalid {field} {ctx['value']!r} in {source}: expected a number")
    if first["type"] == "extra_forbidden":
        return ConfigError(f"unknown key {loc!r} in {source}")
    if first["type"] == "missing":
        return ConfigError(f"missing {loc} in {source}")
    if first["type"] in ("model_type", "dict_type"):
        return ConfigError(f"invalid {loc} {value!r} in {source}: expected a mapping of settings (key: value lines)")
    if first["type"] == "literal_error":
        return ConfigError(f"invalid {loc} {value!r} in {source}: {msg.lower()}")
    return ConfigError(f"invalid {loc} {value!r} in {source}: {msg.lower()}")


def validate_scenario(data: dict[str, Any], source: str = "scenario") -> Scenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise _format_error(err, source) from None
    _check_cluster(scenario, source)
    _check_workload(scenario.workload, source)
    from ..costs.efficiency import check_overrides

    check_overrides(scenario.efficiency, source)
    return scenario


def _check_cluster(scenario: Scenario, source: str) -> None:
    """Cross-field rules of the cluster: both P/D pools or neither, some server, valid pool args."""
    cluster = scenario.cluster
    if (cluster.prefill is None) != (cluster.decode is None):
        missing = "decode" if cluster.decode is None else "prefill"
        raise ConfigError(f"missing cluster.{missing} in {source}: P/D disaggregation needs both a prefill "
                          f"and a decode pool (--{missing}-workers)")
    if cluster.num_replicas == 0 and not cluster.has_pd:
        raise ConfigError(f"invalid cluster.replicas 0 in {source}: expected at least one aggregated "
                          "replica or a pair of P/D pools")
    for pool in ("prefill", "decode"):
        if getattr(cluster, pool) is None:
            continue
        try:
            scenario.pool_server_args(pool)
        except ValidationError as err:
            raise _format_error(err, source, f"cluster.{pool}.server") from None


def _check_workload(wl: WorkloadConfig, source: str) -> None:
    """Reject pairs of workload options where one would silently override the other."""
    if wl.trace is not None:
        for name, what in (("input_len", "lengths"), ("output_len", "lengths"), ("shared_prefix", "prompts")):
            if getattr(wl, name) is not None:
                raise ConfigError(f"conflicting workload.{name} and workload.trace in {source}: a trace sets "
                                  f"the {what}; drop one of them")
    _check_arrival_knobs(wl, source)
    _check_concurrency_knobs(wl, source)


def _check_concurrency_knobs(wl: WorkloadConfig, source: str) -> None:
    """Reject a concurrency ramp without a concurrency cap, or beside a rate that issues requests.

    A rate beside a concurrency is valid: requests are issued at the rate and
    wait for a free slot, as bench_serving --request-rate with --max-concurrency.
    """
    if not wl.concurrency_ramp_s:
        return
    if wl.concurrency is None:
        raise ConfigError(f"invalid workload.concurrency_ramp_s {wl.concurrency_ramp_s} in {source}: a "
                          "concurrency ramp needs workload.concurrency (--concurrency)")
    if wl.rate is not None:
        raise ConfigError(f"conflicting workload.concurrency_ramp_s and workload.rate in {source}: a "
                          "concurrency ramp applies to a closed loop; drop workload.rate (--rate) or the ramp")


def _check_arrival_knobs(wl: WorkloadConfig, source: str) -> None:
    """Reject time_scale, arrival and cv settings that the chosen arrivals would ignore."""
    stretch = "time_scale stretches a trace's own timestamps"
    if wl.time_scale != 1.0:
        if wl.trace is None:
            raise ConfigError(f"invalid workload.time_scale {wl.time_scale} in {source}: {stretch}; "
                              "it needs a trace")
        for other in ("rate", "concurrency"):
            if getattr(wl, other) is not None:
                raise ConfigError(f"conflicting workload.time_scale and workload.{other} in {source}: "
                                  f"{stretch}; drop one of them")
    if wl.arrival != "poisson" and wl.rate is None:
        raise ConfigError(f"invalid workload.arrival {wl.arrival!r} in {source}: an arrival process needs a rate "
                          "(--rate)")
    if wl.cv != 1.0 and wl.arrival != "gamma":
        raise ConfigError(f"conflicting workload.cv and workload.arrival {wl.arrival!r} in {source}: cv shapes "
                          "gamma arrivals; set arrival gamma or drop cv")


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML scenario file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scenario file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise not_utf8("scenario file", path, exc) from None
    except ConfigError as exc:
        raise ConfigError(f"invalid YAML in {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML in {path}{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"invalid scenario {path}: expected a mapping at the top level")
    _resolve_relative_paths(data, path.parent)
    return validate_scenario(data, str(path))


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> None:
    """Make a scenario's relative trace and model-config paths relative to its own folder."""
    import os

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return os.path.normpath(base / value)
        return value

    workload = data.get("workload")
    if isinstance(workload, dict) and "trace" in workload:
        workload["trace"] = resolve(workload["trace"])
    model = data.get("model")
    if isinstance(model, str) and model.endswith(".json"):
        data["model"] = resolve(model)
