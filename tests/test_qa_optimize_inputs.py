"""`sglsim optimize` inputs that used to crash or made every configuration infeasible."""

from __future__ import annotations

import pytest

from sglsim.cli.main import main

SMALL = ["optimize", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-len", "512", "--output-len", "32",
         "--gpus", "2", "--ttft", "0.5", "--tpot", "0.05", "--domain", "B_req=16,64", "--domain", "c=8192",
         "--verify", "0", "--no-progress"]


@pytest.mark.parametrize("flags, message", [
    # An infinite target or memory budget turned every constraint into NaN: "infeasible", exit 1.
    (["--ttft", "inf"], "invalid ttft_s inf: expected a positive, finite number of seconds"),
    (["--tpot", "inf"], "invalid tpot_s inf: expected a positive, finite number of seconds"),
    (["--gpu-memory", "1e400GB"], "invalid --gpu-memory '1e400GB'"),
    # Zero or fractional TP sizes and batch caps were searched and reported as infeasible.
    (["--domain", "TP=0"], "invalid domain of TP [0]: expected positive integers"),
    (["--domain", "TP=2.5"], "invalid domain of TP [2.5]: expected positive integers"),
    (["--domain", "B_req=0,8"], "invalid domain of B_req [0, 8]: expected positive integers"),
    # Huge numbers overflowed numpy or enumerated a range without end.
    (["--gpus", "99999999999999999999"], "invalid gpus 99999999999999999999: expected 1 to 100,000"),
    (["--domain", "c=1:100000000"], "100,000,000 values, expected at most 100,000"),
    # A plain number is bytes: 80 bytes made every configuration infeasible.
    (["--gpu-memory", "80"], "invalid --gpu-memory '80': 80 bytes is below 1GB"),
])
def test_bad_problem_exits_2_with_one_line(capsys, flags, message):
    pytest.importorskip("sglsim.symbolic")
    code = main([*SMALL, *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1


def test_output_folder_rejected_before_search(capsys, tmp_path):
    # Writing best.json into a folder raised IsADirectoryError after the whole search.
    code = main([*SMALL, "--output", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert f"invalid --output {tmp_path}: {tmp_path} is a folder" in err


def test_per_pool_tp_keeps_colocated_shape(capsys):
    # With both deployment shapes, the colocated model's TP was neither searched nor bound.
    pytest.importorskip("sglsim.symbolic")
    code = main([*SMALL, "--per-pool-tp"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Best of 2 problems (colocated, disaggregated)" in captured.out
