"""SGLang's memory plan with parallelism: exact plans for two reference deployments, and its rules."""

from __future__ import annotations

import pytest

from sglsim.config.scenario import ServerArgs
from sglsim.errors import ConfigError
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.models import get_model
from sglsim.serving.memory_plan import (MB, kv_bytes_per_token_per_gpu, model_weight_bytes, plan_memory,
                                        weight_breakdown)
from sglsim.serving.parallel import ParallelConfig, resolve_parallel

H100_BYTES = 85899345920  # 80 GiB
H200_BYTES = 151397597184  # 141 GiB


def test_llama_70b_tp4_h100_plan():
    plan = plan_memory(get_model("llama-3.1-70b"), get_gpu("h100"), 4)
    # H100 (80 GiB = 81,920 MB) is in the < 90 GB tier: chunk 8192, graph batch 512 at tp >= 4
    assert plan.chunked_prefill_size == 8192
    assert plan.cuda_graph_max_bs == 512
    # reserve = 512 + 1.5 x 8192 + 2 x 512 + 4 / 8 x 1024 = 14,336 MB (above the 10 GB floor)
    assert plan.reserve_bytes == 14336 * MB
    # mem_fraction_static = round((81920 - 14336) / 81920, 3)
    assert plan.mem_fraction_static == 0.825
    # weights per GPU, BF16:
    #   attention (Q + O) / 4 + K,V / 4 per layer = 37,748,736 params x 2 B x 80 layers
    #   MLP 3 x 8192 x 28672 / 4 per layer x 2 B x 80 layers
    #   embedding and LM head 128,256 x 8192 x 2 B, each / 4; norms (2 x 80 + 1) x 8192 x 2 B
    w = plan.weights
    assert w.attention == 37_748_736 * 2 * 80
    assert w.dense_mlp == 3 * 8192 * 28672 // 4 * 2 * 80
    assert w.embeddings == 2 * 128256 * 8192 * 2 / 4
    assert w.norms == 161 * 8192 * 2
    assert plan.weight_bytes_per_gpu == 35_278_831_616
    # KV per token per GPU: 2 (K, V) x 8 / 4 heads x 128 dims x 80 layers x 2 B
    assert plan.kv_bytes_per_token_per_gpu == 81_920
    # tokens = (85,899,345,920 x 0.825 - 35,278,831,616) // 81,920
    assert plan.max_total_num_tokens == int((H100_BYTES * 0.825 - 35_278_831_616) // 81_920) == 434_425
    # max_running_requests = clamp(434,425 / 131,072 x 512, 2048, 4096) = 2048
    assert plan.max_running_requests == 2048


def test_deepseek_v3_one_h200_node_tp8_plan():
    plan = plan_memory(get_model("deepseek-v3"), get_gpu("h200"), ParallelConfig(tp=8))
    # H200 (141 GiB) tier: chunk 8192, graph batch 512; reserve 512 + 12,288 + 1,024 + 1,024 MB
    assert plan.reserve_bytes == 14848 * MB
    assert plan.mem_fraction_static == round((144384 - 14848) / 144384, 3) == 0.897
    # FP8 block-128 weights (1 + 4 / 128^2 bytes each) split 8 ways; BF16 router and embeddings
    assert plan.weight_bytes_per_gpu == 85_139_814_768
    # MLA caches one latent per token in every GPU: (512 + 64) x 61 layers x 2 B
    assert plan.kv_bytes_per_token_per_gpu == 576 * 61 * 2 == 70_272
    assert plan.max_total_num_tokens == int((H200_BYTES * 0.897 - 85_139_814_768) // 70_272) == 720_967
    # clamp(720,967 / 163,840 x 512, 2048, 4096) = 2253
    assert plan.max_running_requests == 2253


def test_deepseek_v3_one_h200_node_dp_attention_plan():
    args = ServerArgs(tp=8, dp=8, ep=8, enable_dp_attention=True)
    par = resolve_parallel(args, get_model("deepseek-v3"), get_gpu("h200"))
    plan = plan_memory(get_model("deepseek-v3"), get_gpu("h200"), par)
    # DP attention adds 3 x 512 x 8 and, above a graph batch of 300, 1.5 x 512 x 8 MB to the reserve
    assert plan.reserve_bytes == (14848 + 12288 + 6144) * MB
    assert plan.mem_fraction_static == 0.770
    # attention is replicated on every GPU (attn TP 1), so the weights grow to 95.9 GB per GPU
    w = plan.weights
    assert w.attention == pytest.approx(11_416_208_560)
    assert w.routed_experts == 32 * 3 * 7168 * 2048 * (1 + 4 / 128 ** 2) * 58
    assert plan.weight_bytes_per_gpu == 95_942_454_000
    # each DP rank has its own pool; the MLA latent does not shrink with attention TP
    assert plan.kv_bytes_per_token_per_gpu == 70_272
    assert plan.max_total_num_tokens == int((H200_BYTES * 0.77 - 95_942_454_000) // 70_272) == 293_626
    # chunked prefill 8192 is divided by dp; conservativeness scaled by 0.3
    assert plan.chunked_prefill_size == 1024
    assert plan.schedule_conservativeness == pytest.approx(0.3)


def test_deepseek_v3_on_eight_h100_rejected_with_numbers():
    args = ServerArgs(tp=8, dp=8, ep=8, enable_dp_attention=True)
    par = resolve_parallel(args, get_model("deepseek-v3"), get_gpu("h100"))
    with pytest.raises(ConfigError) as err:
        plan_memory(get_model("deepseek-v3"), get_gpu("h100"), par)
    message = str(err.value)
    assert "does not fit on 8 x h100" in message
    assert "673 GB" in message  # the whole model
    assert "687 GB in all" in message  # eight 80 GiB GPUs
    assert "95.9 GB per GPU" in message
    assert "\n" not in message


def test_model_weight_bytes_of_deepseek_v3():
    # 671.0 B parameters: FP8 block-128 linear layers, BF16 embeddings, router and norms
    model = get_model("deepseek-v3")
    assert model.num_params() == 671_026_279_424
    assert model_weight_bytes(model) == pytest.approx(673.15e9, rel=1e-4)


def test_kv_bytes_fp8_and_gqa_replication():
    llama = get_model("llama-3.1-70b")
    # FP8 KV halves the cell; TP16 > 8 KV heads keeps one head per GPU
    assert kv_bytes_per_token_per_gpu(llama, 4, "fp8") == 40_960
    assert kv_bytes_per_token_per_gpu(llama, 16, "bf16") == 2 * 1 * 128 * 80 * 2
    # PP2 halves the layers per GPU
    assert kv_bytes_per_token_per_gpu(llama, ParallelConfig(tp=4, pp=2), "bf16") == 40_960


def test_pipeline_stage_holds_half_the_layers():
    llama = get_model("llama-3.1-70b")
    tp4 = weight_breakdown(llama, ParallelConfig(tp=4))
    pp2 = weight_breakdown(llama, ParallelConfig(tp=4, pp=2))
    assert pp2.attention == tp4.attention / 2
    assert pp2.dense_mlp == tp4.dense_mlp / 2
    # a stage keeps one vocabulary table, not both
    assert pp2.embeddings == tp4.embeddings / 2


def test_redundant_experts_add_weights():
    model = get_model("deepseek-v3")
    base = weight_breakdown(model, ParallelConfig(tp=32, ep=32, dp=32, dp_attention=True))
    extra = weight_breakdown(model, ParallelConfig(tp=32, ep=32, dp=32, dp_attention=True, num_redundant_experts=32))
    # 8 experts per GPU become 9
    assert extra.routed_experts == pytest.approx(base.routed_experts * 9 / 8)


def test_deepep_low_latency_caps_requests():
    model, gpu = get_model("deepseek-v3"), get_gpu("h200")
    args = ServerArgs(tp=8, dp=8, enable_dp_attention=True, moe_a2a_backend="deepep")
    par = resolve_parallel(args, model, gpu)
    plan = plan_memory(model, gpu, par)
    # 128 tokens per GPU per low-latency dispatch (SGLang's default buffer)
    assert plan.max_running_requests == 128
    assert plan.cuda_graph_max_bs == 128
    with pytest.raises(ConfigError, match="max_running_requests 4096"):
        plan_memory(model, gpu, par, max_running_requests=4096)


def test_user_running_cap_divided_by_dp():
    model, gpu = get_model("deepseek-v3"), get_gpu("h200")
    par = resolve_parallel(ServerArgs(tp=8, dp=8, enable_dp_attention=True), model, gpu)
    assert plan_memory(model, gpu, par, max_running_requests=256).max_running_requests == 32


def test_negative_auto_fraction_rejected():
    # tp32 dp32 DP attention: SGLang's reserve (3 x 512 x 32 MB and more) exceeds an H100
    model, gpu = get_model("deepseek-v3"), get_gpu("h100")
    par = resolve_parallel(ServerArgs(tp=32, dp=32, enable_dp_attention=True), model, gpu)
    with pytest.raises(ConfigError, match="set --mem-fraction-static"):
        plan_memory(model, gpu, par)
    assert plan_memory(model, gpu, par, mem_fraction_static=0.85).max_total_num_tokens > 0


def test_explain_lists_parallel_layout():
    model, gpu = get_model("deepseek-v3"), get_gpu("h200")
    par = resolve_parallel(ServerArgs(tp=8, dp=8, ep=8, enable_dp_attention=True), model, gpu)
    text = plan_memory(model, gpu, par).explain()
    assert "TP 8, DP-attention 8 (attn TP 1), EP 8, PP 1" in text
    assert "routed experts" in text
    assert "max_total_num_tokens per DP rank  293,626" in text
