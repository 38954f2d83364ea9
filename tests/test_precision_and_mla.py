"""Weight precisions, GPU presets, model configs with MoE and MLA fields, and the MLA laws."""

from __future__ import annotations

import pytest

from sglsim.config.scenario import ServerArgs
from sglsim.costs.laws import mla_decode_work, mla_extend_work
from sglsim.costs.params import HardwareParams, ModelParams, ParallelParams
from sglsim.errors import ConfigError
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.models import get_model, load_hf_config
from sglsim.serving.server_spec import build_efficiency, build_server_spec


def test_weight_bytes_per_precision():
    llama = get_model("llama-3.1-8b")
    assert llama.weight_bytes_per_param == 2.0
    # online FP8 quantization keeps one scale per tensor
    assert llama.with_weight_dtype("fp8").weight_bytes_per_param == 1.0
    # NVFP4: half a byte plus one FP8 scale per 16 values
    assert llama.with_weight_dtype("fp4").weight_bytes_per_param == 0.5 + 1 / 16
    # DeepSeek's checkpoint: FP8 with one FP32 scale per 128 x 128 block
    assert get_model("deepseek-v3").weight_bytes_per_param == 1 + 4 / 128 ** 2


def test_gemm_peak_follows_weight_dtype():
    b200 = get_gpu("b200")
    assert HardwareParams.from_gpu(b200, "bf16").gemm_flops == 2250e12
    assert HardwareParams.from_gpu(b200, "fp8").gemm_flops == 4500e12
    assert HardwareParams.from_gpu(b200, "fp4").gemm_flops == 9000e12
    # no FP4 tensor cores on Hopper: its FP8 peak would be used, but the server rejects the config
    assert HardwareParams.from_gpu(get_gpu("h100"), "fp4").gemm_flops == 1978e12


@pytest.mark.parametrize("gpu, quantization, message", [
    ("h100", "modelopt_fp4", "NVFP4 needs a Blackwell GPU"),
    ("a100", "fp8", "the GPU has no FP8 tensor cores"),
])
def test_precision_without_tensor_cores_rejected(gpu, quantization, message):
    with pytest.raises(ConfigError, match=message):
        build_server_spec("llama-3.1-8b", gpu, ServerArgs(quantization=quantization), build_efficiency({}))


def test_blackwell_presets():
    b300, gb200, gb300 = get_gpu("b300"), get_gpu("gb200"), get_gpu("gb300")
    assert b300.fp4_flops == 14000e12
    assert b300.gpus_per_node == 8
    # NVL72 racks: 72 GPUs in one NVLink domain, 800 Gb/s scale-out per GPU
    assert gb200.gpus_per_node == gb300.gpus_per_node == 72
    assert gb200.network_bw_bytes_s == gb300.network_bw_bytes_s == 100e9
    assert HardwareParams.from_gpu(gb300, "fp4").nvlink_domain == 72


def test_deepseek_config_loads_groups_and_block_size(model_configs):
    spec = load_hf_config(model_configs / "deepseek-ai__DeepSeek-V3.config.json")
    preset = get_model("deepseek-v3")
    assert (spec.n_group, spec.topk_group) == (8, 4)
    assert spec.weight_block_size == 128
    assert spec.weight_dtype == "fp8"
    assert spec.kv_elements_per_token_per_layer() == preset.kv_elements_per_token_per_layer() == 576
    assert spec.num_params() == preset.num_params()


def test_qwen3_moe_config_matches_preset(model_configs):
    spec = load_hf_config(model_configs / "Qwen__Qwen3-235B-A22B.config.json")
    preset = get_model("qwen3-235b-a22b")
    assert (spec.num_experts, spec.num_experts_per_tok, spec.moe_intermediate_size) == (128, 8, 1536)
    assert spec.num_params() == preset.num_params()


def test_mla_kv_size():
    model = get_model("deepseek-v3")
    # latent 512 + RoPE key 64 per layer, 61 layers; BF16 and FP8
    assert model.kv_bytes_per_token("bf16") == 576 * 61 * 2 == 70_272
    assert model.kv_bytes_per_token("fp8") == 35_136


MLA = ModelParams.from_spec(get_model("deepseek-v3"))


def test_mla_decode_work_exact():
    # absorbed decode, 16 heads per GPU (TP8): 2 x 16 x (576 + 512) FLOPs per context token
    par = ParallelParams(tp=8)
    flops, bytes_ = mla_decode_work(MLA, par, decode_seqs=4, decode_ctx_tokens=4000)
    assert flops == 2 * 16 * (576 + 512) * 4000
    # latent cache read once per token, plus each head's query in and latent output out
    assert bytes_ == 576 * 2 * 4000 + 16 * (576 + 512) * 2 * 4


def test_mla_extend_work_exact():
    # MHA-form prefill, 128 heads (attn TP 1): 1000 new tokens after a 3000-token cached prefix
    par = ParallelParams(tp=8, attn_dp=8, dp_attention=True)
    new, prefix = 1000, 3000
    pairs = new * (prefix + (new + 1) / 2)
    flops, bytes_ = mla_extend_work(MLA, par, new, pairs, prefix + new)
    kv_dim = 128 * (192 + 128)
    # attention over the pairs, plus expanding the 3000 cached latents into per-head K and V
    assert flops == 2 * 128 * 320 * pairs + 2 * prefix * 512 * 128 * 256
    # the latent read, the expanded K/V written and read back, Q in and O out
    assert bytes_ == 576 * 2 * 4000 + 2 * kv_dim * 2 * 4000 + kv_dim * 2 * 1000


def test_mla_heads_follow_attention_tp():
    # DP attention with attn TP 1 keeps all 128 heads on each GPU: 8x the FLOPs of TP8
    dp = ParallelParams(tp=8, attn_dp=8, dp_attention=True)
    tp = ParallelParams(tp=8)
    assert mla_decode_work(MLA, dp, 1, 100)[0] == 8 * mla_decode_work(MLA, tp, 1, 100)[0]
