"""Fit the cost-law efficiency constants of each GPU on SGLang's measured kernel tables.

Usage: python bench/calibrate.py [--wheel PATH] [--gpus h100,h200] [--write]

Reads the SGLang kernel timings of NVIDIA's `aiconfigurator-core` 0.12.0 wheel,
which it downloads into `.whl/` on first use (`--wheel` takes a local `.whl` or
an unpacked folder). For each GPU it fits, with the simulator's own laws:

- GEMM constants on `gemm/sglang/<v>/gemm_perf.parquet`, BF16 rows
  (`torch.nn.Linear`); FP8 (per-tensor and block-scaled) and NVFP4 rows get
  their own GEMM constants, used for models with those weights;
- attention constants on `attention/sglang/<v>/{context,generation}_attention_perf.parquet`,
  BF16 with a BF16 KV cache, full attention, SGLang's default kernel per GPU
  (FA3 on Hopper, FlashInfer on A100, TRT-LLM MHA on Blackwell);
- all-reduce constants on `comm/sglang/<v>/custom_allreduce_perf.parquet`,
  rows captured in a CUDA graph (SGLang replays decode steps as graphs).

Each fit minimises the squared log ratio of predicted to measured latency
(see `sglsim.calibration.fit`). The script prints the median and p90
|relative error| per table with the current constants and with the fitted
ones. `--write` stores the fitted values in `sglsim/data/efficiency_presets.yaml`,
which `sglsim.costs.efficiency.efficiency_for_gpu` loads; the serving
overheads fitted by `bench/validate_silicon.py` in that file are kept.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from aic_wheel import (DEFAULT_CACHE, WHEEL_VERSION, import_pandas, locate_package,  # noqa: E402
                       sglang_table, write_presets)

from sglsim.calibration.fit import ErrorStats, FitResult, fit_constants, table_errors  # noqa: E402
from sglsim.calibration.kernels import (ALL_REDUCE_CONSTANTS, ATTENTION_CONSTANTS,  # noqa: E402
                                        GEMM_CONSTANTS, AllReduceTable, AttentionTable, GemmTable,
                                        select_rows)
from sglsim.costs.efficiency import PRESETS_PATH, Efficiency, read_presets  # noqa: E402
from sglsim.hardware.gpus import get_gpu  # noqa: E402

GPU_SYSTEMS = {"a100": "a100_sxm", "h100": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm",
               "b300": "b300_sxm", "gb200": "gb200", "gb300": "gb300"}
"""sglsim GPU preset -> aiconfigurator system folder."""
ATTENTION_KERNELS = {"a100": "flash_attention", "h100": "fa3", "h200": "fa3"}
"""SGLang's default attention kernel per GPU; Blackwell GPUs default to trtllm_mha."""
BLACKWELL_ATTENTION = "trtllm_mha"
ALL_REDUCE_MAX_RANKS = {"gb200": 4, "gb300": 4}
"""Largest all-reduce fitted per GPU. A GB200/GB300 compute tray has 4 GPUs. From 8 ranks on,
the GB300 table shows a 27-48 us latency floor that neither all-reduce path of the law
produces, so those rows are reported but left out of the fit."""
GEMM_DTYPES = {"bf16": ("bfloat16",), "fp8": ("fp8", "fp8_block"), "fp4": ("nvfp4",)}
"""sglsim weight dtype -> gemm_dtype labels of the GEMM table."""
MS = 1e-3


def gemm_tables(systems: Path, system: str) -> tuple[dict[str, list[GemmTable]], str]:
    path, version = sglang_table(systems, system, "gemm", "gemm_perf.parquet")
    frame = import_pandas().read_parquet(path)
    tables: dict[str, list[GemmTable]] = {}
    for dtype, labels in GEMM_DTYPES.items():
        for label in labels:
            rows = frame[frame.gemm_dtype == label]
            if rows.empty:
                continue
            tables.setdefault(dtype, []).append(GemmTable(
                f"gemm {label}", rows.m.to_numpy(float), rows.n.to_numpy(float), rows.k.to_numpy(float),
                rows.latency.to_numpy(float) * MS, weight_dtype=dtype))
    return tables, version


