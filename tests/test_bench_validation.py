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


# ----- validate_silicon.py -----

def silicon_row(**fields) -> dict:
    row = {"id": "qwen3_32b_h100_tp4_c64", "silicon_data_source": "source_file=x.csv; silicon_concurrency=64",
           "backend": "sglang", "model_path": "Qwen/Qwen3-32B", "system": "h100_sxm", "precision": float("nan"),
           "mode": "agg", "isl": 1024, "osl": 128, "batch_size": 64.0, "tp_size": 4.0, "moe_tp_size": 1.0,
           "moe_ep_size": 1.0, "attention_dp_size": float("nan"), "silicon_ttft_ms": 1300.0,
           "silicon_tpot_ms": 19.8}
    row.update(fields)
    return row


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    dense = {"hidden_size": 5120, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
             "num_hidden_layers": 64, "intermediate_size": 25600, "vocab_size": 151936}
    (tmp_path / "Qwen--Qwen3-32B_config.json").write_text(json.dumps(dense))
    sparse = {**dense, "index_topk": 2048}
    (tmp_path / "zai-org--GLM-5_config.json").write_text(json.dumps(sparse))
    hybrid = {"text_config": {**dense, "layer_types": ["linear_attention", "full_attention"]}}
    (tmp_path / "Qwen--Qwen3.5-397B-A17B_config.json").write_text(json.dumps(hybrid))
    return tmp_path


def test_silicon_row_becomes_a_case(model_dir: Path):
    silicon = load_bench("validate_silicon")
    case = silicon.classify(silicon_row(), model_dir)
    assert isinstance(case, silicon.SiliconCase)
    assert (case.gpu, case.tp, case.concurrency, case.quantization) == ("h100", 4, 64, None)
    assert case.config_path.endswith("Qwen--Qwen3-32B_config.json")


def test_silicon_rows_skipped_with_reasons(model_dir: Path):
    silicon = load_bench("validate_silicon")
    reasons = {
        "disaggregated serving": silicon_row(mode="disagg"),
        "expert parallelism": silicon_row(moe_ep_size=8.0),
        "DP attention": silicon_row(attention_dp_size=8.0),
        "weights in int4": silicon_row(precision="int4"),
        "model config not in the wheel": silicon_row(model_path="acme/unknown"),
        "sparse attention (DSA)": silicon_row(model_path="zhipuai/GLM-5"),
        "hybrid, linear or sliding-window attention": silicon_row(model_path="Qwen/Qwen3.5-397B-A17B"),
        "attention heads not divisible by TP (needs DP attention)": silicon_row(tp_size=48.0),
    }
    for reason, row in reasons.items():
        assert silicon.classify(row, model_dir) == reason


def test_silicon_case_simulates(model_dir: Path):
    silicon = load_bench("validate_silicon")
    case = silicon.classify(silicon_row(), model_dir)
    result = silicon.simulate_case(case, {}, requests_per_client=1)
    assert result.error == ""
    assert result.ttft_ms > 0
    assert result.tpot_ms > 0
    stats = silicon.error_stats([result])
    assert stats["rows"] == 1
    assert stats["tpot_median"] == pytest.approx(abs(result.tpot_ms / 19.8 - 1))


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
