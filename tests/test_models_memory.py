"""Model presets, the Hugging Face config loader, GPU presets and SGLang's memory plan."""

from __future__ import annotations

import json

import pytest

from sglsim.errors import ConfigError
from sglsim.hardware import MODEL_PRESETS, get_gpu, get_model, load_hf_config
from sglsim.serving.memory_plan import plan_memory


@pytest.mark.parametrize("name,params_b", [("llama-2-7b", 6.74), ("llama-3.1-8b", 8.03), ("llama-3.1-70b", 70.55),
                                           ("qwen3-32b", 32.76), ("mixtral-8x7b", 46.70)])
def test_preset_parameter_counts(name, params_b):
    assert get_model(name).num_params() / 1e9 == pytest.approx(params_b, abs=0.01)


def test_presets_are_lower_case_and_case_insensitive():
    assert all(name == name.lower() for name in MODEL_PRESETS)
    assert get_model("Llama-3.1-70B") is get_model("llama-3.1-70b")
    with pytest.raises(ConfigError, match="unknown model 'gpt-5'"):
        get_model("gpt-5")
    with pytest.raises(ConfigError, match="unknown gpu 'tpu'"):
        get_gpu("tpu")


def test_hf_configs_load(model_configs):
    llama = load_hf_config(model_configs / "meta-llama__Meta-Llama-3.1-70B.config.json")
    assert (llama.num_layers, llama.hidden_size, llama.num_key_value_heads, llama.head_dim) == (80, 8192, 8, 128)
    assert llama.num_params() == get_model("llama-3.1-70b").num_params()
    mixtral = load_hf_config(model_configs / "mistralai__Mixtral-8x7B-v0.1.config.json")
    assert (mixtral.num_experts, mixtral.num_experts_per_tok, mixtral.moe_intermediate_size) == (8, 2, 14336)
    deepseek = load_hf_config(model_configs / "deepseek-ai__DeepSeek-V3.config.json")
    assert deepseek.weight_dtype == "fp8" and deepseek.is_mla
    assert deepseek.num_params() / 1e9 == pytest.approx(671.0, abs=0.1)
    assert deepseek.kv_bytes_per_token() == (512 + 64) * 61 * 2
    qwen = load_hf_config(model_configs / "Qwen__Qwen3-32B.config.json")
    assert qwen.head_dim == 128 and qwen.vocab_size == 151936


def test_hf_config_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(ConfigError, match="missing key 'num_attention_heads'"):
        load_hf_config(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_hf_config(path)
    with pytest.raises(ConfigError, match="model config not found"):
        load_hf_config(tmp_path / "absent.json")


def test_memory_plan_llama70b_tp4_h100():
    # SGLang's rule on an 80 GiB H100 at TP 4: chunk 8192, graphs up to 512,
    # reserve 512 + 1.5 x 8192 + 2 x 512 + 4 / 8 x 1024 = 14336 MB -> fraction 0.825.
    plan = plan_memory(get_model("llama-3.1-70b"), get_gpu("h100"), 4)
    assert plan.chunked_prefill_size == 8192
    assert plan.cuda_graph_max_bs == 512
    assert plan.mem_fraction_static == 0.825
    # every parameter is split 4 ways except the 161 RMSNorm weight vectors, which each GPU keeps whole
    norms = 161 * 8192
    weights = (70_553_706_496 - norms) * 2 / 4 + norms * 2
    assert plan.weight_bytes_per_gpu == weights
    kv_per_token = 2 * 2 * 128 * 80 * 2  # 2 KV heads per GPU, K and V, 80 layers, BF16
    assert plan.kv_bytes_per_token_per_gpu == kv_per_token
    assert plan.max_total_num_tokens == int((80 * 1024**3 * 0.825 - weights) // kv_per_token)
    assert plan.max_running_requests == 2048


def test_memory_plan_rejects_a_model_that_does_not_fit():
    with pytest.raises(ConfigError, match=r"does not fit on 1 x h100 .* and 141\.1 GB per GPU in this layout"):
        plan_memory(get_model("llama-3.1-70b"), get_gpu("h100"), 1)


def test_kv_heads_replicated_beyond_tp():
    # Llama-3.1-8B has 8 KV heads: at TP 16 (two H100 nodes would be needed) each GPU still
    # holds one whole head; at TP 8 exactly one head per GPU.
    plan = plan_memory(get_model("llama-3.1-8b"), get_gpu("gb200"), 16)
    assert plan.kv_bytes_per_token_per_gpu == 2 * 1 * 128 * 32 * 2