def attention_tables(systems: Path, system: str, kernel: str) -> tuple[list[AttentionTable], str]:
    out = []
    version = ""
    for phase, filename in (("prefill", "context_attention_perf.parquet"),
                            ("decode", "generation_attention_perf.parquet")):
        path, version = sglang_table(systems, system, "attention", filename)
        frame = import_pandas().read_parquet(path)
        keep = ((frame.kernel_source == kernel) & (frame.attn_dtype == "bfloat16")
                & (frame.kv_cache_dtype == "bfloat16"))
        if "window_size" in frame:  # older tables hold full attention only
            keep &= frame.window_size == 0
        rows = frame[keep]
        if rows.empty:
            raise SystemExit(f"error: {path} has no {kernel} BF16 full-attention rows")
        # Decode rows hold isl prompt tokens plus `step` generated ones in the KV cache.
        seq = rows.isl if phase == "prefill" else rows.isl + rows.step
        out.append(AttentionTable(f"{phase} attention {kernel}", phase, rows.batch_size.to_numpy(float),
                                  seq.to_numpy(float), rows.num_heads.to_numpy(float),
                                  rows.num_key_value_heads.to_numpy(float), rows.head_dim.to_numpy(float),
                                  rows.latency.to_numpy(float) * MS))
    return out, f"{version} {kernel}"


def all_reduce_tables(systems: Path, system: str) -> tuple[list[AllReduceTable], str]:
    path, version = sglang_table(systems, system, "comm", "custom_allreduce_perf.parquet")
    frame = import_pandas().read_parquet(path)
    rows = frame[frame.kernel_source.str.endswith("_graph") & (frame.allreduce_dtype == "bfloat16")]
    if rows.empty:
        raise SystemExit(f"error: {path} has no CUDA-graph BF16 all-reduce rows")
    # message_size counts BF16 elements (64 MiB at 8 ranks takes 0.32 ms on H100, as NCCL's own table).
    table = AllReduceTable("all-reduce (graph)", rows.num_gpus.to_numpy(float),
                           rows.message_size.to_numpy(float) * 2.0, rows.latency.to_numpy(float) * MS)
    return [table], version


def print_errors(gpu: str, source: str, result: FitResult, start: Efficiency, held_out=()) -> None:
    """Print before/after errors on the fitted tables, then on held-out tables (marked `*`)."""
    gpu_spec = get_gpu(gpu)
    rows = list(zip(result.before, result.after, [""] * len(result.before)))
    rows += list(zip(table_errors(held_out, gpu_spec, start), table_errors(held_out, gpu_spec, result.efficiency),
                     ["*"] * len(held_out)))
    for before, after, mark in rows:
        print(f"{gpu:<6} {mark + before.name:<40} {source:<30} {before.count:>6} {_pct(before)} | {_pct(after)}")
    if not result.converged:
        print(f"{gpu:<6} warning: fit did not converge: {result.message}")


def _pct(stats: ErrorStats) -> str:
    return f"{100 * stats.median:6.1f} {100 * stats.p90:6.1f}"


def _large_gemms(tables: list[GemmTable], min_dim: int) -> list[GemmTable]:
    return [select_rows(t, (t.n >= min_dim) & (t.k >= min_dim), f"{t.name} n,k>={min_dim}") for t in tables]


