"""Predict published LLM-serving measurements with the calibrated simulator and print the error.

Usage: python bench/validate_published.py [--case NAME ...] [--list]

Each case encodes one published number with its source. Operator cases call the
cost laws directly; the others run a simulation. The systems that measured
them are not all SGLang (vLLM, gpt-fast, NVIDIA NIM, TensorRT-LLM), so a good
SGLang simulator lands near these numbers, not on them. Cases the simulator
cannot express, or whose constants were set from the case itself, are listed
as skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from sglsim.costs.efficiency import efficiency_for_gpu  # noqa: E402
from bench_parallel_checks import EP_PREFILL_ROWS, ep_prefill_scenario  # noqa: E402

from sglsim.costs.collectives import nccl_all_reduce_time  # noqa: E402
from sglsim.costs.laws import gemm_time  # noqa: E402
from sglsim.costs.ops import FLOAT_OPS  # noqa: E402
from sglsim.costs.params import HardwareParams, ModelParams  # noqa: E402
from sglsim.hardware.gpus import get_gpu  # noqa: E402
from sglsim.simulation import simulate  # noqa: E402

MIB = 1024 * 1024
VIDUR = "microsoft/vidur data/profiling (median kernel time)"
VLLM_CI = "vLLM CI latency test (Llama-3.1-8B BF16, batch 8, 32 in / 128 out, mean batch latency)"
GPT_FAST = "pytorch-labs/gpt-fast README (A100-80GB power-capped to 330 W, batch 1, 5-token prompt)"
NIM = "NVIDIA NIM 1.8.0 LLM benchmarking page (Llama-3.1-8B-Instruct FP8, 1x H100, closed loop)"
TRTLLM = "NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md (Llama-3.1-8B FP8, 1 GPU, offline)"
EP_PREFILL = ("lmsys.org blog 2025-05-05, SGLang large-scale EP: DeepSeek-V3 prefill on 4 nodes of 8 H100, "
              "input tokens/s per node")

LLAMA2_70B_CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8192, "intermediate_size": 28672,
                     "num_attention_heads": 64, "num_key_value_heads": 8, "num_hidden_layers": 80,
                     "vocab_size": 32000, "max_position_embeddings": 4096}
"""Published config.json values of meta-llama/Llama-2-70b-hf (no preset in sglsim)."""


@dataclass(frozen=True)
class Case:
    """One published number and how the simulator predicts it."""

    name: str
    source: str
    measured: float
    unit: str
    predict: Callable[[], float]


@dataclass(frozen=True)
class Result:
    case: Case
    predicted: float

    @property
    def error(self) -> float:
        """Signed relative error, predicted / measured - 1."""
        return self.predicted / self.case.measured - 1


# ----- operator cases: the laws alone -----

def llama2_7b_linear_ms(gpu: str, tokens: int) -> float:
    """QKV, O, gate/up and down projections of one Llama-2-7B layer (FP16 weights, TP 1)."""
    eff = efficiency_for_gpu(gpu)
    hw = HardwareParams.from_gpu(get_gpu(gpu), "bf16")
    model = ModelParams(num_layers=1, num_moe_layers=0, hidden_size=4096, num_heads=32, num_kv_heads=32,
                        head_dim=128, intermediate_size=11008, vocab_size=32000, weight_bytes=2.0,
                        act_bytes=2.0, kv_bytes=2.0)
    shapes = ((3 * 4096, 4096), (4096, 4096), (2 * 11008, 4096), (4096, 11008))
    return 1e3 * sum(gemm_time(FLOAT_OPS, tokens, n, k, 1.0, model, hw, eff) for n, k in shapes)


def all_reduce_ms(ranks: int, message_bytes: float) -> float:
    """Return the time of one NCCL all-reduce inside a DGX H100 by the simulator's NCCL law.

    Vidur profiled NCCL. SGLang itself would take its cheaper custom one-shot
    all-reduce for small messages, so the NCCL law is the one comparable here.
    """
    gpu = get_gpu("h100")
    return 1e3 * nccl_all_reduce_time(FLOAT_OPS, message_bytes, ranks, HardwareParams.from_gpu(gpu, "bf16"),
                                      efficiency_for_gpu("h100"), 1.0)


# ----- serving cases: simulations -----

@lru_cache(maxsize=None)
def _run(model: str, gpu: str, tp: int, quantization: str | None, isl: int, osl: int, num_requests: int,
         concurrency: int | None, kv_cache_dtype: str = "auto") -> dict:
    """Summary of one simulation; requests arrive together unless `concurrency` sets a closed loop."""
    workload = {"input_len": isl, "output_len": osl, "num_requests": num_requests}
    if concurrency is not None:
        workload["concurrency"] = concurrency
    server = {"tp": tp, "quantization": quantization, "kv_cache_dtype": kv_cache_dtype}
    scenario = {"model": model, "gpu": gpu, "server": server, "workload": workload}
    return simulate(scenario).summary


@lru_cache(maxsize=None)
def llama2_70b_config() -> str:
    folder = Path(tempfile.mkdtemp(prefix="sglsim-published-"))
    path = folder / "llama-2-70b.config.json"
    path.write_text(json.dumps(LLAMA2_70B_CONFIG))
    return str(path)


def batch_latency_ms(gpu: str) -> float:
    return 1e3 * _run("llama-3.1-8b", gpu, 1, None, 32, 128, 8, None)["duration_s"]


def decode_tokens_per_s(model: str, tp: int) -> float:
    model_id = llama2_70b_config() if model == "llama-2-70b" else model
    return 1.0 / _run(model_id, "a100", tp, None, 5, 200, 1, None)["tpot_s"]["mean"]


# NVIDIA's FP8 checkpoints (ModelOpt) quantize the KV cache too: their hf_quant_config.json sets
# kv_cache_quant_algo FP8, so the NIM and TensorRT-LLM cases run with an FP8 KV cache.
FP8_KV = "fp8_e4m3"


def nim(metric: str, isl: int, osl: int, concurrency: int) -> float:
    summary = _run("llama-3.1-8b", "h100", 1, "fp8", isl, osl, 4 * concurrency, concurrency, FP8_KV)
    if metric == "tok_s":
        return summary["output_throughput_tok_s"]
    return 1e3 * summary[f"{metric}_s"]["mean"]


def offline_tok_s(gpu: str, isl: int, osl: int) -> float:
    num_requests = min(3000, math.ceil(3e6 / (isl + osl)))
    return _run("llama-3.1-8b", gpu, 1, "fp8", isl, osl, num_requests, None, FP8_KV)["output_throughput_tok_s"]


def ep_prefill_tok_s_per_node(prompt_tokens: int) -> float:
    """Input tokens/s per node of SGLang's DeepSeek-V3 prefill server on 4 nodes of 8 H100."""
    summary = simulate(ep_prefill_scenario(prompt_tokens)).summary
    return summary["input_throughput_tok_s"] / 4


