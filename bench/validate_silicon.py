"""Compare simulated TTFT and TPOT with the measured deployments of aiconfigurator's silicon_sample.csv.

Usage: python bench/validate_silicon.py [--wheel PATH] [--backends sglang] [--modes agg,disagg] [--fit] [--write]

`silicon_rows.py` turns each row of `aiconfigurator_core/systems/silicon_sample.csv`
(aiconfigurator-core 0.12.0) into a scenario: an aggregated server or a pair of
prefill and decode pools with the row's TP, attention DP and EP, driven by the
load of the harness that measured it. Rows the simulator cannot express are
counted per skip reason. Errors are reported per (system, backend, mode) group.

`--fit` fits the serving-overhead constants (`--fit-constants`) on the
aggregated SGLang rows of h100_sxm only; every other row stays an evaluation
row. `--write`
stores the fitted values under `serving_overheads` in
`sglsim/data/efficiency_presets.yaml`, where they apply to every GPU.
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from aic_wheel import DEFAULT_CACHE, WHEEL_VERSION, import_pandas, locate_package, write_presets  # noqa: E402
from silicon_report import (FIT_BACKEND, FIT_MODE, FIT_SYSTEM, is_fit, print_groups,  # noqa: E402
                            print_rejections, print_rows)
from silicon_rows import SiliconCase, build_scenario, classify  # noqa: E402

from sglsim.config.scenario import validate_scenario  # noqa: E402
from sglsim.costs.efficiency import DEFAULT_EFFICIENCY, PRESETS_PATH, read_presets  # noqa: E402
from sglsim.errors import ConfigError  # noqa: E402
from sglsim.simulation import Simulation  # noqa: E402

DEFAULT_MAX_REQUESTS = 20_000
"""Default cap on the requests simulated per row. Rows of more clients run fewer requests per client
(at least 2) than their harness sent, which bounds the run time of the largest P/D rows."""
MIN_REQUESTS_PER_CLIENT = 2
DEFAULT_FIT_CONSTANTS = ("graph_launch_s",)
"""Constants fitted by default. The scheduler's CPU constants hide behind the GPU step under the
overlap scheduler in these rows. Fitting launch_overhead_s as well raised the TTFT error."""


@dataclass(frozen=True)
class CaseResult:
    case: SiliconCase
    ttft_ms: float
    tpot_ms: float
    error: str = ""
    requests_per_client: int = 0
    """Requests per client the simulation ran."""


def requests_per_client(case: SiliconCase, requested: int | None, max_requests: int | None) -> int:
    """Requests per client to simulate: `requested`, else the harness's, cut to fit `max_requests`."""
    per_client = requested or case.harness.requests_per_client
    if max_requests is not None and case.concurrency * per_client > max_requests:
        per_client = max(max_requests // case.concurrency, MIN_REQUESTS_PER_CLIENT)
    return per_client


def simulate_case(case: SiliconCase, overrides: dict[str, float], requests: int | None = None) -> CaseResult:
    """Run one row's scenario with `requests` requests per client (default: its harness's) and
    return its mean TTFT and TPOT in ms."""
    per_client = requests or case.harness.requests_per_client
    try:
        summary = Simulation(validate_scenario(build_scenario(case, overrides, per_client))).run().summary
    except ConfigError as exc:
        return CaseResult(case, math.nan, math.nan, str(exc), per_client)
    return CaseResult(case, summary["ttft_s"]["mean"] * 1e3, summary["tpot_s"]["mean"] * 1e3, "", per_client)


def _run_one(job: tuple[SiliconCase, dict[str, float], int]) -> CaseResult:
    return simulate_case(*job)


def simulate_all(cases: list[SiliconCase], overrides: dict[str, float], requested: int | None,
                 max_requests: int | None, jobs: int) -> list[CaseResult]:
    """Simulate every case, `jobs` at a time; see `requests_per_client` for the request counts."""
    work = [(case, overrides, requests_per_client(case, requested, max_requests)) for case in cases]
    if jobs <= 1:
        return [_run_one(item) for item in work]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_run_one, work, chunksize=4))


def fit_overheads(cases: list[SiliconCase], names: list[str], start: dict[str, float],
                  requested: int | None, max_requests: int | None, jobs: int) -> dict[str, float]:
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
        for result in simulate_all(cases, overrides, requested, max_requests, jobs):
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


