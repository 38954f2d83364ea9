"""Workloads: trace readers, format detection, sampling, arrival processes, length caps."""

from __future__ import annotations

import numpy as np
import pytest

from sglsim.config.scenario import WorkloadConfig
from sglsim.errors import ConfigError
from sglsim.workload.arrivals import arrival_times
from sglsim.workload.builder import build_driver
from sglsim.workload.lengths import LengthDist, cap_total_tokens
from sglsim.workload.traces import detect_format, load_trace


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mooncake_reader_and_blocks(tmp_path):
    path = write(tmp_path, "t.jsonl",
                 '{"timestamp": 1000, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}\n'
                 '{"timestamp": 2500, "input_length": 600, "output_length": 9, "hash_ids": [0, 3]}\n')
    trace = load_trace(path)
    assert trace.format == "mooncake"
    assert list(trace.arrival_s) == [0.0, 1.5]
    assert trace.prompt_blocks(0) == ((0, 1, 2), (512, 512, 76))
    assert trace.prompt_blocks(1) == ((0, 3), (512, 88))


@pytest.mark.parametrize("text,detail", [
    ('{"timestamp": 0, "input_length": 10, "output_length": 1}\n', "missing key 'hash_ids'"),
    ('{"timestamp": 0, "input_length": 2000, "output_length": 1, "hash_ids": [1]}\n', "does not fit"),
    ('{"timestamp": 0, "input_length": -3, "output_length": 1, "hash_ids": [1]}\n', "input_length -3"),
    ('{"timestamp": 0, "input_length": 10\n', "not valid JSON"),
])
def test_mooncake_malformed_lines(tmp_path, text, detail):
    path = write(tmp_path, "bad.jsonl", '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]}\n' + text)
    with pytest.raises(ConfigError, match=f"malformed trace line 2 .*{detail}"):
        load_trace(path)


def test_azure_and_vidur_readers(tmp_path):
    azure = write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                  "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    trace = load_trace(azure)
    assert trace.format == "azure"
    assert trace.arrival_s[1] == pytest.approx(4.314579, abs=1e-6)
    assert list(trace.input_len) == [374, 396]
    vidur = write(tmp_path, "v.csv", "num_decode_tokens,num_prefill_tokens\n44,374\n109,396\n")
    trace = load_trace(vidur)
    assert trace.format == "vidur" and trace.arrival_s is None
    assert list(trace.input_len) == [374, 396] and list(trace.output_len) == [44, 109]


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unrecognised trace format"):
        detect_format(write(tmp_path, "x.txt", "hello,world\n"))
    with pytest.raises(ConfigError, match="trace file not found"):
        load_trace(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="malformed trace line 2 .*ContextTokens 'abc'"):
        load_trace(write(tmp_path, "b.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.1,abc,4\n"))


def test_real_traces_load(mooncake_trace, azure_trace):
    moon = load_trace(mooncake_trace)
    assert len(moon) == 12031
    assert moon.arrival_s.max() == pytest.approx(3536.999)
    assert moon.input_len.mean() == pytest.approx(12035.06, abs=0.01)
    assert len(moon.block_ids) == 288500
    azure = load_trace(azure_trace)
    assert len(azure) == 19366
    assert azure.input_len.mean() == pytest.approx(1154.7, abs=0.05)


def test_trace_rate_time_scale_and_first_n(mooncake_trace):
    wl = WorkloadConfig(trace=str(mooncake_trace), num_requests=100, time_scale=2.0)
    driver, _ = build_driver(wl)
    trace = load_trace(mooncake_trace)
    assert driver.num_requests == 100
    assert np.allclose(driver.arrival_s, trace.arrival_s[:100] * 2.0)
    driver, _ = build_driver(WorkloadConfig(trace=str(mooncake_trace), num_requests=2000, rate=10.0))
    assert 2000 / driver.arrival_s[-1] == pytest.approx(10.0, rel=0.1)
    assert list(driver.input_len) == list(trace.input_len[:2000])


def test_trace_sampling_modes(azure_trace):
    base = dict(trace=str(azure_trace), rate=5.0, seed=3)
    shuffled, _ = build_driver(WorkloadConfig(num_requests=50, trace_sampling="shuffle", **base))
    again, _ = build_driver(WorkloadConfig(num_requests=50, trace_sampling="shuffle", **base))
    assert list(shuffled.input_len) == list(again.input_len)
    drawn, _ = build_driver(WorkloadConfig(num_requests=30000, trace_sampling="with_replacement", **base))
    assert drawn.num_requests == 30000
    with pytest.raises(ConfigError, match="the trace has 19366 requests"):
        build_driver(WorkloadConfig(num_requests=30000, **base))


def test_cap_total_tokens_matches_vidur_rule():
    new_in, new_out = cap_total_tokens(np.array([5000, 100, 4000]), np.array([1000, 50, 96]), 4096)
    # Excess 1904 split 5000:1000 -> ceil(1586.67)=1587 and ceil(317.33)=318.
    assert list(new_in) == [3413, 100, 4000]
    assert list(new_out) == [682, 50, 96]


def test_arrival_processes():
    rng = np.random.default_rng(0)
    poisson = arrival_times("poisson", 4.0, 20000, rng)
    assert poisson[0] == 0.0
    assert 20000 / poisson[-1] == pytest.approx(4.0, rel=0.03)
    gaps = np.diff(arrival_times("gamma", 4.0, 20000, rng, cv=3.0))
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.1)
    assert list(arrival_times("constant", 2.0, 3, rng)) == [0.0, 0.5, 1.0]
    with pytest.raises(ConfigError, match="invalid rate"):
        arrival_times("poisson", 0.0, 3, rng)


def test_length_distributions():
    rng = np.random.default_rng(1)
    values = LengthDist("lognormal", mean=500, cv=1.0).sample(rng, 50000)
    assert values.mean() == pytest.approx(500, rel=0.05)
    assert LengthDist("constant", mean=7).sample(rng, 3).tolist() == [7, 7, 7]
    assert LengthDist("uniform", min=3, max=5).sample(rng, 1000).min() >= 3
    with pytest.raises(ConfigError, match="unknown length distribution"):
        LengthDist("zipf")


def test_session_prompts_grow_with_history():
    # Two-turn sessions: turn 2 re-sends the system prompt, turn 1 and its output.
    from sglsim.config.scenario import SharedPrefixSpec
    wl = WorkloadConfig(num_requests=2, rate=1.0, input_len={"mean": 50}, output_len={"mean": 10},
                        shared_prefix=SharedPrefixSpec(num_groups=1, system_prompt_len=100, turns=2))
    driver, _ = build_driver(wl)
    sent = []

    class Sink:
        def schedule_arrival(self, time, req):
            sent.append(req)

    driver.start(Sink())
    first = sent[0]
    driver.on_arrival(first, 0.0)
    assert first.prompt.lens == (100, 50)
    first.num_output_tokens = 10
    driver.on_done(first, 1.0)
    second = sent[-1]
    assert second.prompt.ids[:2] == first.prompt.ids
    assert second.prompt.lens == (100, 50, 9, 1, 50)
    assert second.input_len == 210
    assert second.arrived_at == 1.0
