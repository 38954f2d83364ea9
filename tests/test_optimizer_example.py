"""The P/D Pareto-front example runs on a few splits of the Mooncake trace."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pd_pareto_front.py"


def load_example():
    spec = importlib.util.spec_from_file_location("pd_pareto_front", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pd_front_example_small_sweep(mooncake_trace, capsys, tmp_path):
    example = load_example()
    argv = ["--trace", str(mooncake_trace), "--max-servers", "3", "--num-requests", "80", "--workers", "1",
            "--store", str(tmp_path / "runs.sqlite")]
    assert example.main(argv) == 0
    out = capsys.readouterr()
    rows = [line for line in out.out.splitlines() if line.startswith("| ") and line.split("|")[1].strip()[0].isdigit()]
    # N_p + N_d <= 3: splits 1:1, 1:2 and 2:1, each simulated once.
    assert sorted(line.split("|")[1].strip() for line in rows) == ["1:1", "1:2", "2:1"]
    assert "3 splits, 3 simulated" in out.err
    # The split with the best throughput per GPU is always on the front.
    assert rows[0].rstrip().endswith("yes |")
    # A rerun reads every run from the store.
    assert example.main(argv) == 0
    assert "3 splits, 0 simulated, 3 from the store" in capsys.readouterr().err
