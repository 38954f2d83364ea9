"""Bad input found by trying the command line as a new user: one-line errors, exit 2, no traceback."""

from __future__ import annotations

import pytest

from sglsim.cli.main import main


def cli_error(capsys, *args: str) -> str:
    """Run `sglsim simulate ARGS`; assert exit 2 with a single error line and return it."""
    code = main(["simulate", "--no-progress", "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sglsim: error: "), err
    return lines[0]


@pytest.mark.parametrize("flag,field", [("--seed", "workload.seed"), ("--router-seed", "cluster.seed")])
def test_negative_seed_is_a_config_error(capsys, flag, field):
    # numpy rejects negative seeds, so the scenario must reject them before numpy raises.
    line = cli_error(capsys, flag, "-1", "--num-requests", "3", "--input-len", "10", "--output-len", "2")
    assert f"invalid {field} -1" in line
    assert "greater than or equal to 0" in line


@pytest.mark.parametrize("flag,field", [("--rate", "workload.rate"), ("--time-scale", "workload.time_scale"),
                                        ("--cv", "workload.cv"), ("--slo-ttft", "slo.ttft_s"),
                                        ("--schedule-conservativeness", "server.schedule_conservativeness")])
def test_infinite_numbers_are_config_errors(capsys, flag, field):
    # An infinite rate put every request at t = 0 without a word; others crashed later.
    line = cli_error(capsys, flag, "inf", "--num-requests", "3", "--input-len", "10", "--output-len", "2")
    assert f"invalid {field} inf" in line
    assert "finite" in line


def test_infinite_think_time_in_a_scenario_file(capsys, tmp_path):
    # think_time_s: .inf used to end in an OverflowError inside the cache-aware router.
    path = tmp_path / "s.yaml"
    path.write_text("workload: {num_requests: 6, shared_prefix: {num_groups: 2, turns: 3, think_time_s: .inf}}\n")
    line = cli_error(capsys, str(path))
    assert "invalid workload.shared_prefix.think_time_s inf" in line


@pytest.mark.parametrize("text,fragment", [
    # A zero fraction divided by zero deep inside the roofline (ZeroDivisionError traceback).
    ("gemm_compute: 0", "invalid efficiency.gemm_compute 0.0: expected a fraction of peak in (0, 1]"),
    # Negative or above-peak fractions ran and produced negative or faster-than-silicon steps.
    ("gemm_memory: -0.5", "invalid efficiency.gemm_memory -0.5: expected a fraction of peak in (0, 1]"),
    ("attn_decode_memory: 5", "invalid efficiency.attn_decode_memory 5.0: expected a fraction of peak in (0, 1]"),
    ("tbo_overlap_fraction: 1.5", "invalid efficiency.tbo_overlap_fraction 1.5: expected a fraction in [0, 1]"),
    ("gemm_floor_s: -1e-6", "invalid efficiency.gemm_floor_s -1e-06: expected a number >= 0"),
    ("attn_decode_pad_tokens: -3", "invalid efficiency.attn_decode_pad_tokens -3.0: expected a number >= 0"),
    ("foo: 1", "unknown efficiency constant 'foo'"),
])
def test_efficiency_overrides_are_checked(capsys, tmp_path, text, fragment):
    path = tmp_path / "s.yaml"
    path.write_text(f"workload: {{num_requests: 3, input_len: 10, output_len: 2}}\nefficiency: {{{text}}}\n")
    line = cli_error(capsys, str(path))
    head, _, allowed = fragment.partition(": ")
    assert line == f"sglsim: error: {head} in {path}: {allowed}" or (
        head.startswith("unknown") and line.startswith(f"sglsim: error: {head} in {path}: choose one of"))


def test_efficiency_override_within_range_is_used(tmp_path):
    from .helpers import run

    _, slow = run(workload={"num_requests": 1, "input_len": 4096, "output_len": 2},
                  efficiency={"gemm_compute": 0.2})
    _, fast = run(workload={"num_requests": 1, "input_len": 4096, "output_len": 2})
    assert slow.summary["ttft_s"]["mean"] > fast.summary["ttft_s"]["mean"]


@pytest.mark.parametrize("args,fragment", [
    # Each of these ran and silently ignored one of the two options.
    (["--trace", "TRACE", "--input-len", "100"],
     "conflicting workload.input_len and workload.trace in command line: a trace sets the lengths"),
    (["--trace", "TRACE", "--output-len", "100"],
     "conflicting workload.output_len and workload.trace in command line: a trace sets the lengths"),
    (["--trace", "TRACE", "--shared-prefix-groups", "4"],
     "conflicting workload.shared_prefix and workload.trace in command line: a trace sets the prompts"),
    (["--concurrency", "4", "--rate", "3", "--concurrency-ramp-duration", "2", "--input-len", "10",
      "--output-len", "2"],
     "conflicting workload.concurrency_ramp_s and workload.rate in command line: a concurrency ramp applies "
     "to a closed loop"),
    (["--trace", "TRACE", "--rate", "5", "--time-scale", "2"],
     "conflicting workload.time_scale and workload.rate in command line: time_scale stretches a trace's "
     "own timestamps"),
    (["--input-len", "10", "--output-len", "2", "--rate", "5", "--time-scale", "2"],
     "invalid workload.time_scale 2.0 in command line: time_scale stretches a trace's own timestamps"),
    (["--input-len", "10", "--output-len", "2", "--rate", "5", "--cv", "3"],
     "conflicting workload.cv and workload.arrival 'poisson' in command line: cv shapes gamma arrivals"),
    (["--input-len", "10", "--output-len", "2", "--arrival", "gamma"],
     "invalid workload.arrival 'gamma' in command line: an arrival process needs a rate"),
])
def test_conflicting_workload_options(capsys, tmp_path, args, fragment):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [0]}\n')
    line = cli_error(capsys, *[str(trace) if a == "TRACE" else a for a in args])
    assert fragment in line


