"""Translate rows of aiconfigurator's `silicon_sample.csv` into sglsim scenarios.

Each row of `aiconfigurator_core/systems/silicon_sample.csv` (aiconfigurator-core
0.12.0) is one measured deployment: a model on `system` GPUs, served by
`backend` in `mode` `agg` (one server) or `disagg` (prefill and decode pools),
with the measured mean TTFT and TPOT (`silicon_ttft_ms`, `silicon_tpot_ms`).

Column meanings, as the wheel's SDK uses them (`sdk/backends/base_backend.py`,
`sdk/common.py` ColumnsAgg/ColumnsDisagg) and as every row satisfies:

- `tp_size` is the attention TP of one attention-DP rank. A worker runs on
  tp_size x attention_dp_size GPUs, which equals moe_tp_size x moe_ep_size for
  MoE models. In SGLang terms: `--tp` tp_size x attention_dp_size, `--dp`
  attention_dp_size with `--enable-dp-attention`, `--ep` moe_ep_size. SGLang's
  MoE TP is then `--tp / --ep`, which is moe_tp_size.
- `batch_size` (agg) counts requests per attention-DP rank. The SDK reports
  concurrency = batch_size x attention_dp_size (x pp_size).
- disagg rows give the same layout per pool (`prefill_*`, `decode_*`),
  `*_num_workers` servers per pool and `decode_batch_size` requests per
  decode DP rank. concurrency = decode_batch_size x decode_num_workers x
  decode_attention_dp_size holds on every disagg row that states its
  concurrency. `prefill_batch_size` (1 on every row) is aiconfigurator's
  modelled prefill batch; the simulated prefill scheduler forms its own.
- `silicon_data_source` names the benchmark run and usually its
  `silicon_concurrency`, the number of clients.

How the rows were measured (the load this module reproduces):

- Rows from aiconfigurator's own gap analysis (`aic-auto-gap-analysis` in the
  source) ran aiconfigurator's eval harness, genai-perf or SGLang's
  bench_serving. It keeps a fixed concurrency C and sends 10 x C requests of
  exactly `isl` and `osl` tokens (`--random-range-ratio 1`) after 2 x C
  warm-up requests.
- The other rows use InferenceX's grid of 1k/1k, 1k/8k and 8k/1k with its
  container images (SemiAnalysis InferenceX, formerly InferenceMAX). Its
  `benchmark_serving.py` runs `--max-concurrency C --request-rate inf
  --num-prompts 10 x C --random-range-ratio 0.8`, so prompt and output
  lengths are drawn uniformly from [int(0.8 x len), len] with ignore_eos, after
  2 x C warm-up requests.

Both warm-ups finish before the measured requests start, so the simulation
starts from an idle server with C clients and no warm-up.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEM_GPUS = {"a100_sxm": "a100", "h100_sxm": "h100", "h200_sxm": "h200", "b200_sxm": "b200",
               "b300_sxm": "b300", "gb200": "gb200", "gb300": "gb300"}
MODEL_ALIASES = {
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama--Meta-Llama-3.1-8B",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "meta-llama--Meta-Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B": "meta-llama--Meta-Llama-3.1-70B",
    "zhipuai/GLM-5": "zai-org--GLM-5",
    "nvidia/DeepSeek-R1-NVFP4": "deepseek-ai--DeepSeek-R1",
    "nvidia/Qwen3-32B-NVFP4": "Qwen--Qwen3-32B",
}
"""Row model -> config file stem in the wheel where the names differ (same architecture)."""
PRECISION_QUANTIZATION = {"bf16": None, "fp8": "fp8", "fp4": "fp4"}
ROUTER = "round_robin"
"""Routing between the servers of a pool: Dynamo's frontend routes round robin by default, and a
random-prompt benchmark leaves cache-aware routing nothing to match."""


@dataclass(frozen=True)
class Harness:
    """The load a benchmark client put on the measured deployment."""

    name: str
    range_ratio: float
    """Lengths drawn uniformly from [int(len x range_ratio), len]; 1 means fixed lengths."""
    requests_per_client: int
    """Measured requests per client (num_prompts / max_concurrency)."""


AIC_EVAL = Harness("aiconfigurator eval", range_ratio=1.0, requests_per_client=10)
INFERENCEX = Harness("InferenceX", range_ratio=0.8, requests_per_client=10)


@dataclass(frozen=True)
class WorkerLayout:
    """The parallel layout of one server, in aiconfigurator's terms."""

    attention_tp: int
    attention_dp: int = 1
    moe_ep: int = 1

    @property
    def num_gpus(self) -> int:
        return self.attention_tp * self.attention_dp

    def server_args(self) -> dict[str, Any]:
        """SGLang server arguments of this layout (`--tp`, `--dp`, `--ep`, `--enable-dp-attention`)."""
        return {"tp": self.num_gpus, "dp": self.attention_dp, "ep": self.moe_ep,
                "enable_dp_attention": self.attention_dp > 1}


