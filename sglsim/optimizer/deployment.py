"""From a configuration (decision-variable values) to a scenario to simulate and to SGLang launch commands.

Two deployment shapes, named as the steady-state model names them:

- `colocated`: N_r servers of TP GPUs, each prefilling and decoding
  (SGLang's default, aggregated serving behind a router);
- `disaggregated`: N_p prefill servers of TP_p GPUs and N_d decode servers
  of TP_d GPUs (one TP for both unless per-pool TP is searched), the KV of
  each prompt moving from prefill to decode.

Decision variables by symbol name: N_r, N_p, N_d, TP, TP_p, TP_d, DP, EP,
c (chunked_prefill_size), B_tok (max_prefill_tokens), B_req
(max_running_requests). Variables a configuration leaves out keep the base
scenario's value.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..config.scenario import ClusterConfig, Scenario, ServerArgs
from ..errors import ConfigError, unknown

DEPLOYMENTS = ("colocated", "disaggregated")
SERVER_FIELDS = {"c": "chunked_prefill_size", "B_tok": "max_prefill_tokens", "B_req": "max_running_requests",
                 "DP": "dp", "EP": "ep"}
"""Decision variables that are SGLang server arguments (the TP sizes are handled per pool)."""
SGLANG_FLAGS = {"tp": "--tp-size", "chunked_prefill_size": "--chunked-prefill-size",
                "max_prefill_tokens": "--max-prefill-tokens", "max_running_requests": "--max-running-requests",
                "dp": "--dp-size", "ep": "--ep-size", "pp": "--pp-size"}
HF_MODEL_IDS = {
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B-Instruct",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-32b": "Qwen/Qwen3-32B",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
    "qwen3-235b-a22b": "Qwen/Qwen3-235B-A22B",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "deepseek-r1": "deepseek-ai/DeepSeek-R1",
}
"""Hugging Face repository of each model preset, for `--model-path` in launch commands."""


def has_pd_pools() -> bool:
    """Return whether this build's scenario schema has prefill/decode pools."""
    return "prefill" in ClusterConfig.model_fields


def _int(config: Mapping[str, float], name: str) -> int:
    value = config[name]
    if float(value) != int(value) or int(value) < 1:
        raise ConfigError(f"invalid {name} {value!r}: expected a positive integer")
    return int(value)


def server_overrides(config: Mapping[str, float], tp_name: str) -> dict[str, Any]:
    """ServerArgs fields set by a configuration (TP from `tp_name`, when present)."""
    out: dict[str, Any] = {}
    if tp_name in config:
        out["tp"] = _int(config, tp_name)
    elif "TP" in config:
        out["tp"] = _int(config, "TP")
    for var, field_name in SERVER_FIELDS.items():
        if var not in config:
            continue
        if field_name not in ServerArgs.model_fields:
            if int(config[var]) == 1:
                continue
            raise ConfigError(f"invalid decision variable {var} {config[var]!r}: this build's servers have no "
                              f"{field_name} argument; search {var} = 1 only")
        out[field_name] = _int(config, var)
    return out


def scenario_for(base: Scenario, deployment: str, config: Mapping[str, float],
                 workload: Mapping[str, Any] | None = None) -> Scenario:
    """Apply a configuration's deployment and optional workload overrides to the base scenario."""
    if deployment not in DEPLOYMENTS:
        raise unknown("deployment", deployment, DEPLOYMENTS)
    data = base.model_dump()
    data["workload"].update(workload or {})
    if deployment == "colocated":
        data["server"].update(server_overrides(config, "TP"))
        if "N_r" in config:
            data["cluster"]["replicas"] = _int(config, "N_r")
        if has_pd_pools():
            data["cluster"]["prefill"] = data["cluster"]["decode"] = None
    else:
        if not has_pd_pools():
            raise ConfigError("invalid deployment disaggregated: this build has no prefill/decode pools")
        prefill = {k: v for k, v in server_overrides(config, "TP_p").items() if k != "max_running_requests"}
        decode = {k: v for k, v in server_overrides(config, "TP_d").items()
                  if k not in ("chunked_prefill_size", "max_prefill_tokens")}
        data["cluster"]["replicas"] = 0
        data["cluster"]["prefill"] = {"workers": _int(config, "N_p"), "server": prefill}
        data["cluster"]["decode"] = {"workers": _int(config, "N_d"), "server": decode}
    from ..config.scenario import validate_scenario

    return validate_scenario(data, f"{deployment} configuration {dict(config)}")


def launch_commands(scenario: Scenario) -> list[str]:
    """SGLang commands that start the deployment of a scenario: one line per server kind and the router."""
    model = HF_MODEL_IDS.get(scenario.model.lower(), scenario.model)
    lines = []
    cluster = scenario.cluster
    pd = has_pd_pools() and cluster.prefill is not None and cluster.decode is not None
    if pd:
        for pool in ("prefill", "decode"):
            args = scenario.pool_server_args(pool)
            count = getattr(cluster, pool).workers
            flags = _server_flags(args, pool)
            lines.append(f"# {count} x {pool} server ({args.tp} GPUs each):")
            lines.append(f"python -m sglang.launch_server --model-path {model} {flags} "
                         f"--disaggregation-mode {pool}")
        lines.append(f"python -m sglang_router.launch_router --pd-disaggregation "
                     f"--prefill http://PREFILL_HOST:30000 --decode http://DECODE_HOST:30000 "
                     f"--policy {cluster.router}")
        return lines
    replicas = cluster.replicas or 1
    lines.append(f"# {replicas} x server ({scenario.server.tp} GPUs each):")
    lines.append(f"python -m sglang.launch_server --model-path {model} {_server_flags(scenario.server, 'server')}")
    if replicas > 1:
        lines.append(f"python -m sglang_router.launch_router --worker-urls http://HOST:30000 ... "
                     f"--policy {cluster.router}")
    return lines


def _server_flags(args: ServerArgs, pool: str) -> str:
    values = args.model_dump()
    parts = []
    for field_name, flag in SGLANG_FLAGS.items():
        if values.get(field_name) is None:
            continue
        if field_name in ("dp", "ep", "pp") and values[field_name] == 1:
            continue
        if pool == "prefill" and field_name == "max_running_requests":
            continue
        if pool == "decode" and field_name in ("chunked_prefill_size", "max_prefill_tokens"):
            continue
        parts.append(f"{flag} {values[field_name]}")
    return " ".join(parts)
