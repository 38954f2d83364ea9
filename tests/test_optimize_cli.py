"""`sglsim optimize`: flag parsing, one-line errors, and small end-to-end runs."""

from __future__ import annotations

import json

import pytest

from sglsim.cli.main import main
from sglsim.cli.optimize_cmd import parse_domain_flag, parse_size
from sglsim.errors import ConfigError


def test_memory_sizes_in_gb_and_gib():
    assert parse_size("80GB") == 80e9
    assert parse_size("80GiB") == 80 * 1024**3
    assert parse_size("80 gib") == 80 * 1024**3
    assert parse_size("85899345920") == 80 * 1024**3
    assert parse_size("1.5TB") == 1.5e12
    for bad in ("80 gigs", "-5GB", "GB", "0GB", "80", "512MB"):
        with pytest.raises(ConfigError, match="invalid --gpu-memory"):
            parse_size(bad)


def test_domain_flags():
    assert parse_domain_flag("B_req=16,32,64") == ("B_req", [16.0, 32.0, 64.0])
    assert parse_domain_flag("N_p=1:8") == ("N_p", {"range": [1, 8]})
    assert parse_domain_flag("N_p=1:8:2") == ("N_p", {"range": [1, 8, 2]})
    assert parse_domain_flag("TP=pow2:1:8") == ("TP", {"pow2": [1, 8]})
    with pytest.raises(ConfigError, match="expected NAME=SPEC"):
        parse_domain_flag("B_req")
    with pytest.raises(ConfigError, match="expected numbers"):
        parse_domain_flag("B_req=a,b")


@pytest.mark.parametrize("flags, message", [
    (["--gpu-memory", "80 gigs"], "invalid --gpu-memory '80 gigs'"),
    (["--verify", "-1"], "invalid --verify -1"),
    (["--domain", "B_req=x"], "invalid --domain 'B_req=x'"),
])
def test_bad_flags_exit_2_with_one_line(capsys, flags, message):
    code = main(["optimize", "--model", "llama-3.1-8b", "--input-len", "512", "--output-len", "32",
                 "--gpus", "2", "--ttft", "0.5", "--tpot", "0.05", *flags])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


SMALL = ["optimize", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-len", "512", "--output-len", "32",
         "--gpus", "2", "--gpu-memory", "80GiB", "--ttft", "0.5", "--tpot", "0.05",
         "--domain", "B_req=16,64", "--domain", "c=8192", "--no-progress"]


def test_small_problem_end_to_end(tmp_path, capsys):
    pytest.importorskip("sglsim.symbolic")
    out = tmp_path / "best.json"
    code = main([*SMALL, "--verify", "2", "--verify-pareto", "0", "--verify-requests", "60",
                 "--executor", "serial", "--output", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert set(doc) >= {"best", "candidates", "pareto", "verification"}
    best = doc["best"]
    assert best["verified"] and best["simulated"]["ttft_s"] <= 0.5
    assert best["predicted"]["num_gpus"] <= 2
    assert any("sglang.launch_server" in line for line in best["launch"])
    for row in doc["verification"]["candidates"]:
        assert {"predicted", "simulated", "goodput_rate_req_s", "runs", "first_iteration"} <= set(row)
    # The store beside the output contains every run, so a rerun simulates nothing.
    code = main([*SMALL, "--verify", "2", "--verify-pareto", "0", "--verify-requests", "60",
                 "--executor", "serial", "--output", str(out)])
    assert code == 0
    again = json.loads(out.read_text())
    assert again["verification"]["simulations"] == 0
    assert again["best"]["config"] == best["config"]
    text = capsys.readouterr().out
    assert "Chosen configuration (verified by simulation)" in text
    assert "Pareto front" in text


def test_infeasible_problem_names_binding_constraint(capsys):
    pytest.importorskip("sglsim.symbolic")
    code = main([*SMALL[:-1], "--tpot", "0.0001", "--verify", "0", "--no-progress"])
    assert code == 1
    out = capsys.readouterr().out
    assert "Infeasible" in out
    assert "binding constraint tpot_slo" in out
