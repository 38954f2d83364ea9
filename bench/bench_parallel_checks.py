"""Check the parallelism laws against published measurements and print predicted vs measured.

Three tables:

1. NCCL all-reduce on one DGX H100 (8 GPUs on NVSwitch): Vidur's profile
   (microsoft/vidur data/profiling/network/h100_dgx/all_reduce.csv, medians).
2. DeepEP dispatch and combine on H800 GPUs with one 400 Gb/s NIC each
   (deepseek-ai/DeepEP docs/legacy.md): normal kernels at 4096 tokens per rank
   report a "bottleneck bandwidth" in GB/s, low-latency kernels at 128 tokens a
   time in microseconds. The benchmark's own byte counts are used to turn the
   predicted time into its bandwidth figure.
3. SGLang's large-scale EP prefill (lmsys.org blog, 2025-05-05): DeepSeek-V3
   FP8 on 4 nodes of 8 H100 (TP32, DP attention 32, EP32, DeepEP normal mode,
   two-batch overlap, 32 redundant experts), 1K/2K/4K-token prompts, one
   output token so that prefill alone binds; input tokens/s per node.

Run: `.venv/bin/python bench/bench_parallel_checks.py` (about a second).
"""

from __future__ import annotations

from typing import Any

from sglsim.costs.collectives import (deepep_low_latency_time, deepep_normal_time, nccl_all_reduce_time,
                                      nodes_hit_per_token, ranks_hit_per_token)
from sglsim.costs.efficiency import DEFAULT_EFFICIENCY
from sglsim.costs.ops import FLOAT_OPS
from sglsim.costs.params import HardwareParams, ModelParams, ParallelParams
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.models import get_model
from sglsim.simulation import simulate

MiB = 1024 * 1024

# (ranks, message MiB, measured ms): Vidur's NCCL all-reduce profile on a DGX H100.
ALL_REDUCE_ROWS = [(8, 1, 0.034), (8, 16, 0.115), (8, 32, 0.196), (8, 64, 0.34), (2, 64, 0.245), (4, 64, 0.318)]
# (EP, measured dispatch GB/s, measured combine GB/s): DeepEP normal kernels, 4096 tokens per rank.
DEEPEP_NORMAL_ROWS = [(8, 153, 158), (16, 43, 43), (32, 58, 57)]
# (EP, measured dispatch us, measured combine us): DeepEP low-latency kernels, 128 tokens per rank.
DEEPEP_LL_ROWS = [(8, 77, 114), (16, 118, 195), (32, 155, 273), (64, 173, 314)]
# (prompt tokens, published input tokens/s per node): SGLang's large-scale EP prefill.
EP_PREFILL_ROWS = [(1024, 57674), (2048, 54543), (4096, 50302)]

HIDDEN = 7168
FP8_DISPATCH_BYTES = HIDDEN * (1 + 4 / 128)
BF16_COMBINE_BYTES = HIDDEN * 2


def all_reduce_rows() -> list[dict[str, Any]]:
    """NCCL's all-reduce law on an H100 node against Vidur's measured medians."""
    hw = HardwareParams.from_gpu(get_gpu("h100"))
    rows = []
    for ranks, size_mib, measured_ms in ALL_REDUCE_ROWS:
        predicted = nccl_all_reduce_time(FLOAT_OPS, size_mib * MiB, ranks, hw, DEFAULT_EFFICIENCY, 1) * 1e3
        rows.append({"case": f"{ranks} GPUs, {size_mib} MiB", "unit": "ms", "predicted": predicted,
                     "measured": measured_ms})
    return rows


def _deepep_setup(ep: int) -> tuple[ModelParams, ParallelParams, HardwareParams]:
    # DeepSeek-V3's routing (256 experts, top-8); DeepEP's benchmark limits tokens to min(nodes, 4) nodes.
    model = ModelParams.from_spec(get_model("deepseek-v3"))
    return model, ParallelParams(tp=ep, ep=ep), HardwareParams.from_gpu(get_gpu("h800"))