def test_unknown_flag_points_to_the_subcommand_help(capsys):
    # argparse reports unknown flags from the top-level parser, whose hint read
    # "(see sglsim sglsim --help)".
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--bogus-flag"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == ("sglsim: error: unrecognized arguments: --bogus-flag "
                                       "(see sglsim simulate --help)\n")


def test_unknown_subcommand_points_to_the_main_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulat"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("sglsim: error: argument COMMAND: invalid choice: 'simulat'")
    assert err.endswith("(see sglsim --help)\n")


@pytest.mark.parametrize("args,fragment", [
    # SGLang's attention layers assert heads % attn_tp_size == 0; TP 3 used to run with 10.67
    # heads per GPU.
    (["--tp", "3"], "invalid tp 3: the 32 attention heads of llama-3.1-8b must split evenly over "
                    "the attention TP size 3"),
    (["--model", "qwen3-32b", "--tp", "16", "--dp", "8", "--enable-dp-attention"], None),
    (["--model", "qwen3-235b-a22b", "--tp", "8", "--dp", "2", "--enable-dp-attention"], None),
    # 8 KV heads over attention TP 16 is fine (each KV head is replicated on 2 GPUs), 8 over 12 is not.
    (["--model", "llama-3.1-70b", "--tp", "12", "--gpu", "gb200"],
     "invalid tp 12: the 64 attention heads of llama-3.1-70b must split evenly over the attention TP size 12"),
])
def test_tp_must_split_the_attention_heads(capsys, args, fragment):
    common = ["--input-len", "10", "--output-len", "2", "--num-requests", "2"]
    if fragment is None:
        assert main(["simulate", "--no-progress", "--quiet", *args, *common]) == 0
    else:
        assert fragment in cli_error(capsys, *args, *common)


def test_kv_heads_must_split_or_replicate_evenly():
    from sglsim.errors import ConfigError
    from sglsim.hardware.models import ModelSpec
    from .helpers import scenario
    from sglsim.serving.parallel import resolve_parallel
    from sglsim.hardware.gpus import get_gpu

    # 24 query heads, 6 KV heads: TP 4 splits queries (6 each) but not KV heads (1.5 each),
    # and 6 KV heads cannot be replicated evenly over 4 GPUs either.
    model = ModelSpec("odd", 4, 3072, 24, 6, 128, 8192, 32000, 4096)
    args = scenario(server={"tp": 4}).server
    with pytest.raises(ConfigError, match="invalid tp 4: the 6 KV heads of odd must split evenly over "
                                          "the attention TP size 4, or 4 be a multiple of 6"):
        resolve_parallel(args, model, get_gpu("h100"))
    # TP 12 replicates each of the 6 KV heads on 2 GPUs and splits the 24 query heads 2 each.
    assert resolve_parallel(scenario(server={"tp": 12}).server, model, get_gpu("gb200")).tp == 12