@dataclass(frozen=True)
class SiliconCase:
    """One measured deployment the simulator can express."""

    row_id: str
    system: str
    backend: str
    model: str
    config_path: str
    gpu: str
    quantization: str | None
    isl: int
    osl: int
    concurrency: int
    measured_ttft_ms: float
    measured_tpot_ms: float
    harness: Harness
    mode: str = "agg"
    server: WorkerLayout | None = None
    """The aggregated server (mode agg)."""
    prefill: WorkerLayout | None = None
    prefill_workers: int = 0
    decode: WorkerLayout | None = None
    decode_workers: int = 0


def _int(value: Any) -> int:
    """Read an integer cell; an empty cell (NaN or None) reads as 0."""
    return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _text_config(config: dict) -> dict:
    return config["text_config"] if isinstance(config.get("text_config"), dict) else config


def _architecture_gap(config: dict) -> str | None:
    """Name the attention feature of a Hugging Face config that the cost laws do not model."""
    text = _text_config(config)
    layer_types = set(text.get("layer_types") or [])
    if layer_types - {"full_attention"}:
        return "hybrid, linear or sliding-window attention"
    if text.get("index_topk"):
        return "sparse attention (DSA)"
    if text.get("use_sliding_window") and text.get("sliding_window"):
        return "hybrid, linear or sliding-window attention"
    return None


def harness_of(row: dict) -> Harness:
    """Return the benchmark harness behind a row, from its data source."""
    return AIC_EVAL if "aic-auto-gap-analysis" in str(row["silicon_data_source"]) else INFERENCEX


def read_layout(row: dict, prefix: str, config: dict) -> WorkerLayout | str:
    """Return the layout of the `prefix` pool ('' for an aggregated row), or why it cannot run.

    For MoE models `moe_tp_size` x `moe_ep_size` must equal the worker's GPUs.
    An empty or zero cell means the row does not state it (some vLLM rows).
    """
    text = _text_config(config)
    tp = _int(row[f"{prefix}tp_size"])
    adp = max(_int(row[f"{prefix}attention_dp_size"]), 1)
    if tp < 1:
        return "no TP size"
    if _int(row.get(f"{prefix}pp_size")) > 1:
        return "pipeline parallelism"
    if _int(text.get("num_attention_heads")) % tp:
        return "attention TP does not divide the attention heads"
    is_moe = bool(text.get("num_local_experts") or text.get("num_experts") or text.get("n_routed_experts"))
    if not is_moe:
        return WorkerLayout(tp, adp)
    moe_tp, moe_ep = _int(row[f"{prefix}moe_tp_size"]), _int(row[f"{prefix}moe_ep_size"])
    if moe_tp and moe_ep and moe_tp * moe_ep != tp * adp:
        return "MoE TP x EP differs from the worker's GPUs (TP x attention DP)"
    return WorkerLayout(tp, adp, max(moe_ep, 1))


def _stated_concurrency(row: dict) -> int:
    match = re.search(r"silicon_concurrency=(\d+)", str(row["silicon_data_source"]))
    return int(match.group(1)) if match else 0


