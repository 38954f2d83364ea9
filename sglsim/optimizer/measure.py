"""Turn a finished simulation into the `RunRecord` verification reads, and run one simulation as a task."""

from __future__ import annotations

from typing import Any, Mapping

from .store import RunRecord

LATENCY_KEYS = ("mean", "p50", "p90", "p95", "p99", "max")


def workload_parameters(result: Any) -> dict[str, float]:
    """Measure the frozen workload parameters of one run (`sglsim.symbolic.freeze`), by attribute name.

    Empty when no request completed, so a run that served nothing freezes nothing.
    """
    from dataclasses import asdict

    from ..symbolic.frozen import freeze

    if len(result.requests["rid"]) == 0:
        return {}
    params = asdict(freeze(result))
    params.pop("num_requests", None)
    return {k: float(v) for k, v in params.items()}


def record_from_result(result: Any) -> RunRecord:
    s = result.summary
    return RunRecord(
        ttft_s={k: s["ttft_s"][k] for k in LATENCY_KEYS},
        tpot_s={k: s["tpot_s"][k] for k in LATENCY_KEYS},
        output_throughput_tok_s=float(s["output_throughput_tok_s"] or 0.0),
        request_throughput_req_s=float(s["request_throughput_req_s"] or 0.0),
        num_gpus=int(result.config["num_gpus"]),
        num_requests=int(s["num_requests"]),
        num_completed=int(s["num_completed"]),
        num_rejected=int(s["num_rejected"]),
        duration_s=float(s["duration_s"]),
        workload=workload_parameters(result),
    )


def simulate_record(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one scenario dict; return its `RunRecord` as a dict (picklable, for executors)."""
    from ..simulation import simulate

    return record_from_result(simulate(dict(scenario))).to_dict()