def build_cases() -> list[Case]:
    cases = [
        Case("linear-llama2-7b-h100-1tok", f"{VIDUR} h100 mlp.csv", 0.156, "ms", lambda: llama2_7b_linear_ms("h100", 1)),
        Case("linear-llama2-7b-h100-4096tok", f"{VIDUR} h100 mlp.csv", 2.21, "ms", lambda: llama2_7b_linear_ms("h100", 4096)),
        Case("linear-llama2-7b-a100-1tok", f"{VIDUR} a100 mlp.csv", 0.266, "ms", lambda: llama2_7b_linear_ms("a100", 1)),
        Case("linear-llama2-7b-a100-4096tok", f"{VIDUR} a100 mlp.csv", 7.45, "ms", lambda: llama2_7b_linear_ms("a100", 4096)),
    ]
    for ranks, mib, ms in ((8, 1, 0.034), (8, 16, 0.115), (8, 32, 0.196), (8, 64, 0.34), (2, 64, 0.245), (4, 64, 0.318)):
        cases.append(Case(f"allreduce-h100-{ranks}gpu-{mib}mib", f"{VIDUR} h100_dgx all_reduce.csv (NCCL)", ms, "ms",
                          lambda r=ranks, m=mib: all_reduce_ms(r, m * MIB)))
    for gpu, ms in (("h200", 834.0), ("h100", 997.5), ("a100", 1579.0)):
        cases.append(Case(f"vllm-ci-{gpu}", VLLM_CI, ms, "ms", lambda g=gpu: batch_latency_ms(g)))
    for model, tp, rate in (("llama-2-7b", 1, 104.9), ("llama-2-7b", 2, 168.8), ("llama-2-7b", 4, 254.0),
                            ("llama-2-7b", 8, 328.4), ("llama-2-70b", 2, 21.3), ("llama-2-70b", 4, 38.0),
                            ("llama-2-70b", 8, 62.5)):
        cases.append(Case(f"gpt-fast-{model}-tp{tp}", GPT_FAST, rate, "tok/s",
                          lambda m=model, t=tp: decode_tokens_per_s(m, t)))
    for isl, osl, c, metric, value in ((200, 200, 1, "ttft", 10.26), (200, 200, 1, "tpot", 4.63),
                                       (200, 200, 100, "ttft", 120.0), (200, 200, 100, "tpot", 7.57),
                                       (200, 200, 100, "tok_s", 12215.0), (200, 200, 200, "tok_s", 13348.0),
                                       (1000, 1000, 1, "ttft", 19.0), (1000, 1000, 1, "tpot", 4.53),
                                       (1000, 1000, 250, "ttft", 1885.0), (1000, 1000, 250, "tpot", 19.7),
                                       (1000, 1000, 250, "tok_s", 11528.0), (5000, 500, 1, "ttft", 77.5),
                                       (20000, 2000, 1, "ttft", 403.0), (20000, 2000, 1, "tpot", 5.06)):
        unit = "tok/s" if metric == "tok_s" else "ms"
        label = "itl" if metric == "tpot" else metric
        cases.append(Case(f"nim-{isl}x{osl}-c{c}-{label}", NIM, value, unit,
                          lambda i=isl, o=osl, cc=c, m=metric: nim(m, i, o, cc)))
    for isl, osl, h100, h200 in ((128, 128, 28312, 27911), (1000, 1000, 15220, 17744), (2048, 128, 3450, 3538),
                                 (2048, 2048, 9305, 12194), (5000, 500, 3459, 3902), (20000, 2000, 1351, 1804)):
        for gpu, value in (("h100", h100), ("h200", h200)):
            cases.append(Case(f"trtllm-offline-{gpu}-{isl}x{osl}", TRTLLM, float(value), "tok/s",
                              lambda g=gpu, i=isl, o=osl: offline_tok_s(g, i, o)))
    for prompt_tokens, published in EP_PREFILL_ROWS:
        cases.append(Case(f"sglang-ep-prefill-h100-{prompt_tokens}tok", EP_PREFILL, float(published), "tok/s",
                          lambda p=prompt_tokens: ep_prefill_tok_s_per_node(p)))
    return cases


