"""SGLang's parallel layout rules: GPU counts, derived group sizes and one-line rejections."""

from __future__ import annotations

import pytest

from sglsim.config.scenario import ServerArgs
from sglsim.errors import ConfigError
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.models import get_model
from sglsim.serving.parallel import resolve_parallel


def _resolve(model: str = "deepseek-v3", gpu: str = "h200", **args):
    return resolve_parallel(ServerArgs(**args), get_model(model), get_gpu(gpu))


def test_dp_attention_shares_the_tp_gpus():
    # --tp 8 --dp 8 --enable-dp-attention: one server of 8 GPUs, 8 attention ranks of attn TP 1
    par = _resolve(tp=8, dp=8, ep=8, enable_dp_attention=True)
    assert par.gpus_per_server == 8
    assert par.attn_tp == 1
    assert par.moe_tp == 1
    assert par.num_schedulers == 8


def test_plain_dp_copies_the_tp_group():
    # --tp 2 --dp 4 without DP attention: four TP-2 copies, 8 GPUs
    par = _resolve("llama-3.1-8b", "h100", tp=2, dp=4)
    assert par.gpus_per_server == 8
    assert par.attn_tp == 2
    assert not par.dp_attention


def test_dp_attention_with_dp_one_is_switched_off():
    par = _resolve(tp=8, dp=1, enable_dp_attention=True)
    assert not par.dp_attention


def test_deepep_forces_ep_to_tp():
    par = _resolve(tp=8, dp=8, ep=2, enable_dp_attention=True, moe_a2a_backend="deepep")
    assert par.ep == 8
    assert par.shared_tp == 1


def test_pipeline_multiplies_gpus():
    par = _resolve("llama-3.1-70b", "h100", tp=4, pp=2)
    assert par.gpus_per_server == 8


def test_multi_node_tp_allowed_in_whole_nodes():
    assert _resolve("deepseek-v3", "h100", tp=32, dp=32, enable_dp_attention=True).gpus_per_server == 32
    with pytest.raises(ConfigError, match="invalid tp 12"):
        _resolve("deepseek-v3", "h100", tp=12)


def test_nvl72_domain_allows_large_tp():
    # a GB200 NVL72 rack is one NVLink domain of 72 GPUs
    assert _resolve("deepseek-v3", "gb200", tp=72, dp=72, enable_dp_attention=True).tp == 72


@pytest.mark.parametrize("args, field", [
    (dict(tp=8, dp=3, enable_dp_attention=True), "invalid dp 3"),
    (dict(tp=8, ep=3), "invalid ep 3"),
    (dict(tp=8, enable_two_batch_overlap=True), "invalid enable_two_batch_overlap True"),
    (dict(tp=8, moe_dense_tp_size=2), "invalid moe_dense_tp_size 2"),
    (dict(tp=8, enable_dp_lm_head=True), "invalid enable_dp_lm_head True"),
    (dict(tp=8, ep=8, ep_num_redundant_experts=3), "invalid ep_num_redundant_experts 3"),
    (dict(tp=8, dp=2), "invalid dp 2"),
    (dict(tp=1, pp=100), "invalid pp 100"),
])
def test_invalid_layouts_rejected(args, field):
    with pytest.raises(ConfigError) as err:
        _resolve(**args)
    assert str(err.value).startswith(field)
    assert "\n" not in str(err.value)


def test_expert_parallel_needs_moe_model():
    with pytest.raises(ConfigError, match="invalid ep 2: model llama-3.1-8b has no experts"):
        _resolve("llama-3.1-8b", "h100", tp=2, ep=2)


@pytest.mark.parametrize("args, message", [
    (dict(enable_eplb=True), "invalid enable_eplb True: model llama-3.1-8b has no experts"),
    (dict(ep_num_redundant_experts=5), "invalid ep_num_redundant_experts 5: model llama-3.1-8b has no experts"),
])
def test_expert_settings_on_dense_model(args, message):
    # These were silently ignored on a dense model, while --ep 2 was rejected.
    with pytest.raises(ConfigError, match=message):
        _resolve("llama-3.1-8b", "h100", tp=2, **args)


def test_law_params_mirror_layout():
    par = _resolve(tp=32, dp=32, enable_dp_attention=True, moe_a2a_backend="deepep",
                   enable_two_batch_overlap=True, moe_dense_tp_size=1, ep_num_redundant_experts=32, gpu="h100")
    law = par.law_params()
    assert (law.tp, law.attn_dp, law.attn_tp, law.ep, law.moe_tp) == (32, 32, 1, 32, 1)
    assert law.dense_tp == 1
    assert law.shared_tp == 1
    assert law.num_redundant_experts == 32
    assert law.two_batch_overlap
    assert law.dp_attention
    assert law.deepep
