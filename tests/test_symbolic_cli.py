"""The explain command, the seed example script and the lazy SymPy import."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from sglsim.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--input-len", "800", "--output-len", "100", "--num-requests", "60", "--concurrency", "16"]


def test_explain_steady_metric(capsys):
    assert main(["explain", "tpot", *SMALL, "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("metric: tpot (steady-state model; s)")
    assert "value at the scenario:" in out
    assert "simulated (whole run" in out
    assert "n_in_avg" in out
    assert "frozen workload parameters" in out
    table = out.split("top sensitivities")[1].strip().splitlines()
    assert len(table) == 1 + 1 + 3  # heading, column names, three rows


def test_explain_trace_metric_is_exact(capsys):
    assert main(["explain", "makespan", *SMALL, "--source", "trace", "--top", "2"]) == 0
    out = capsys.readouterr().out
    value = out.split("value at the scenario:")[1].splitlines()[0].strip()
    simulated = out.split("simulated:")[1].splitlines()[0].strip()
    assert value == simulated


@pytest.mark.parametrize("fmt", ["latex", "json", "python"])
def test_explain_formats(capsys, fmt):
    assert main(["explain", "peak_memory", *SMALL, "--format", fmt, "--top", "0"]) == 0
    out = capsys.readouterr().out
    marker = {"latex": "\\max\\left(", "json": '"srepr"', "python": "def peak_memory("}[fmt]
    assert marker in out


def test_explain_unknown_metric(capsys):
    assert main(["explain", "latency", *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sglsim: error: unknown steady metric 'latency'")
    assert err.count("\n") == 1


def test_explain_negative_top(capsys):
    assert main(["explain", "tpot", *SMALL, "--top", "-1"]) == 2
    assert "invalid --top -1" in capsys.readouterr().err


def test_seed_snippet_example(capsys):
    runpy.run_path(str(REPO / "examples" / "seed_snippet.py"), run_name="__main__")
    out = capsys.readouterr().out
    # Each expression prints with its shared subexpressions named x0, x1, ... then its own line.
    assert out.startswith("metrics.throughput:\nx0 = ")
    assert "\nthroughput = n_out_avg*Min(" in out
    for name in ("memory_limit", "ttft_slo", "tpot_slo", "max_gpus"):
        assert f"\n{name}:\n" in out
    constraint_lines = [line for line in out.splitlines() if line.endswith(" > 0")]
    assert len(constraint_lines) == 4
    assert "memory_limit = 77309411328.0 - " in out
    assert "max_gpus:\nmax_gpus = -TP*(N_d + N_p) + 16 > 0" in out
    assert "Pareto front:" in out


def test_import_does_not_load_sympy():
    code = ("import sys, sglsim; from sglsim.cli.main import build_parser; build_parser(); "
            "from sglsim.simulation import simulate; simulate({'workload': {'num_requests': 3}}); "
            "assert 'sympy' not in sys.modules, 'sympy imported'; "
            "from sglsim import ConfigSymbols; assert 'sympy' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
