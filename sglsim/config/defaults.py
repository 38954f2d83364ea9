"""The built-in demo scenario that `sglsim simulate` runs without arguments."""

from __future__ import annotations

from .scenario import validate_scenario

DEMO_SCENARIO = validate_scenario({
    "model": "llama-3.1-8b",
    "gpu": "h100",
    "server": {"tp": 1},
    "cluster": {"replicas": 2, "router": "cache_aware"},
    "workload": {
        "num_requests": 2000,
        "rate": 2.0,
        "shared_prefix": {"num_groups": 16, "system_prompt_len": 2048, "turns": 4, "think_time_s": 5.0},
        "input_len": {"dist": "lognormal", "mean": 400, "cv": 1.0, "max": 8000},
        "output_len": {"dist": "lognormal", "mean": 250, "cv": 1.0, "max": 2000},
        "seed": 0,
    },
    "slo": {"ttft_s": 1.0, "tpot_s": 0.05},
}, "built-in demo scenario")
"""Chat sessions of 4 turns in 16 system-prompt groups, arriving at 2 sessions/s, on 2 x H100."""
