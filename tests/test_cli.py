"""The command line: the demo, JSON output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sglsim.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sglsim.cli.main", *args], capture_output=True, text=True)


def test_default_demo_runs(capsys):
    assert main(["simulate", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Requests completed:" in out and "2,000" in out
    assert "Prefix cache hit rate:" in out


def test_output_json_has_the_documented_keys(tmp_path):
    path = tmp_path / "out.json"
    code = main(["simulate", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-len", "800",
                 "--output-len", "50", "--num-requests", "30", "--rate", "10", "--output", str(path),
                 "--no-progress", "--quiet"])
    assert code == 0
    data = json.loads(path.read_text())
    summary = data["summary"]
    assert summary["num_completed"] == 30
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert set(summary[key]) >= {"mean", "p50", "p90", "p99"}
    for key in ("output_throughput_tok_s", "input_throughput_tok_s", "request_throughput_req_s", "cache_hit_rate"):
        assert summary[key] is not None
    assert data["config"]["server"]["chunked_prefill_size"] == 8192
    assert data["config"]["scenario"]["workload"]["num_requests"] == 30


def test_scenario_yaml_with_flag_override(tmp_path):
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("model: llama-3.1-8b\ngpu: h100\ncluster: {replicas: 2}\n"
                         "workload: {num_requests: 20, rate: 5, input_len: 300, output_len: 20}\n")
    out = tmp_path / "o.json"
    assert main(["simulate", str(yaml_path), "--replicas", "3", "--output", str(out), "--quiet", "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["num_gpus"] == 3
    assert len(data["summary"]["workers"]) == 3


@pytest.mark.parametrize("args,fragment", [
    (["--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["--gpu", "v100"], "unknown gpu 'v100'"),
    (["--tp", "0"], "invalid server.tp 0"),
    (["--tp", "-2"], "invalid server.tp -2"),
    (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
    (["--trace", "/nonexistent/trace.jsonl"], "trace file not found: /nonexistent/trace.jsonl"),
    (["--input-len", "200000"], "invalid input_len 200000: the server accepts prompts of at most"),
    (["--input-len", "50000", "--kv-pool-tokens", "20000"], "KV capacity 20000 tokens"),
    (["--schedule-policy", "sjf"], "invalid server.schedule_policy 'sjf'"),
    (["--router", "magic"], "invalid cluster.router 'magic'"),
    (["--rate", "-1"], "invalid workload.rate -1.0"),
    (["--input-len", "100", "--random-range-ratio", "1.5"], "invalid --random-range-ratio 1.5: expected a number"),
    (["--random-range-ratio", "0.8"], "invalid --random-range-ratio 0.8: it needs --input-len"),
    (["--concurrency-ramp-duration", "-1"], "invalid workload.concurrency_ramp_s -1.0"),
    (["--concurrency-ramp-duration", "3"], "a concurrency ramp needs workload.concurrency"),
    (["--concurrency", "4", "--rate", "2", "--concurrency-ramp-duration", "3"], "drop workload.rate"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    proc = run_cli("simulate", "--no-progress", "--num-requests", "5", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


def test_malformed_trace_line_is_reported(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 100, "output_length": 3, "hash_ids": [1]}\n{"oops": 1}\n')
    proc = run_cli("simulate", "--trace", str(path), "--no-progress")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"sglsim: error: malformed trace line 2 in {path}: missing key 'timestamp'"


def test_too_long_trace_rows_are_rejected_and_counted(tmp_path):
    # Valid rows that no server could serve are rejected and counted; the run goes on.
    rows = [{"timestamp": i * 10, "input_length": n, "output_length": 4, "hash_ids": list(range(1000 * i, 1000 * i + (n + 511) // 512))}
            for i, n in enumerate([1000, 5000, 2000])]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.json"
    assert main(["simulate", "--trace", str(path), "--context-length", "4096", "--output", str(out),
                 "--quiet", "--no-progress"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["num_completed"] == 2
    assert summary["num_rejected"] == 1


def test_bench_serving_load_flags(tmp_path):
    # bench_serving --random-input-len 1000 --random-output-len 40 --random-range-ratio 0.8
    #   --request-rate 50 --max-concurrency 8
    out = tmp_path / "o.json"
    assert main(["simulate", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-len", "1000", "--output-len", "40",
                 "--random-range-ratio", "0.8", "--rate", "50", "--concurrency", "8", "--num-requests", "40",
                 "--output", str(out), "--include-requests", "--quiet", "--no-progress"]) == 0
    data = json.loads(out.read_text())
    workload = data["config"]["scenario"]["workload"]
    assert workload["input_len"] == {"dist": "uniform", "mean": 900.0, "std": 0.0, "cv": 1.0, "min": 800,
                                     "max": 1000}
    assert (workload["output_len"]["min"], workload["output_len"]["max"]) == (32, 40)
    assert (workload["rate"], workload["concurrency"]) == (50.0, 8)
    lengths = data["requests"]["input_len"]
    assert min(lengths) >= 800
    assert max(lengths) <= 1000
    assert len(set(lengths)) > 1
    assert data["summary"]["num_completed"] == 40


def test_concurrency_ramp_flag(tmp_path):
    out = tmp_path / "o.json"
    assert main(["simulate", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-len", "200", "--output-len", "20",
                 "--concurrency", "5", "--concurrency-ramp-duration", "2", "--num-requests", "20",
                 "--output", str(out), "--include-requests", "--quiet", "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["scenario"]["workload"]["concurrency_ramp_s"] == 2.0
    # aiperf's ramp: the five slots open at 0, 0.5, 1, 1.5 and 2 s
    arrived = sorted(data["requests"]["arrived_at"])
    assert arrived[0] == 0.0
    assert 0.5 in arrived
    assert 2.0 in arrived


def test_rejected_requests_are_listed_with_records(tmp_path):
    # --include-requests lists rejected requests beside the completed ones, with the reason.
    rows = [{"timestamp": i * 10, "input_length": n, "output_length": 4,
             "hash_ids": list(range(1000 * i, 1000 * i + (n + 511) // 512))}
            for i, n in enumerate([1000, 5000])]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.json"
    assert main(["simulate", "--trace", str(path), "--context-length", "4096", "--output", str(out),
                 "--include-requests", "--quiet", "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["requests"]["rid"] == [0]
    assert data["rejected_requests"] == [{"rid": 1, "arrived_at": 0.01, "input_len": 5000, "output_len": 4,
                                          "reason": "input longer than the server accepts"}]