def calibrate_gpu(systems: Path, gpu_name: str, start: Efficiency, min_gemm_dim: int) -> dict:
    """Fit one GPU's constants; return its preset entry (constants, per-dtype GEMM constants, sources)."""
    system = GPU_SYSTEMS[gpu_name]
    gpu = get_gpu(gpu_name)
    kernel = ATTENTION_KERNELS.get(gpu_name, BLACKWELL_ATTENTION)
    gemms, gemm_version = gemm_tables(systems, system)
    attention, attention_version = attention_tables(systems, system, kernel)
    comm, comm_version = all_reduce_tables(systems, system)

    gemm_fit = fit_constants(_large_gemms(gemms["bf16"], min_gemm_dim), gpu, start, GEMM_CONSTANTS)
    print_errors(gpu_name, f"sglang {gemm_version}", gemm_fit, start, gemms["bf16"])
    attention_fit = fit_constants(attention, gpu, start, ATTENTION_CONSTANTS)
    print_errors(gpu_name, f"sglang {attention_version}", attention_fit, start)
    max_ranks = ALL_REDUCE_MAX_RANKS.get(gpu_name)
    fitted_comm = comm if max_ranks is None else [
        select_rows(t, t.ranks <= max_ranks, f"{t.name} ranks<={max_ranks}") for t in comm]
    comm_fit = fit_constants(fitted_comm, gpu, start, ALL_REDUCE_CONSTANTS)
    dropped = sum(t.latency_s.size for t in comm) > sum(t.latency_s.size for t in fitted_comm)
    print_errors(gpu_name, f"sglang {comm_version}", comm_fit, start, comm if dropped else ())
    constants = {**gemm_fit.values, **attention_fit.values, **comm_fit.values}

    by_dtype = {}
    for dtype in ("fp8", "fp4"):
        if dtype not in gemms or (dtype == "fp4" and not gpu.fp4_flops):
            continue
        dtype_fit = fit_constants(_large_gemms(gemms[dtype], min_gemm_dim), gpu, start, GEMM_CONSTANTS)
        print_errors(gpu_name, f"sglang {gemm_version}", dtype_fit, start, gemms[dtype])
        by_dtype[dtype] = _rounded(dtype_fit.values)
    return {
        "system": system,
        "tables": {"gemm": f"sglang {gemm_version}, n and k >= {min_gemm_dim}",
                   "attention": f"sglang {attention_version}",
                   "all_reduce": f"sglang {comm_version} custom all-reduce in a CUDA graph"
                                 + (f", at most {max_ranks} ranks" if max_ranks else "")},
        "constants": _rounded(constants),
        "gemm_by_weight_dtype": by_dtype,
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: float(f"{value:.4g}") for name, value in values.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help="local aiconfigurator-core .whl file or unpacked folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="folder for the downloaded and unpacked wheel (default: .whl/)")
    parser.add_argument("--gpus", default=",".join(GPU_SYSTEMS),
                        help="comma-separated GPU presets to fit (default: all with tables)")
    parser.add_argument("--min-gemm-dim", type=int, default=1024,
                        help="fit GEMM constants on rows with n and k of at least this size (default 1024)")
    parser.add_argument("--write", action="store_true", help=f"write the fitted presets to {PRESETS_PATH}")
    parser.add_argument("--output", type=Path, help="write the presets to this YAML file instead")
    args = parser.parse_args(argv)
    gpus = [g.strip().lower() for g in args.gpus.split(",") if g.strip()]
    bad = [g for g in gpus if g not in GPU_SYSTEMS]
    if bad:
        parser.error(f"invalid --gpus {bad[0]!r}: choose from {', '.join(GPU_SYSTEMS)}")

    package = locate_package(args.wheel, args.cache)
    systems = package / "systems"
    start = Efficiency()
    print(f"aiconfigurator-core {WHEEL_VERSION}: {systems}")
    print("|relative error| in %, median and p90, with the dataclass defaults | with the fitted constants;")
    print("* marks rows evaluated but not fitted (whole tables where the fit used a subset)")
    print(f"{'gpu':<6} {'table':<40} {'source':<30} {'rows':>6} {'before':>13} | {'after':>13}")
    entries = {gpu: calibrate_gpu(systems, gpu, start, args.min_gemm_dim) for gpu in gpus}

    print("\nfitted constants:")
    names = [f.name for f in fields(Efficiency)]
    for gpu, entry in entries.items():
        values = ", ".join(f"{n}={entry['constants'][n]:.4g}" for n in names if n in entry["constants"])
        print(f"  {gpu}: {values}")
        for dtype, override in entry["gemm_by_weight_dtype"].items():
            print(f"  {gpu} {dtype} GEMMs: " + ", ".join(f"{n}={v:.4g}" for n, v in override.items()))

    target = args.output or (PRESETS_PATH if args.write else None)
    if target is not None:
        presets = read_presets(target) if target.exists() else {}
        presets.setdefault("gpus", {}).update(entries)
        presets["kernel_source"] = (f"aiconfigurator-core {WHEEL_VERSION} (PyPI), SGLang kernel tables; "
                                    "fitted by bench/calibrate.py")
        write_presets(target, presets)
        print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