def deepep_rows() -> list[dict[str, Any]]:
    """DeepEP's normal and low-latency kernels on H800s against its published benchmark."""
    rows = []
    for ep, dispatch_gbs, combine_gbs in DEEPEP_NORMAL_ROWS:
        model, par, hw = _deepep_setup(ep)
        # DeepEP counts received tokens (intranode) or tokens x destination nodes (internode).
        copies = ranks_hit_per_token(par, model) if ep <= 8 else nodes_hit_per_token(FLOAT_OPS, par, model, hw)
        for kind, token_bytes, measured in (("dispatch", FP8_DISPATCH_BYTES, dispatch_gbs),
                                            ("combine", BF16_COMBINE_BYTES, combine_gbs)):
            seconds = deepep_normal_time(FLOAT_OPS, 4096, token_bytes, model, par, hw, DEFAULT_EFFICIENCY, 1)
            rows.append({"case": f"normal EP{ep} {kind}", "unit": "GB/s",
                         "predicted": 4096 * copies * token_bytes / seconds / 1e9, "measured": measured})
    for ep, dispatch_us, combine_us in DEEPEP_LL_ROWS:
        model, par, hw = _deepep_setup(ep)
        for kind, token_bytes, measured in (("dispatch", FP8_DISPATCH_BYTES, dispatch_us),
                                            ("combine", BF16_COMBINE_BYTES, combine_us)):
            seconds = deepep_low_latency_time(FLOAT_OPS, 128, token_bytes, model, par, hw, DEFAULT_EFFICIENCY, 1)
            rows.append({"case": f"low-latency EP{ep} {kind}", "unit": "us", "predicted": seconds * 1e6,
                         "measured": measured})
    return rows


def ep_prefill_scenario(prompt_tokens: int, two_batch_overlap: bool = True) -> dict[str, Any]:
    """SGLang's published prefill server (4 nodes of 8 H100), fed prompts that fill 6 steps per rank."""
    per_rank_step = 16384 // prompt_tokens
    return {
        "model": "deepseek-v3",
        "gpu": "h100",
        "server": {"tp": 32, "dp": 32, "enable_dp_attention": True, "moe_a2a_backend": "deepep",
                   "deepep_mode": "normal", "enable_two_batch_overlap": two_batch_overlap,
                   "moe_dense_tp_size": 1, "enable_dp_lm_head": True, "disable_radix_cache": True,
                   "chunked_prefill_size": 524288, "max_running_requests": 8192, "max_total_tokens": 131072,
                   "context_length": 8192, "ep_num_redundant_experts": 32, "mem_fraction_static": 0.85},
        "workload": {"num_requests": 32 * per_rank_step * 6, "input_len": prompt_tokens, "output_len": 1},
    }


def ep_prefill_rows(two_batch_overlap: bool = True) -> list[dict[str, Any]]:
    """Predicted input tokens/s per node of the large-scale EP prefill case."""
    rows = []
    for prompt_tokens, published in EP_PREFILL_ROWS:
        result = simulate(ep_prefill_scenario(prompt_tokens, two_batch_overlap))
        per_node = result.summary["input_throughput_tok_s"] / 4
        rows.append({"case": f"{prompt_tokens}-token prompts", "unit": "tok/s/node", "predicted": per_node,
                     "measured": published})
    return rows


def _error(row: dict[str, Any]) -> float:
    return (row["predicted"] - row["measured"]) / row["measured"] * 100


def format_table(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [title, f"{'case':<28} {'unit':>10} {'predicted':>12} {'measured':>10} {'error':>8}"]
    for row in rows:
        lines.append(f"{row['case']:<28} {row['unit']:>10} {row['predicted']:>12,.3f} {row['measured']:>10,}"
                     f" {_error(row):>+7.1f}%")
    return "\n".join(lines)


def main() -> None:
    print(format_table("NCCL all-reduce, DGX H100", all_reduce_rows()))
    print()
    print(format_table("DeepEP on H800 + 400 Gb/s InfiniBand", deepep_rows()))
    print()
    print(format_table("Large-scale EP prefill, DeepSeek-V3 on 4 x 8 H100 (two-batch overlap)", ep_prefill_rows()))
    print()
    print(format_table("Same, two-batch overlap off", ep_prefill_rows(two_batch_overlap=False)))


if __name__ == "__main__":
    main()
