"""Per-GPU efficiency presets: the packaged file, the layering order, and their use by server_spec."""

from __future__ import annotations

import pytest

from sglsim.config.scenario import ServerArgs, validate_scenario
from sglsim.costs.efficiency import (KERNEL_TWINS, DEFAULT_EFFICIENCY, PRESETS_PATH, Efficiency, efficiency_for_gpu,
                                     read_presets)
from sglsim.errors import ConfigError
from sglsim.hardware.gpus import GPU_PRESETS
from sglsim.serving.server_spec import build_efficiency, build_server_spec
from sglsim.simulation import Simulation

PACKAGED = read_presets(PRESETS_PATH)


def synthetic_presets() -> dict:
    return {
        "gpus": {"h100": {"constants": {"gemm_compute": 0.5, "attn_floor_s": 1e-5},
                          "gemm_by_weight_dtype": {"fp8": {"gemm_compute": 0.4}}}},
        "serving_overheads": {"graph_launch_s": 2e-4},
    }


# ----- layering -----

def test_presets_layer_in_order():
    presets = synthetic_presets()
    # BF16: the GPU's constants over the defaults, then the shared overheads.
    bf16 = efficiency_for_gpu("H100", "bf16", presets)
    assert bf16.gemm_compute == 0.5
    assert bf16.attn_floor_s == 1e-5
    assert bf16.graph_launch_s == 2e-4
    assert bf16.gemm_memory == DEFAULT_EFFICIENCY.gemm_memory
    # FP8 weights replace the GEMM constants only.
    fp8 = efficiency_for_gpu("h100", "fp8", presets)
    assert fp8.gemm_compute == 0.4
    assert fp8.attn_floor_s == 1e-5
    # A GPU without an entry keeps the default kernel constants but still gets the overheads.
    other = efficiency_for_gpu("a100", "bf16", presets)
    assert other.gemm_compute == DEFAULT_EFFICIENCY.gemm_compute
    assert other.graph_launch_s == 2e-4


def test_broken_presets_raise_runtime_error():
    presets = {"gpus": {"h100": {"constants": {"gemm_speed": 1.0}}}}
    with pytest.raises(RuntimeError, match="gpus.h100.constants"):
        efficiency_for_gpu("h100", "bf16", presets)


# ----- the packaged file -----

def test_every_gpu_preset_has_fitted_constants():
    for gpu in GPU_PRESETS:
        entry = PACKAGED["gpus"][KERNEL_TWINS.get(gpu, gpu)]
        eff = efficiency_for_gpu(gpu)
        for name, value in entry["constants"].items():
            assert getattr(eff, name) == value, (gpu, name)
        fractions = [eff.gemm_compute, eff.gemm_memory, eff.attn_decode_memory, eff.comm_bandwidth]
        assert all(0 < f <= 1 for f in fractions), gpu


def test_packaged_presets_differ_by_gpu_and_dtype():
    assert efficiency_for_gpu("a100").gemm_memory != efficiency_for_gpu("h100").gemm_memory
    h100_fp8 = efficiency_for_gpu("h100", "fp8")
    assert h100_fp8.gemm_compute == PACKAGED["gpus"]["h100"]["gemm_by_weight_dtype"]["fp8"]["gemm_compute"]
    assert h100_fp8.attn_decode_memory == efficiency_for_gpu("h100").attn_decode_memory


def test_serving_overheads_apply_to_every_gpu():
    overheads = PACKAGED["serving_overheads"]
    assert overheads
    for gpu in GPU_PRESETS:
        eff = efficiency_for_gpu(gpu)
        for name, value in overheads.items():
            assert getattr(eff, name) == value


# ----- use by server_spec and the simulation -----

def test_server_spec_uses_the_gpu_preset():
    spec = build_server_spec("llama-3.1-8b", "h200", ServerArgs())
    assert spec.law.eff == efficiency_for_gpu("h200", "bf16")
    assert spec.law.eff != efficiency_for_gpu("h100", "bf16")


def test_server_spec_uses_the_weight_dtype_preset():
    spec = build_server_spec("llama-3.1-8b", "h100", ServerArgs(quantization="fp8"))
    assert spec.law.eff == efficiency_for_gpu("h100", "fp8")


def test_overrides_apply_on_top_of_the_preset():
    spec = build_server_spec("llama-3.1-8b", "b200", ServerArgs(), {"gemm_compute": 0.5})
    preset = efficiency_for_gpu("b200")
    assert spec.law.eff.gemm_compute == 0.5
    assert spec.law.eff == preset.updated(gemm_compute=0.5)
    assert build_efficiency({"attn_floor_s": 2e-5}, "b200").attn_floor_s == 2e-5
    assert build_efficiency() is DEFAULT_EFFICIENCY


def test_explicit_efficiency_is_used_as_given():
    custom = Efficiency(gemm_compute=0.33)
    spec = build_server_spec("llama-3.1-8b", "h100", ServerArgs(), custom)
    assert spec.law.eff is custom


def test_scenario_efficiency_reaches_the_simulation():
    scenario = validate_scenario({"gpu": "a100", "efficiency": {"sched_overhead_s": 1e-3}})
    eff = Simulation(scenario).server.law.eff
    assert eff.sched_overhead_s == 1e-3
    assert eff.gemm_memory == efficiency_for_gpu("a100").gemm_memory


def test_unknown_override_is_a_config_error():
    # The scenario itself rejects the name, before any server is built.
    with pytest.raises(ConfigError, match="unknown efficiency constant 'gemm_speed'"):
        validate_scenario({"efficiency": {"gemm_speed": 0.5}})
