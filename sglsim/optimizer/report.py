"""What `sglsim optimize` prints and writes: the chosen configuration, runners-up, Pareto front, verification, launch commands."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .deployment import launch_commands, scenario_for
from .planner import DeploymentPlanner
from .result import Candidate, OptimizeResult
from .verify import Verification, VerifiedCandidate


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (JSON has no inf or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def config_text(c: Candidate) -> str:
    """E.g. 'disaggregated N_p=1 N_d=1 TP=8 c=8192 B_tok=16384 B_req=48'."""
    return f"{c.problem} " + " ".join(f"{k}={v:g}" for k, v in c.config.items())


def build_output(planner: DeploymentPlanner, analytic: OptimizeResult, frozen: Mapping[str, float],
                 verification: Verification | None) -> dict[str, Any]:
    """Build the best.json document (docs/optimizer.md lists its fields)."""
    slo = planner.spec.slo
    best_verified = verification.best if verification is not None else None
    best: dict[str, Any] | None = None
    chosen = best_verified.candidate if best_verified is not None else analytic.best
    if chosen is not None:
        scenario = scenario_for(planner.base, chosen.problem, chosen.config)
        best = {"deployment": chosen.problem, "config": chosen.config,
                "predicted": planner.predict(chosen, frozen),
                "simulated": best_verified.simulated(slo) if best_verified is not None else None,
                "verified": best_verified is not None,
                "launch": launch_commands(scenario)}
    doc = {
        "problem": {"gpus": planner.spec.gpus, "gpu": planner.base.gpu, "model": planner.base.model,
                    "gpu_memory_bytes": planner.memory_bytes, "memory_safety_margin": planner.spec.memory_safety_margin,
                    "objective": planner.spec.objective, "pareto_objectives": list(planner.spec.pareto),
                    "slo": {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s, "ttft_percentile": slo.ttft_percentile,
                            "tpot_percentile": slo.tpot_percentile},
                    "goodput_mode": planner.spec.goodput},
        "best": best,
        "analytic": {"status": analytic.status, "success": analytic.success, "message": analytic.message,
                     "method": analytic.method, "evaluations": analytic.nfev, "wall_time_s": analytic.wall_time_s,
                     "infeasibility": analytic.infeasibility},
        "frozen": dict(frozen),
        "candidates": [_candidate(planner, c, frozen) for c in analytic.candidates],
        "pareto": [_candidate(planner, c, frozen) for c in analytic.pareto],
        "verification": _verification(verification, slo) if verification is not None else {"enabled": False},
    }
    return _clean(doc)


def _candidate(planner: DeploymentPlanner, c: Candidate, frozen: Mapping[str, float]) -> dict[str, Any]:
    return {"deployment": c.problem, "config": c.config, "objectives": c.objectives, "slacks": c.slacks,
            "predicted": planner.predict(c, frozen)}


def _verification(v: Verification, slo: Any) -> dict[str, Any]:
    return {"enabled": True, "converged": v.converged, "iterations": v.iterations, "simulations": v.simulations,
            "cached_runs": v.cached_runs, "frozen": v.frozen,
            "candidates": [{**vc.to_dict(slo), "iterations": len(v.iterations)} for vc in v.ranked]}


def write_output(path: str | Path, doc: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=2))


# ----- text -----

def _fmt(value: Any, unit: str = "", digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}{unit}"


def side_by_side(rows: Sequence[VerifiedCandidate], slo: Any) -> str:
    """Predicted vs simulated TTFT, TPOT and throughput per GPU of every simulated candidate."""
    head = (f"{'configuration':<58} {'TTFT pred/sim (s)':>19} {'TPOT pred/sim (ms)':>19} "
            f"{'tok/s/GPU pred/sim':>19} {'goodput req/s':>13}  SLOs")
    lines = [head]
    for vc in rows:
        sim = vc.simulated(slo)
        p = vc.predicted
        tpot_pred = p.get("tpot_s")
        tpot_sim = sim.get("tpot_s")
        lines.append(
            f"{config_text(vc.candidate):<58.58} {_fmt(p.get('ttft_s'), '', 3):>9}/{_fmt(sim.get('ttft_s'), '', 3):<9} "
            f"{_fmt(tpot_pred * 1e3 if tpot_pred is not None else None, '', 3):>9}/"
            f"{_fmt(tpot_sim * 1e3 if tpot_sim is not None else None, '', 3):<9} "
            f"{_fmt(p.get('throughput_tok_s_per_gpu'), '', 4):>9}/{_fmt(sim.get('throughput_tok_s_per_gpu'), '', 4):<9} "
            f"{_fmt(vc.search.rate_req_s, '', 4):>13}  {'met' if vc.meets_slo else 'missed'}")
    return "\n".join(lines)


def candidates_table(title: str, candidates: Sequence[Candidate], names: Sequence[str],
                     collapse_ties: bool = False) -> str:
    """Numbered configurations with their objective values; ties may be folded into the first of them."""
    lines = [title]
    rows: list[tuple[Candidate, int]] = []
    for c in candidates:
        if collapse_ties and rows and rows[-1][0].problem == c.problem and rows[-1][0].objectives == c.objectives:
            rows[-1] = (rows[-1][0], rows[-1][1] + 1)
        else:
            rows.append((c, 0))
    for i, (c, ties) in enumerate(rows, 1):
        values = ", ".join(f"{n} {_fmt(c.objectives[n])}" for n in names)
        more = f" (+{ties} with other knobs, same prediction)" if ties else ""
        lines.append(f"  {i:>2}. {config_text(c)}: {values}{more}")
    return "\n".join(lines)


def summary_text(doc: Mapping[str, Any], analytic: OptimizeResult, verification: Verification | None,
                 slo: Any) -> str:
    """Format the text report printed after a run."""
    out = []
    names = [doc["problem"]["objective"]] + [p for p in doc["problem"]["pareto_objectives"]
                                             if p != doc["problem"]["objective"]]
    out.append(f"Analytic search ({analytic.method}, {analytic.nfev:,} configurations, "
               f"{analytic.wall_time_s:.2f} s): {analytic.message}")
    best = doc["best"]
    if best is None:
        return "\n".join(out)
    out.append("")
    tag = "verified by simulation" if best["verified"] else "NOT verified: analytic prediction only"
    config = " ".join(f"{k}={v:g}" for k, v in best["config"].items())
    out.append(f"Chosen configuration ({tag}): {best['deployment']} {config}")
    p, s = best["predicted"], best["simulated"] or {}
    out.append(f"  predicted: TTFT {_fmt(p['ttft_s'])} s, TPOT {_fmt(p['tpot_s'])} s, "
               f"{_fmt(p['throughput_tok_s'])} tok/s ({_fmt(p['throughput_tok_s_per_gpu'])} per GPU), "
               f"{_fmt(p['num_gpus'])} GPUs")
    if s:
        out.append(f"  simulated: {slo.ttft_percentile} TTFT {_fmt(s['ttft_s'])} s, {slo.tpot_percentile} TPOT "
                   f"{_fmt(s['tpot_s'])} s, {_fmt(s['throughput_tok_s'])} tok/s "
                   f"({_fmt(s['throughput_tok_s_per_gpu'])} per GPU) at {_fmt(s['request_rate_req_s'])} req/s")
    out.append("")
    out.append(candidates_table("Runners-up (analytic ranking):", analytic.candidates[1:], names))
    out.append("")
    out.append(candidates_table("Pareto front (analytic):", analytic.pareto, names, collapse_ties=True))
    if verification is not None:
        out.append("")
        state = "converged" if verification.converged else "stopped at the iteration limit"
        out.append(f"Verification: {len(verification.iterations)} ranking iterations ({state}), "
                   f"{verification.simulations} simulations, {verification.cached_runs} answered from the store")
        out.append(side_by_side(verification.ranked, slo))
    out.append("")
    out.append("SGLang launch commands:")
    out.extend(f"  {line}" for line in best["launch"])
    return "\n".join(out)