def load_cases(package: Path, systems: set[str] | None, backends: set[str] | None, modes: set[str] | None,
               limit: int | None) -> tuple[list[SiliconCase], dict[str, int]]:
    """Classify the selected rows; return the expressible cases and the skipped-row count per reason."""
    frame = import_pandas().read_csv(package / "systems" / "silicon_sample.csv")
    cases: list[SiliconCase] = []
    skipped: dict[str, int] = {}
    for row in frame.to_dict("records"):
        if (systems and row["system"] not in systems) or (backends and row["backend"] not in backends) \
                or (modes and row["mode"] not in modes):
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
    parser.add_argument("--modes", help="comma-separated serving modes to run: agg, disagg (default: both)")
    parser.add_argument("--requests-per-client", type=int,
                        help="requests per client (default: the measuring harness's, 10)")
    parser.add_argument("--range-ratio", type=float,
                        help="draw lengths from [int(len x R), len] for every row instead of its harness's "
                             "(1: fixed lengths), to see what the load model changes")
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS,
                        help=f"requests simulated per row at most; larger rows run fewer requests per client, "
                             f"at least {MIN_REQUESTS_PER_CLIENT} (default %(default)s; 0: no limit)")
    parser.add_argument("--jobs", type=int, default=2, help="simulations run in parallel (default 2)")
    parser.add_argument("--limit", type=int, help="run only the first N expressible rows")
    parser.add_argument("--fit", action="store_true",
                        help=f"fit the serving overheads on the {FIT_MODE} {FIT_BACKEND} rows of {FIT_SYSTEM}")
    parser.add_argument("--fit-constants", default=",".join(DEFAULT_FIT_CONSTANTS),
                        help="comma-separated Efficiency fields to fit (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help=f"store the fitted overheads in {PRESETS_PATH}")
    parser.add_argument("--rows", action="store_true", help="print every row, simulated against measured")
    parser.add_argument("--csv", type=Path, help="write every row's result to this CSV file")
    args = parser.parse_args(argv)
    if args.requests_per_client is not None and args.requests_per_client < 1:
        parser.error(f"invalid --requests-per-client {args.requests_per_client}: expected at least 1")
    if args.max_requests < 0:
        parser.error(f"invalid --max-requests {args.max_requests}: expected 0 (no limit) or a positive count")
    max_requests = args.max_requests or None
    if args.range_ratio is not None and not 0 <= args.range_ratio <= 1:
        parser.error(f"invalid --range-ratio {args.range_ratio}: expected a number in [0, 1]")
    if args.write and not args.fit:
        parser.error("--write needs --fit")

    package = locate_package(args.wheel, args.cache)
    systems = set(args.systems.split(",")) if args.systems else None
    backends = set(args.backends.split(",")) if args.backends else None
    modes = set(args.modes.split(",")) if args.modes else None
    cases, skipped = load_cases(package, systems, backends, modes, args.limit)
    if args.range_ratio is not None:
        cases = [replace(c, harness=replace(c.harness, range_ratio=args.range_ratio)) for c in cases]
    print(f"aiconfigurator-core {WHEEL_VERSION} silicon_sample.csv: {len(cases)} rows expressible, "
          f"{sum(skipped.values())} skipped")
    for reason, count in sorted(skipped.items(), key=lambda item: -item[1]):
        print(f"  skipped {count:>5}: {reason}")

    overrides: dict[str, float] = {}
    if args.fit:
        names = [n.strip() for n in args.fit_constants.split(",") if n.strip()]
        fit_cases = [c for c in cases if is_fit(c)]
        if not fit_cases:
            parser.error(f"--fit found no {FIT_MODE} {FIT_BACKEND} rows of {FIT_SYSTEM} among the selected rows")
        # Start from the dataclass defaults, so the fit does not depend on an earlier fit's output.
        start = {n: getattr(DEFAULT_EFFICIENCY, n) for n in names}
        before = simulate_all(fit_cases, start, args.requests_per_client, max_requests, args.jobs)
        print_groups(before, "fit rows with the kernel presets and default overheads (before the fit):")
        overrides = fit_overheads(fit_cases, names, start, args.requests_per_client, max_requests, args.jobs)
        print(f"\nfitted on {len(fit_cases)} {FIT_MODE} {FIT_SYSTEM} {FIT_BACKEND} rows: {overrides}")
    results = simulate_all(cases, overrides, args.requests_per_client, max_requests, args.jobs)
    print_groups(results, "with the fitted constants:" if args.fit else "with the packaged constants:")
    print_rejections(results)
    if args.rows:
        print_rows(results)
    if args.csv:
        records = [{**asdict(r.case), "ttft_ms": r.ttft_ms, "tpot_ms": r.tpot_ms, "error": r.error,
                    "requests_per_client": r.requests_per_client} for r in results]
        import_pandas().DataFrame(records).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.write:
        presets = read_presets(PRESETS_PATH)
        presets["serving_overheads"] = overrides
        presets["serving_overheads_source"] = (f"bench/validate_silicon.py --fit on the {FIT_MODE} {FIT_BACKEND} "
                                               f"rows of {FIT_SYSTEM} in aiconfigurator-core {WHEEL_VERSION} "
                                               "silicon_sample.csv")
        write_presets(PRESETS_PATH, presets)
        print(f"wrote {PRESETS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