def test_summary_table_without_completions(capsys):
    # Every request is longer than the 10-token KV pool: the table printed "n/a %" as the hit
    # rate and the rejected count without the reason (only the JSON had it).
    assert main(["simulate", "--no-progress", "--kv-pool-tokens", "10", "--num-requests", "3"]) == 0
    out = capsys.readouterr().out
    assert "Prefix cache hit rate:                         n/a\n" in out
    assert "Requests rejected:                               3\n" in out
    assert "  input longer than the server accepts:          3\n" in out


def test_output_piped_into_head_exits_quietly():
    # `sglsim simulate | head -3` closes the pipe early; Python then raised BrokenPipeError with a
    # traceback on stderr.
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "sglsim.cli.main", "simulate", "--no-progress",
                             "--input-len", "10", "--output-len", "2", "--num-requests", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the table is printed
    err = proc.stderr.read().decode()
    proc.wait()
    assert "Traceback" not in err
    assert proc.returncode == 0


@pytest.mark.parametrize("args,fragment", [
    # SGLang asserts chunked_prefill_size % page_size == 0. A page larger than the chunk left the
    # page-aligned chunk at 0 tokens and the server idle with requests waiting (RuntimeError).
    (["--page-size", "1000000"], "invalid page_size 1000000: SGLang needs chunked_prefill_size 8192 "
                                 "to be a multiple of it"),
    (["--page-size", "64", "--chunked-prefill-size", "100"],
     "invalid page_size 64: SGLang needs chunked_prefill_size 100 to be a multiple of it"),
    # SGLang rounds the KV pool down to whole pages and stops when none is left.
    (["--page-size", "1000000", "--chunked-prefill-size", "-1"],
     "invalid page_size 1000000: the KV pool of 327,044 tokens contains no whole page"),
])
def test_page_size_rules(capsys, args, fragment):
    line = cli_error(capsys, *args, "--input-len", "200", "--output-len", "20", "--num-requests", "5")
    assert fragment in line


def test_kv_pool_rounds_down_to_whole_pages():
    from sglsim.hardware.gpus import get_gpu
    from sglsim.hardware.models import get_model
    from sglsim.serving.memory_plan import plan_memory

    # Llama-3.1-8B on one H100 has 425,348 KV tokens; pages of 64 leave 6,646 whole pages.
    plan = plan_memory(get_model("llama-3.1-8b"), get_gpu("h100"), 1, page_size=64)
    assert plan.max_total_num_tokens == 6646 * 64


@pytest.mark.parametrize("kind", ["scenario", "trace", "model"])
def test_files_that_are_not_utf8(capsys, tmp_path, kind):
    # Each reader raised UnicodeDecodeError with a traceback.
    if kind == "trace":
        path = tmp_path / "t.jsonl"
        path.write_bytes(b'{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [0]}\n\xff\xfe\n')
        args = ["--trace", str(path)]
        expected = f"invalid trace file {path}: not UTF-8 text (byte 0xff)"
    elif kind == "model":
        path = tmp_path / "config.json"
        path.write_bytes(b"\xff\xfe{}")
        args = ["--model", str(path), "--num-requests", "2", "--input-len", "5", "--output-len", "2"]
        expected = f"invalid model config {path}: not UTF-8 text (byte 0xff)"
    else:
        path = tmp_path / "s.yaml"
        path.write_bytes(b"model: llama-3.1-8b\n\xff\n")
        args = [str(path)]
        expected = f"invalid scenario file {path}: not UTF-8 text (byte 0xff)"
    assert cli_error(capsys, *args) == f"sglsim: error: {expected}"



@pytest.mark.parametrize("target,reason", [("missing/out.json", "folder {parent} not found"),
                                           (".", "{path} is a folder")])
def test_output_path_checked_before_the_run(capsys, tmp_path, target, reason):
    # An unwritable --output raised FileNotFoundError or IsADirectoryError after the whole run.
    path = tmp_path / target
    line = cli_error(capsys, "--num-requests", "2", "--input-len", "5", "--output-len", "2", "--output", str(path))
    detail = reason.format(parent=path.parent, path=path)
    assert line == f"sglsim: error: invalid --output {path}: {detail}"


