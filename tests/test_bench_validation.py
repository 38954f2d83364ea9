"""The validation scripts under bench/: published cases, silicon row classification, the wheel helper."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import zipfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str):
    """Import bench/<name>.py as a module (the scripts are not part of the package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    module_name = f"bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# ----- validate_published.py -----

def test_published_vllm_ci_case_runs():
    published = load_bench("validate_published")
    [result] = published.run_cases(["vllm-ci-h100"])
    # vLLM CI: 8 requests of 32 + 128 tokens on one H100 take 997.5 ms end to end.
    assert result.case.measured == 997.5
    assert math.isfinite(result.predicted)
    assert abs(result.error) < 0.5


def test_published_operator_case_runs():
    published = load_bench("validate_published")
    [result] = published.run_cases(["linear-llama2-7b-h100-4096tok"])
    assert result.case.unit == "ms"
    assert abs(result.error) < 0.5


def test_published_unknown_case_is_rejected():
    published = load_bench("validate_published")
    with pytest.raises(ValueError, match="unknown case 'nope'"):
        published.run_cases(["nope"])


def test_published_case_names_are_unique():
    names = [c.name for c in load_bench("validate_published").build_cases()]
    assert len(names) == len(set(names))


# ----- silicon_rows.py and validate_silicon.py -----

def silicon_row(**fields) -> dict:
    """An aggregated row of silicon_sample.csv as pandas reads it (empty cells are NaN)."""
    nan = float("nan")
    row = {"id": "qwen3_32b_h100_tp4_c64", "silicon_data_source": "source_file=x.csv; silicon_concurrency=64",
           "backend": "sglang", "model_path": "Qwen/Qwen3-32B", "system": "h100_sxm", "precision": nan,
           "mode": "agg", "isl": 1024, "osl": 128, "batch_size": 64.0, "tp_size": 4.0, "pp_size": 1.0,
           "moe_tp_size": 1.0, "moe_ep_size": 1.0, "attention_dp_size": nan, "silicon_ttft_ms": 1300.0,
           "silicon_tpot_ms": 19.8}
    for pool in ("prefill", "decode"):
        for column in ("batch_size", "num_workers", "tp_size", "pp_size", "attention_dp_size", "moe_tp_size",
                       "moe_ep_size"):
            row[f"{pool}_{column}"] = nan
    row.update(fields)
    return row


def disagg_row(**fields) -> dict:
    """A disaggregated DeepSeek row: 2 prefill servers of TP 4 / EP 4 and 1 decode server of DP-attention 8."""
    row = silicon_row(
        id="dsv3_b200_sglang_disagg", mode="disagg", model_path="deepseek-ai/DeepSeek-V3", system="b200_sxm",
        precision="fp8", isl=8192, osl=1024, batch_size=float("nan"), tp_size=float("nan"),
        pp_size=float("nan"), moe_tp_size=float("nan"), moe_ep_size=float("nan"),
        silicon_data_source="source_file=2026-04-06.csv; model=DeepSeek-R1; silicon_concurrency=256",
        prefill_batch_size=1.0, prefill_num_workers=2.0, prefill_tp_size=4.0, prefill_pp_size=1.0,
        prefill_attention_dp_size=1.0, prefill_moe_tp_size=1.0, prefill_moe_ep_size=4.0,
        decode_batch_size=32.0, decode_num_workers=1.0, decode_tp_size=1.0, decode_pp_size=1.0,
        decode_attention_dp_size=8.0, decode_moe_tp_size=1.0, decode_moe_ep_size=8.0,
        silicon_ttft_ms=11206.0, silicon_tpot_ms=33.1)
    row.update(fields)
    return row


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    dense = {"hidden_size": 5120, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
             "num_hidden_layers": 64, "intermediate_size": 25600, "vocab_size": 151936}
    (tmp_path / "Qwen--Qwen3-32B_config.json").write_text(json.dumps(dense))
    moe = {**dense, "num_attention_heads": 128, "num_hidden_layers": 16, "n_routed_experts": 64,
           "num_experts_per_tok": 4, "moe_intermediate_size": 1024}
    (tmp_path / "deepseek-ai--DeepSeek-V3_config.json").write_text(json.dumps(moe))
    sparse = {**dense, "index_topk": 2048}
    (tmp_path / "zai-org--GLM-5_config.json").write_text(json.dumps(sparse))
    hybrid = {"text_config": {**dense, "layer_types": ["linear_attention", "full_attention"]}}
    (tmp_path / "Qwen--Qwen3.5-397B-A17B_config.json").write_text(json.dumps(hybrid))
    return tmp_path


def test_agg_row_becomes_a_tp_server(model_dir: Path):
    rows = load_bench("silicon_rows")
    case = rows.classify(silicon_row(), model_dir)
    assert isinstance(case, rows.SiliconCase)
    assert (case.gpu, case.mode, case.concurrency, case.quantization) == ("h100", "agg", 64, None)
    assert case.config_path.endswith("Qwen--Qwen3-32B_config.json")
    # the source is not aiconfigurator's gap analysis: InferenceX's bench_serving load
    assert case.harness == rows.INFERENCEX
    scenario = rows.build_scenario(case, {"graph_launch_s": 1e-3})
    assert scenario == {
        "model": case.config_path, "gpu": "h100",
        "server": {"quantization": None, "enable_mixed_chunk": False, "tp": 4, "dp": 1, "ep": 1,
                   "enable_dp_attention": False},
        # 10 requests per client, lengths uniform in [int(0.8 x len), len]
        "workload": {"concurrency": 64, "num_requests": 640,
                     "input_len": {"dist": "uniform", "mean": 921.5, "min": 819, "max": 1024},
                     "output_len": {"dist": "uniform", "mean": 115.0, "min": 102, "max": 128}},
        "efficiency": {"graph_launch_s": 1e-3},
    }


def test_gap_analysis_row_uses_fixed_lengths(model_dir: Path):
    rows = load_bench("silicon_rows")
    source = "source_file=/data/aic-auto-gap-analysis/data/h100_sxm/sglang/0.5.1.post1/Qwen_Qwen3-32B.csv"
    case = rows.classify(silicon_row(silicon_data_source=source, batch_size=16.0), model_dir)
    assert case.harness == rows.AIC_EVAL
    # no silicon_concurrency in the source: batch_size x attention DP (1) clients
    assert case.concurrency == 16
    workload = rows.build_scenario(case, {}, requests_per_client=2)["workload"]
    assert workload == {"concurrency": 16, "num_requests": 32, "input_len": {"dist": "constant", "mean": 1024},
                        "output_len": {"dist": "constant", "mean": 128}}


@pytest.mark.parametrize("fields, server", [
    # TP 8 with the experts split over 8 GPUs (MoE TP 1)
    ({"tp_size": 8.0, "moe_tp_size": 1.0, "moe_ep_size": 8.0},
     {"tp": 8, "dp": 1, "ep": 8, "enable_dp_attention": False}),
    # DP attention: 8 ranks of attention TP 1 on 8 GPUs, experts over all 8
    ({"tp_size": 1.0, "attention_dp_size": 8.0, "moe_tp_size": 1.0, "moe_ep_size": 8.0, "batch_size": 16.0},
     {"tp": 8, "dp": 8, "ep": 8, "enable_dp_attention": True}),
    # MoE TP 4 x EP 2 under TP 8: SGLang's --tp 8 --ep 2 gives MoE TP 8 / 2 = 4
    ({"tp_size": 8.0, "moe_tp_size": 4.0, "moe_ep_size": 2.0},
     {"tp": 8, "dp": 1, "ep": 2, "enable_dp_attention": False}),
    # MoE TP equal to TP, no EP
    ({"tp_size": 8.0, "moe_tp_size": 8.0, "moe_ep_size": 1.0},
     {"tp": 8, "dp": 1, "ep": 1, "enable_dp_attention": False}),
])
def test_moe_agg_layouts(model_dir: Path, fields: dict, server: dict):
    rows = load_bench("silicon_rows")
    row = silicon_row(model_path="deepseek-ai/DeepSeek-V3", precision="fp8",
                      silicon_data_source="db-dump/2026-04-27; config_id=1", **fields)
    case = rows.classify(row, model_dir)
    scenario = rows.build_scenario(case, {})
    assert scenario["server"] == {"quantization": "fp8", "enable_mixed_chunk": False, **server}
    # without silicon_concurrency: batch_size per attention-DP rank x ranks
    assert case.concurrency == int(row["batch_size"]) * server["dp"]


def test_disagg_row_becomes_pd_pools(model_dir: Path):
    rows = load_bench("silicon_rows")
    case = rows.classify(disagg_row(backend="trtllm"), model_dir)
    assert (case.mode, case.gpu, case.concurrency) == ("disagg", "b200", 256)
    assert case.prefill == rows.WorkerLayout(attention_tp=4, attention_dp=1, moe_ep=4)
    assert case.decode == rows.WorkerLayout(attention_tp=1, attention_dp=8, moe_ep=8)
    scenario = rows.build_scenario(case, {})
    assert scenario["server"] == {"quantization": "fp8", "enable_mixed_chunk": True}
    assert scenario["cluster"] == {
        "router": "round_robin",
        "prefill": {"workers": 2, "server": {"tp": 4, "dp": 1, "ep": 4, "enable_dp_attention": False}},
        "decode": {"workers": 1, "server": {"tp": 8, "dp": 8, "ep": 8, "enable_dp_attention": True}},
    }
    assert scenario["workload"]["num_requests"] == 2560


def test_disagg_concurrency_from_decode_batch(model_dir: Path):
    rows = load_bench("silicon_rows")
    # no silicon_concurrency: decode batch 32 per rank x 8 ranks x 1 decode server
    case = rows.classify(disagg_row(silicon_data_source="source_file=/data/aic-auto-gap-analysis/x.csv"), model_dir)
    assert case.concurrency == 256


def test_silicon_rows_skipped_with_reasons(model_dir: Path):
    rows = load_bench("silicon_rows")
    reasons = {
        "disaggregated row without worker counts or decode batch size": disagg_row(prefill_num_workers=float("nan")),
        "decode pool: MoE TP x EP differs from the worker's GPUs (TP x attention DP)":
            disagg_row(decode_moe_ep_size=4.0),
        "prefill pool: attention TP does not divide the attention heads": disagg_row(prefill_tp_size=12.0),
        "MoE TP x EP differs from the worker's GPUs (TP x attention DP)":
            silicon_row(model_path="deepseek-ai/DeepSeek-V3", tp_size=1.0, moe_tp_size=2.0),
        "pipeline parallelism": silicon_row(pp_size=2.0),
        "weights in int4": silicon_row(precision="int4"),
        "GPU without a preset (l40s)": silicon_row(system="l40s"),
        "model config not in the wheel": silicon_row(model_path="acme/unknown"),
        "sparse attention (DSA)": silicon_row(model_path="zhipuai/GLM-5"),
        "hybrid, linear or sliding-window attention": silicon_row(model_path="Qwen/Qwen3.5-397B-A17B"),
        "attention TP does not divide the attention heads": silicon_row(tp_size=48.0),
    }
    for reason, row in reasons.items():
        assert rows.classify(row, model_dir) == reason


def test_silicon_case_simulates(model_dir: Path):
    silicon = load_bench("validate_silicon")
    case = silicon.classify(silicon_row(), model_dir)
    result = silicon.simulate_case(case, {}, requests=1)
    assert result.error == ""
    assert result.ttft_ms > 0
    assert result.tpot_ms > 0
    report = load_bench("silicon_report")
    stats = report.error_stats([result])
    assert stats["rows"] == 1
    assert stats["tpot_median"] == pytest.approx(abs(result.tpot_ms / 19.8 - 1))
    e2e = (result.ttft_ms + 127 * result.tpot_ms) / (1300.0 + 127 * 19.8) - 1
    assert stats["e2e_bias"] == pytest.approx(e2e)


def test_disagg_case_simulates(model_dir: Path):
    silicon = load_bench("validate_silicon")
    # a small DP-attention P/D deployment: 1 prefill and 1 decode server of 8 ranks, 16 clients
    row = disagg_row(prefill_num_workers=1.0, prefill_tp_size=1.0, prefill_attention_dp_size=8.0,
                     prefill_moe_ep_size=8.0, decode_batch_size=2.0, isl=1024, osl=64,
                     silicon_data_source="source_file=2026-04-06.csv; silicon_concurrency=16")
    case = silicon.classify(row, model_dir)
    result = silicon.simulate_case(case, {}, requests=1)
    assert result.error == ""
    assert result.ttft_ms > 0
    assert result.tpot_ms > 0


def test_requests_per_client_capped(model_dir: Path):
    silicon = load_bench("validate_silicon")
    small = silicon.classify(silicon_row(), model_dir)
    large = silicon.classify(disagg_row(), model_dir)
    # 64 clients x 10 requests fit under 20,000; 256 x 10 do not fit under 1,000
    assert silicon.requests_per_client(small, None, 20_000) == 10
    assert silicon.requests_per_client(large, None, 1_000) == 3
    # never below 2 per client, and an explicit count is capped the same way
    assert silicon.requests_per_client(large, None, 100) == 2
    assert silicon.requests_per_client(large, 4, None) == 4
    assert silicon.requests_per_client(large, 4, 512) == 2


def test_report_groups_fit_rows_first(model_dir: Path):
    silicon = load_bench("validate_silicon")
    report = load_bench("silicon_report")
    fit = silicon.CaseResult(silicon.classify(silicon_row(), model_dir), 1200.0, 20.0)
    other = silicon.CaseResult(silicon.classify(silicon_row(backend="vllm", system="b200_sxm"), model_dir),
                               1500.0, 18.0)
    lines = report.group_lines([other, fit])
    assert lines[0].startswith("fit   h100_sxm  sglang  agg         1")
    assert lines[1].startswith("eval  b200_sxm  vllm    agg         1")
    # totals over the evaluation rows only: all backends, agg
    assert any(line.startswith("eval  all       all     agg         1") for line in lines)


# ----- aic_wheel.py -----

def test_sglang_table_picks_newest_version(tmp_path: Path):
    wheel = load_bench("aic_wheel")
    for version in ("0.5.6.post2", "0.5.14", "0.5.9"):
        folder = tmp_path / "data" / "h100_sxm" / "gemm" / "sglang" / version
        folder.mkdir(parents=True)
        (folder / "gemm_perf.parquet").write_bytes(b"")
    path, version = wheel.sglang_table(tmp_path, "h100_sxm", "gemm", "gemm_perf.parquet")
    assert version == "0.5.14"
    assert path.parent.name == "0.5.14"
    with pytest.raises(FileNotFoundError, match="no SGLang table"):
        wheel.sglang_table(tmp_path, "a100_sxm", "gemm", "gemm_perf.parquet")


def test_locate_package_unpacks_a_local_wheel(tmp_path: Path):
    wheel = load_bench("aic_wheel")
    archive = tmp_path / "aiconfigurator_core-0.12.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("aiconfigurator_core/systems/silicon_sample.csv", "id\n")
        zf.writestr("aiconfigurator_core/model_configs/a_config.json", "{}")
        zf.writestr("aiconfigurator_core/_native.so", "binary")
    package = wheel.locate_package(str(archive), tmp_path / "cache")
    assert (package / "systems" / "silicon_sample.csv").is_file()
    assert (package / "model_configs" / "a_config.json").is_file()
    assert not (package / "_native.so").exists()
    assert wheel.locate_package(str(package.parent), tmp_path / "other") == package
    with pytest.raises(SystemExit, match="expected an aiconfigurator-core"):
        wheel.locate_package(str(tmp_path / "missing"), tmp_path / "cache")
