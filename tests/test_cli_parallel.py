"""`sglsim simulate` with SGLang's parallelism flags."""

from __future__ import annotations

from sglsim.cli.main import main

DEEPSEEK_DP8 = ["simulate", "--model", "deepseek-v3", "--tp", "8", "--dp", "8", "--ep", "8", "--enable-dp-attention",
                "--input-len", "2000", "--output-len", "100", "--num-requests", "200", "--no-progress"]


def test_deepseek_v3_dp_attention_on_h200_runs(capsys):
    assert main(DEEPSEEK_DP8 + ["--gpu", "h200", "--explain-memory"]) == 0
    out = capsys.readouterr().out
    # the memory plan comes first, then the run's summary
    assert "Memory plan of each h200 server (TP 8, DP-attention 8 (attn TP 1), EP 8, PP 1)" in out
    assert "weights per GPU                   95.94 GB" in out
    assert "Requests completed:                            200" in out
    assert "GPUs:                             8" in out


def test_deepseek_v3_on_h100_refused_with_numbers(capsys):
    assert main(DEEPSEEK_DP8 + ["--gpu", "h100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sglsim: error: model deepseek-v3 does not fit on 8 x h100")
    assert "673 GB" in err
    assert "687 GB in all" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_explain_memory_for_default_scenario(capsys):
    assert main(["simulate", "--explain-memory", "--num-requests", "20", "--no-progress", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["simulate", "--explain-memory", "--num-requests", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "parallel layout                 TP 1, DP 1, EP 1, PP 1" in out
    assert "max_total_num_tokens" in out


def test_parallel_flags_reach_the_scenario(capsys):
    args = ["simulate", "--model", "deepseek-v3", "--gpu", "h100", "--tp", "32", "--dp", "32",
            "--enable-dp-attention", "--moe-a2a-backend", "deepep", "--deepep-mode", "normal",
            "--enable-two-batch-overlap", "--moe-dense-tp-size", "1", "--enable-dp-lm-head",
            "--ep-num-redundant-experts", "32", "--mem-fraction-static", "0.85", "--kv-cache-dtype", "fp8_e4m3",
            "--input-len", "1024", "--output-len", "1", "--num-requests", "64", "--no-progress", "--explain-memory"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "TP 32, DP-attention 32 (attn TP 1), EP 32, PP 1, deepep normal" in out
    # FP8 KV: 576 bytes per token per layer
    assert "KV bytes per token per GPU        35,136" in out


def test_invalid_flag_values_exit_2(capsys):
    assert main(["simulate", "--deepep-mode", "fast", "--no-progress"]) == 2
    assert "deepep_mode" in capsys.readouterr().err
    assert main(["simulate", "--model", "llama-3.1-8b", "--tp", "2", "--ep", "2", "--num-requests", "5",
                 "--no-progress"]) == 2
    assert "invalid ep 2" in capsys.readouterr().err
