"""Compare simulated TTFT and TPOT with the measured deployments of aiconfigurator's silicon_sample.csv.

Usage: python bench/validate_silicon.py [--wheel PATH] [--backends sglang] [--fit] [--write]

Each row of `aiconfigurator_core/systems/silicon_sample.csv` (aiconfigurator-core
0.12.0) is one benchmark of a model on `tp_size` GPUs of `system`. There,
`silicon_concurrency` clients run a closed loop, each sending `isl` prompt
tokens and reading `osl` output tokens, and `silicon_ttft_ms` and
`silicon_tpot_ms` are the measured mean TTFT and TPOT.
Rows the simulator can express today (aggregated serving, tensor parallelism
only, full attention, BF16/FP8/NVFP4 weights) run as a closed-loop simulation
with `--requests-per-client` requests per client. The others are counted per
skip reason. Errors are reported per (system, backend) group.

`--fit` fits the serving-overhead constants (`--fit-constants`) on the SGLang
rows of h100_sxm only; every other row stays an evaluation row. `--write`
stores the fitted values under `serving_overheads` in
`sglsim/data/efficiency_presets.yaml`, where they apply to every GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from aic_wheel import DEFAULT_CACHE, WHEEL_VERSION, import_pandas, locate_package, write_presets  # noqa: E402

from sglsim.config.scenario import validate_scenario  # noqa: E402
from sglsim.costs.efficiency import DEFAULT_EFFICIENCY, PRESETS_PATH, read_presets  # noqa: E402
from sglsim.errors import ConfigError  # noqa: E402
from sglsim.simulation import Simulation  # noqa: E402

FIT_SYSTEM = "h100_sxm"
FIT_BACKEND = "sglang"
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
DEFAULT_FIT_CONSTANTS = ("graph_launch_s",)
"""Constants fitted by default. The scheduler's CPU constants hide behind the GPU step under the
overlap scheduler in these rows. Fitting launch_overhead_s as well raised the TTFT error."""


@dataclass(frozen=True)
class SiliconCase:
    """One measured deployment the simulator can express."""

    row_id: str
    system: str
    backend: str
    model: str
    config_path: str
    gpu: str
    tp: int
    quantization: str | None
    isl: int
    osl: int
    concurrency: int
    measured_ttft_ms: float
    measured_tpot_ms: float


@dataclass(frozen=True)
class CaseResult:
    case: SiliconCase
    ttft_ms: float
    tpot_ms: float
    error: str = ""


def _int(value) -> int:
    return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _architecture_gap(config: dict) -> str | None:
    """Name the attention feature of a Hugging Face config that the cost laws do not model."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    layer_types = set(text.get("layer_types") or [])
    if layer_types - {"full_attention"}:
        return "hybrid, linear or sliding-window attention"
    if text.get("index_topk"):
        return "sparse attention (DSA)"
    if text.get("use_sliding_window") and text.get("sliding_window"):
        return "hybrid, linear or sliding-window attention"
    return None


def classify(row: dict, model_dir: Path) -> SiliconCase | str:
    """Return the case of one CSV row, or the reason the simulator cannot express it."""
    if row["mode"] != "agg":
        return "disaggregated serving"
    if _int(row["moe_ep_size"]) > 1:
        return "expert parallelism"
    if _int(row["attention_dp_size"]) > 1:
        return "DP attention"
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

    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    tp = _int(row["tp_size"])
    if tp < 1 or _int(text.get("num_attention_heads")) % tp:
        return "attention heads not divisible by TP (needs DP attention)"
    is_moe = bool(text.get("num_local_experts") or text.get("num_experts") or text.get("n_routed_experts"))
    if is_moe and _int(row["moe_tp_size"]) not in (0, tp):
        return "MoE TP size differs from TP"

    match = re.search(r"silicon_concurrency=(\d+)", str(row["silicon_data_source"]))
    concurrency = int(match.group(1)) if match else _int(row["batch_size"])
    return SiliconCase(str(row["id"]), row["system"], row["backend"], row["model_path"], str(config_path),
                       SYSTEM_GPUS[row["system"]], tp, PRECISION_QUANTIZATION[precision], int(row["isl"]),
                       int(row["osl"]), concurrency, float(row["silicon_ttft_ms"]),
                       float(row["silicon_tpot_ms"]))


def simulate_case(case: SiliconCase, overrides: dict[str, float], requests_per_client: int) -> CaseResult:
    """Run one closed-loop simulation and return its mean TTFT and TPOT in ms."""
    scenario = {
        "model": case.config_path, "gpu": case.gpu,
        # vLLM and TensorRT-LLM batch prefill chunks with running decodes by default; SGLang's
        # mixed chunk mode is the nearest SGLang configuration.
        "server": {"tp": case.tp, "quantization": case.quantization,
                   "enable_mixed_chunk": case.backend != "sglang"},
        "workload": {"concurrency": case.concurrency, "input_len": case.isl, "output_len": case.osl,
                     "num_requests": case.concurrency * requests_per_client},
        "efficiency": overrides,
    }
    try:
        summary = Simulation(validate_scenario(scenario)).run().summary
    except ConfigError as exc:
        return CaseResult(case, math.nan, math.nan, str(exc))
    return CaseResult(case, summary["ttft_s"]["mean"] * 1e3, summary["tpot_s"]["mean"] * 1e3)