SKIPPED = {
    "DeepEP dispatch/combine (deepseek-ai/DeepEP docs)":
        "the DeepEP link constants were set from these rows (see bench/bench_parallel_checks.py)",
    "NIM 20000/2000 saturation (about 1,337 tok/s)": "the page gives no concurrency for it",
}


def run_cases(names: list[str] | None = None) -> list[Result]:
    """Predict the named cases (all when `names` is None); raise ValueError for an unknown name."""
    cases = build_cases()
    if names:
        known = {c.name for c in cases}
        bad = [n for n in names if n not in known]
        if bad:
            raise ValueError(f"unknown case {bad[0]!r}; run with --list to see the names")
        cases = [c for c in cases if c.name in names]
    return [Result(case, float(case.predict())) for case in cases]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case in build_cases():
            print(f"{case.name:<36} {case.measured:>10g} {case.unit:<6} {case.source}")
        return 0
    try:
        results = run_cases(args.case)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{'case':<36} {'predicted':>11} {'measured':>10} {'unit':<6} {'error':>8}")
    for r in results:
        print(f"{r.case.name:<36} {r.predicted:11.4g} {r.case.measured:10.4g} {r.case.unit:<6} {100 * r.error:+7.1f}%")
    errors = sorted(abs(r.error) for r in results)
    if len(errors) > 1:
        print(f"\n{len(errors)} cases: median |error| {100 * errors[len(errors) // 2]:.1f}%, "
              f"max {100 * errors[-1]:.1f}%")
    if not args.case:
        print("\nnot simulated:")
        for name, reason in SKIPPED.items():
            print(f"  {name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