def test_out_of_memory_is_one_line():
    # 100 million requests need 0.75 GiB per length array, beyond a 1.5 GiB address space.
    # numpy's MemoryError used to come with a traceback.
    import resource
    import subprocess
    import sys

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))

    proc = subprocess.run([sys.executable, "-m", "sglsim.cli.main", "simulate", "--no-progress",
                           "--num-requests", "100000000", "--input-len", "10", "--output-len", "2",
                           "--rate", "1"], capture_output=True, text=True, preexec_fn=limit_memory)
    assert proc.returncode == 2
    assert proc.stderr.startswith("sglsim: error: out of memory (")
    assert proc.stderr.endswith("); simulate fewer requests (--num-requests) or a shorter trace\n")
    assert proc.stderr.count("\n") == 1


def test_context_length_above_the_model_is_rejected(capsys):
    # SGLang's model config raises when --context-length exceeds the model's own window (unless
    # SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN is set); sglsim ran a 500,000-token prompt on
    # Llama-3.1-8B, whose window is 131,072 tokens.
    line = cli_error(capsys, "--context-length", "1000000", "--input-len", "500", "--output-len", "2",
                     "--num-requests", "2")
    assert line == ("sglsim: error: invalid context_length 1000000: llama-3.1-8b has a context window of "
                    "131072 tokens; SGLang rejects a longer one unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN "
                    "is set, so give a model config with a larger max_position_embeddings instead")


@pytest.mark.parametrize("flag, fragment", [
    ("--num-requests", "invalid workload.num_requests 99999999999999999999 in command line: input should be "
                       "less than or equal to 100000000"),
    ("--turns", "invalid workload.shared_prefix.turns 99999999999999999999"),
    ("--shared-prefix-groups", "invalid workload.shared_prefix.num_groups 99999999999999999999"),
    ("--max-request-tokens", "invalid workload.max_request_tokens 99999999999999999999"),
    ("--replicas", "invalid cluster.replicas 99999999999999999999"),
    ("--chunked-prefill-size", "expected a token count from 1 to 2147483647, or -1 to disable chunking"),
])
def test_huge_numbers_are_config_errors(capsys, flag, fragment):
    # These overflowed numpy's 64-bit integers, or built servers until the run hung.
    line = cli_error(capsys, flag, "99999999999999999999", "--input-len", "10", "--output-len", "2")
    assert fragment in line


@pytest.mark.parametrize("text, fragment", [
    ("input_len: {dist: lognormal, mean: 100, cv: 1e300}", "invalid workload.input_len.cv '1e300'"),
    ("input_len: {dist: uniform, mean: 100, max: 100000000000000000000000}",
     "invalid workload.input_len.max 100000000000000000000000"),
])
def test_huge_length_settings_in_scenario(capsys, tmp_path, text, fragment):
    path = tmp_path / "s.yaml"
    path.write_text(f"model: llama-3.1-8b\ngpu: h100\nworkload:\n  num_requests: 3\n  {text}\n")
    line = cli_error(capsys, str(path))
    assert fragment in line


@pytest.mark.parametrize("text, fragment", [
    ("gpu: h100\ngpu: a100\n", "duplicate key 'gpu' at line 3"),
    ("server: {tp: 1, tp: 2}\n", "duplicate key 'tp' at line 2"),
    ("cluster:\n", "invalid cluster None in"),
])
def test_scenario_mapping_mistakes(capsys, tmp_path, text, fragment):
    # PyYAML silently keeps the last of two equal keys, and an empty section was read as None.
    path = tmp_path / "s.yaml"
    path.write_text(f"model: llama-3.1-8b\n{text}")
    line = cli_error(capsys, str(path))
    assert fragment in line


def test_kv_pool_below_one_prompt(capsys):
    # The message used to say "prompts of at most -5 tokens".
    line = cli_error(capsys, "--kv-pool-tokens", "1", "--num-requests", "3", "--input-len", "10",
                     "--output-len", "2")
    assert "invalid KV capacity 1 tokens: the server accepts no prompt; expected at least 7 tokens" in line