def _run_one(job: tuple[SiliconCase, dict[str, float], int]) -> CaseResult:
    return simulate_case(*job)


def simulate_all(cases: list[SiliconCase], overrides: dict[str, float], requests_per_client: int,
                 jobs: int) -> list[CaseResult]:
    work = [(case, overrides, requests_per_client) for case in cases]
    if jobs <= 1:
        return [_run_one(item) for item in work]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_run_one, work, chunksize=4))


def fit_overheads(cases: list[SiliconCase], names: list[str], start: dict[str, float],
                  requests_per_client: int, jobs: int) -> dict[str, float]:
    """Fit serving-overhead constants so simulated TTFT and TPOT match the measured ones.

    Least squares on log(simulated / measured) of both metrics, with a soft-L1
    loss so that a few rows far off (queueing-dominated TTFT) do not dominate.
    Constants are searched in log space within [1 us, 10 ms]; finite
    differences use 5 % steps because simulated times move in whole steps.
    """
    from scipy.optimize import least_squares

    def residuals(x: np.ndarray) -> np.ndarray:
        overrides = {n: float(v) for n, v in zip(names, np.exp(x))}
        out = []
        for result in simulate_all(cases, overrides, requests_per_client, jobs):
            if result.error:
                out += [0.0, 0.0]
                continue
            out += [math.log(result.ttft_ms / result.case.measured_ttft_ms),
                    math.log(result.tpot_ms / result.case.measured_tpot_ms)]
        return np.array(out)

    lower, upper = math.log(1e-6), math.log(1e-2)
    x0 = np.clip(np.log([max(start[n], 1e-6) for n in names]), lower + 1e-6, upper - 1e-6)
    solution = least_squares(residuals, x0, bounds=(lower, upper), loss="soft_l1", f_scale=0.2,
                             diff_step=0.05, max_nfev=30)
    return {n: float(f"{v:.4g}") for n, v in zip(names, np.exp(solution.x))}


def error_stats(results: list[CaseResult]) -> dict[str, float]:
    """Median and p90 of |simulated / measured - 1|, and the median signed error, for TTFT and TPOT."""
    ok = [r for r in results if not r.error]
    out: dict[str, float] = {"rows": len(ok)}
    for metric, sim, meas in (("ttft", "ttft_ms", "measured_ttft_ms"), ("tpot", "tpot_ms", "measured_tpot_ms")):
        signed = np.array([getattr(r, sim) / getattr(r.case, meas) - 1 for r in ok]) if ok else np.array([np.nan])
        out[f"{metric}_median"] = float(np.median(np.abs(signed)))
        out[f"{metric}_p90"] = float(np.percentile(np.abs(signed), 90))
        out[f"{metric}_bias"] = float(np.median(signed))
    return out


def print_groups(results: list[CaseResult], title: str) -> None:
    print(f"\n{title}")
    print(f"{'set':<9} {'system':<10} {'backend':<8} {'rows':>5}   {'TTFT |err| med':>14} {'p90':>6} "
          f"{'bias':>6}   {'TPOT |err| med':>14} {'p90':>6} {'bias':>6}")
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.case.system, result.case.backend), []).append(result)
    order = sorted(groups, key=lambda key: (not _is_fit(*key), key))
    for system, backend in order:
        _print_stats("fit" if _is_fit(system, backend) else "eval", system, backend, groups[(system, backend)])
    evaluation = [r for r in results if not _is_fit(r.case.system, r.case.backend)]
    _print_stats("eval", "all", "all", evaluation)
    _print_stats("eval", "all", "sglang", [r for r in evaluation if r.case.backend == "sglang"])


def _is_fit(system: str, backend: str) -> bool:
    return system == FIT_SYSTEM and backend == FIT_BACKEND


def _print_stats(label: str, system: str, backend: str, results: list[CaseResult]) -> None:
    s = error_stats(results)
    if not s["rows"]:
        return
    print(f"{label:<9} {system:<10} {backend:<8} {s['rows']:>5}   {100 * s['ttft_median']:13.1f}% "
          f"{100 * s['ttft_p90']:5.0f}% {100 * s['ttft_bias']:+5.0f}%   {100 * s['tpot_median']:13.1f}% "
          f"{100 * s['tpot_p90']:5.0f}% {100 * s['tpot_bias']:+5.0f}%")


