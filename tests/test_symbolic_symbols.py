"""Configuration symbols: names, assumptions, groupings and bound values."""

from __future__ import annotations

import math

import pytest
import sympy

from sglsim import ConfigError
from sglsim.config.scenario import validate_scenario
from sglsim.costs.efficiency import Efficiency, efficiency_for_gpu
from sglsim.symbolic.symbols import SYMBOL_UNITS, ConfigSymbols, symbol_unit

# (attribute, symbol name, integer) as users' constraint code expects them; all are positive.
SEED_SYMBOLS = [
    ("N_p", "N_p", True), ("N_d", "N_d", True), ("chunk_size", "c", True), ("batch_cap_tokens", "B_tok", True),
    ("batch_cap_requests", "B_req", True), ("tp_size", "TP", True), ("dp_size", "DP", True),
    ("ep_size", "EP", True), ("gpu_flops", "F_gpu", None), ("gpu_mem_bw", "B_mem", None),
    ("gpu_mem_cap", "M_gpu", None), ("nvlink_bw", "B_nvlink", None), ("network_bw", "B_net", None),
    ("network_latency", "L_net", None), ("num_layers", "L", True), ("hidden_dim", "H", True),
    ("head_dim", "d", True), ("num_heads", "n_h", True), ("num_experts", "E", True),
    ("top_k_experts", "k", True), ("kv_bytes_per_token", "kv_b", None), ("cache_capacity", "C_kv", None),
    ("block_size", "B_blk", True), ("cache_hit_rate", "pi_hit", None), ("avg_prompt_len", "n_in_avg", None),
    ("avg_output_len", "n_out_avg", None), ("avg_prefix_match", "prefix_match", None),
]


@pytest.mark.parametrize(("attribute", "name", "integer"), SEED_SYMBOLS)
def test_seed_symbol(attribute, name, integer):
    sym = getattr(ConfigSymbols(), attribute)
    expected = sympy.Symbol(name, positive=True, integer=True) if integer else sympy.Symbol(name, positive=True)
    assert sym == expected
    assert sym.name == name
    assert sym.is_positive
    assert sym.is_integer is integer


def test_groups_partition_the_symbols():
    s = ConfigSymbols()
    groups = [s.decision_vars(), s.frozen_params(), s.hardware_params(), s.model_params(), s.efficiency_params(),
              s.knob_params()]
    flat = [sym for group in groups for sym in group]
    assert len(flat) == len(set(flat))
    assert set(flat) == set(s.all_symbols())
    assert {s.N_p, s.N_d, s.chunk_size, s.batch_cap_requests, s.tp_size} <= set(s.decision_vars())
    assert s.cache_hit_rate in s.frozen_params()
    assert len(s.efficiency) == len(Efficiency.__dataclass_fields__)


def test_every_symbol_has_a_unit():
    for sym in ConfigSymbols().all_symbols():
        assert sym.name in SYMBOL_UNITS, sym.name
        assert symbol_unit(sym) == SYMBOL_UNITS[sym.name]


def test_per_pool_tp_decision_vars():
    s = ConfigSymbols(per_pool_tp=True)
    assert s.tp_prefill in s.decision_vars()
    assert s.tp_decode in s.decision_vars()
    assert s.tp_size not in s.decision_vars()
    assert s.tp_for("prefill") is s.tp_prefill
    assert s.tp_for("default") is s.tp_size
    assert ConfigSymbols().tp_for("prefill") is ConfigSymbols().tp_size


def test_values_for_llama_70b_on_h100():
    s = ConfigSymbols()
    values = s.values(model="llama-3.1-70b", gpu="h100")
    # Every symbol but the decision variables and the frozen workload parameters has a value.
    expected = set(s.all_symbols()) - set(s.decision_vars()) - set(s.frozen_params()) - {s.tp_prefill, s.tp_decode}
    assert set(values) == expected
    assert values[s.num_layers] == 80
    assert values[s.hidden_dim] == 8192
    assert values[s.num_kv_heads] == 8
    assert values[s.kv_bytes_per_token] == 2 * 8 * 128 * 80 * 2
    assert values[s.gpu_mem_cap] == 80 * 1024**3
    assert values[s.gpu_flops] == 989e12
    assert values[s.gemm_peak_ratio] == 1.0
    assert values[s.num_experts] == 0
    assert values[s.top_k_experts] == 0
    assert values[s.sm_version] == 90
    assert math.isinf(values[s.cache_capacity])
    # Efficiency constants are the GPU's fitted preset.
    assert values[s.efficiency["gemm_compute"]] == efficiency_for_gpu("h100").gemm_compute
    assert values[s.efficiency["attn_decode_pad_tokens"]] == efficiency_for_gpu("h100").attn_decode_pad_tokens


def test_values_follow_a_scenario():
    s = ConfigSymbols()
    scenario = validate_scenario({"model": "llama-3.1-70b", "gpu": "h200", "efficiency": {"gemm_compute": 0.6},
                                  "server": {"tp": 4, "quantization": "fp8", "kv_cache_dtype": "fp8_e4m3",
                                             "page_size": 16, "kv_pool_tokens": 50000},
                                  "slo": {"ttft_s": 0.3}})
    values = s.values(scenario=scenario)
    assert values[s.gemm_peak_ratio] == 2.0
    assert values[s.weight_bytes] == 1.0
    assert values[s.kv_bytes_per_token] == 2 * 8 * 128 * 80 * 1
    assert values[s.block_size] == 16
    assert values[s.cache_capacity] == 50000
    assert values[s.efficiency["gemm_compute"]] == 0.6
    assert values[s.ttft_slo] == 0.3
    assert values[s.cuda_graph_max_bs] == 512  # SGLang's tier for tp >= 4 on a 141 GB GPU
    assert s.tp_size not in values


def test_moe_values():
    s = ConfigSymbols()
    values = s.values(model="deepseek-v3", gpu="h200")
    assert values[s.num_experts] == 256
    assert values[s.top_k_experts] == 8
    assert values[s.num_dense_layers] == 3
    assert values[s.kv_lora_rank] == 512
    assert values[s.kv_bytes_per_token] == (512 + 64) * 61 * 2


def test_by_name():
    s = ConfigSymbols()
    assert s.by_name("B_req") is s.batch_cap_requests
    assert s.by_name("batch_cap_requests") is s.batch_cap_requests
    assert s.by_name("gemm_compute") is s.efficiency["gemm_compute"]
    with pytest.raises(ConfigError, match="unknown symbol"):
        s.by_name("B_requests")


def test_unknown_model_and_gpu():
    with pytest.raises(ConfigError, match="unknown model"):
        ConfigSymbols().values(model="llama-9")
    with pytest.raises(ConfigError, match="unknown gpu"):
        ConfigSymbols().values(gpu="v100")