def _pools(row: dict, config: dict) -> dict[str, Any] | str:
    """Return the case fields of a row's server or P/D pools, or why the row cannot run."""
    if row["mode"] == "agg":
        layout = read_layout(row, "", config)
        if isinstance(layout, str):
            return layout
        concurrency = _stated_concurrency(row) or _int(row["batch_size"]) * layout.attention_dp
        return {"server": layout, "concurrency": concurrency}
    if row["mode"] != "disagg":
        return f"serving mode {row['mode']}"
    counts = [_int(row[f]) for f in ("prefill_num_workers", "decode_num_workers", "decode_batch_size")]
    if min(counts) < 1:
        return "disaggregated row without worker counts or decode batch size"
    fields: dict[str, Any] = {"mode": "disagg", "prefill_workers": counts[0], "decode_workers": counts[1]}
    for pool in ("prefill", "decode"):
        layout = read_layout(row, f"{pool}_", config)
        if isinstance(layout, str):
            return f"{pool} pool: {layout}"
        fields[pool] = layout
    fields["concurrency"] = _stated_concurrency(row) or counts[2] * counts[1] * fields["decode"].attention_dp
    return fields


def classify(row: dict, model_dir: Path) -> SiliconCase | str:
    """Return the case of one CSV row, or the reason the simulator cannot express it."""
    if row["system"] not in SYSTEM_GPUS:
        return f"GPU without a preset ({row['system']})"
    precision = row["precision"] if isinstance(row["precision"], str) else "bf16"
    if precision not in PRECISION_QUANTIZATION:
        return f"weights in {precision}"
    stem = MODEL_ALIASES.get(row["model_path"], row["model_path"].replace("/", "--"))
    config_path = model_dir / f"{stem}_config.json"
    if not config_path.is_file():
        return "model config not in the wheel"
    config = json.loads(config_path.read_text())
    gap = _architecture_gap(config)
    if gap is not None:
        return gap
    pools = _pools(row, config)
    if isinstance(pools, str):
        return pools
    return SiliconCase(
        row_id=str(row["id"]), system=row["system"], backend=row["backend"], model=row["model_path"],
        config_path=str(config_path), gpu=SYSTEM_GPUS[row["system"]],
        quantization=PRECISION_QUANTIZATION[precision], isl=int(row["isl"]), osl=int(row["osl"]),
        measured_ttft_ms=float(row["silicon_ttft_ms"]), measured_tpot_ms=float(row["silicon_tpot_ms"]),
        harness=harness_of(row), **pools)


def length_spec(length: int, range_ratio: float) -> dict[str, Any]:
    """Describe a fixed length, or bench_serving's uniform draw from [int(length x range_ratio), length]."""
    if range_ratio >= 1:
        return {"dist": "constant", "mean": length}
    low = max(int(length * range_ratio), 1)
    return {"dist": "uniform", "mean": (low + length) / 2, "min": low, "max": length}


def build_scenario(case: SiliconCase, overrides: dict[str, float],
                   requests_per_client: int | None = None) -> dict[str, Any]:
    """Return the scenario that replays one row: its servers, its harness's load, default SGLang arguments.

    Rows of vLLM and TensorRT-LLM run with SGLang's `enable_mixed_chunk`, the
    nearest SGLang mode to their schedulers, which batch prefill chunks with
    running decodes. `requests_per_client` replaces the harness's count.
    """
    per_client = requests_per_client or case.harness.requests_per_client
    ratio = case.harness.range_ratio
    shared = {"quantization": case.quantization, "enable_mixed_chunk": case.backend != "sglang"}
    scenario: dict[str, Any] = {
        "model": case.config_path, "gpu": case.gpu,
        "workload": {"concurrency": case.concurrency, "num_requests": case.concurrency * per_client,
                     "input_len": length_spec(case.isl, ratio), "output_len": length_spec(case.osl, ratio)},
        "efficiency": dict(overrides),
    }
    if case.mode == "agg":
        scenario["server"] = {**shared, **case.server.server_args()}
        return scenario
    scenario["server"] = shared
    scenario["cluster"] = {
        "router": ROUTER,
        "prefill": {"workers": case.prefill_workers, "server": case.prefill.server_args()},
        "decode": {"workers": case.decode_workers, "server": case.decode.server_args()},
    }
    return scenario