def print_rows(results: list[CaseResult]) -> None:
    print(f"\n{'row':<72} {'c':>5} {'TTFT ms sim':>11} {'meas':>9} {'TPOT ms sim':>11} {'meas':>7}")
    for r in results:
        c = r.case
        note = f"  ({r.error})" if r.error else ""
        print(f"{c.row_id[:72]:<72} {c.concurrency:>5} {r.ttft_ms:11.1f} {c.measured_ttft_ms:9.1f} "
              f"{r.tpot_ms:11.2f} {c.measured_tpot_ms:7.2f}{note}")


def load_cases(package: Path, systems: set[str] | None, backends: set[str] | None,
               limit: int | None) -> tuple[list[SiliconCase], dict[str, int]]:
    frame = import_pandas().read_csv(package / "systems" / "silicon_sample.csv")
    cases: list[SiliconCase] = []
    skipped: dict[str, int] = {}
    for row in frame.to_dict("records"):
        if (systems and row["system"] not in systems) or (backends and row["backend"] not in backends):
            continue
        case = classify(row, package / "model_configs")
        if isinstance(case, str):
            skipped[case] = skipped.get(case, 0) + 1
        else:
            cases.append(case)
    return (cases[:limit] if limit else cases), skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help="local aiconfigurator-core .whl file or unpacked folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheel cache folder (default .whl/)")
    parser.add_argument("--systems", help="comma-separated systems to run (default: all)")
    parser.add_argument("--backends", help="comma-separated backends to run, e.g. sglang (default: all)")
    parser.add_argument("--requests-per-client", type=int, default=4,
                        help="closed-loop requests per client (default 4)")
    parser.add_argument("--jobs", type=int, default=2, help="simulations run in parallel (default 2)")
    parser.add_argument("--limit", type=int, help="run only the first N expressible rows")
    parser.add_argument("--fit", action="store_true",
                        help=f"fit the serving overheads on the {FIT_BACKEND} rows of {FIT_SYSTEM}")
    parser.add_argument("--fit-constants", default=",".join(DEFAULT_FIT_CONSTANTS),
                        help="comma-separated Efficiency fields to fit (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help=f"store the fitted overheads in {PRESETS_PATH}")
    parser.add_argument("--rows", action="store_true", help="print every row, simulated against measured")
    parser.add_argument("--csv", type=Path, help="write every row's result to this CSV file")
    args = parser.parse_args(argv)
    if args.requests_per_client < 1:
        parser.error(f"invalid --requests-per-client {args.requests_per_client}: expected at least 1")
    if args.write and not args.fit:
        parser.error("--write needs --fit")

    package = locate_package(args.wheel, args.cache)
    systems = set(args.systems.split(",")) if args.systems else None
    backends = set(args.backends.split(",")) if args.backends else None
    cases, skipped = load_cases(package, systems, backends, args.limit)
    print(f"aiconfigurator-core {WHEEL_VERSION} silicon_sample.csv: {len(cases)} rows expressible, "
          f"{sum(skipped.values())} skipped")
    for reason, count in sorted(skipped.items(), key=lambda item: -item[1]):
        print(f"  skipped {count:>5}: {reason}")

    overrides: dict[str, float] = {}
    if args.fit:
        names = [n.strip() for n in args.fit_constants.split(",") if n.strip()]
        fit_cases = [c for c in cases if _is_fit(c.system, c.backend)]
        if not fit_cases:
            parser.error(f"--fit found no {FIT_BACKEND} rows of {FIT_SYSTEM} among the selected rows")
        # Start from the dataclass defaults, so the fit does not depend on an earlier fit's output.
        start = {n: getattr(DEFAULT_EFFICIENCY, n) for n in names}
        before = simulate_all(cases, start, args.requests_per_client, args.jobs)
        print_groups(before, "with the kernel presets and default overheads (before the fit):")
        overrides = fit_overheads(fit_cases, names, start, args.requests_per_client, args.jobs)
        print(f"\nfitted on {len(fit_cases)} {FIT_SYSTEM} {FIT_BACKEND} rows: {overrides}")
    results = simulate_all(cases, overrides, args.requests_per_client, args.jobs)
    print_groups(results, "with the fitted constants:" if args.fit else "with the packaged constants:")
    failed = [r for r in results if r.error]
    if failed:
        print(f"\n{len(failed)} rows rejected by the simulator's own checks (left out above), e.g.")
        for reason in sorted({r.error for r in failed})[:3]:
            print(f"  {reason}")
    if args.rows:
        print_rows(results)
    if args.csv:
        import_pandas().DataFrame([{**asdict(r.case), "ttft_ms": r.ttft_ms, "tpot_ms": r.tpot_ms, "error": r.error}
                      for r in results]).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.write:
        presets = read_presets(PRESETS_PATH)
        presets["serving_overheads"] = overrides
        presets["serving_overheads_source"] = (f"bench/validate_silicon.py --fit on the {FIT_BACKEND} rows of "
                                               f"{FIT_SYSTEM} in aiconfigurator-core {WHEEL_VERSION} "
                                               "silicon_sample.csv")
        write_presets(PRESETS_PATH, presets)
        print(f"wrote {PRESETS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
