"""Trace files a real user might hand over: unsorted rows, non-finite and huge timestamps."""

from __future__ import annotations

import pytest

from sglsim.errors import ConfigError
from sglsim.workload.traces import load_trace

from .helpers import run


def mooncake_row(ts_ms: str, n_in: int = 100, n_out: int = 4, block: int = 0) -> str:
    return (f'{{"timestamp": {ts_ms}, "input_length": {n_in}, "output_length": {n_out}, '
            f'"hash_ids": [{block}]}}\n')


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("stamp", ["NaN", "Infinity"])
def test_non_finite_mooncake_timestamp_is_malformed(tmp_path, stamp):
    # Python's json module reads NaN and Infinity; a NaN arrival used to vanish from the run
    # ("requests lost") and an infinite one never arrived.
    path = write(tmp_path, "t.jsonl", mooncake_row("0") + mooncake_row(stamp, block=1))
    with pytest.raises(ConfigError, match=f"malformed trace line 2 .*timestamp {stamp.lower()[:3]}"):
        load_trace(path)


@pytest.mark.parametrize("stamp", ["inf", "nan", "-inf"])
def test_non_finite_vidur_arrival_is_malformed(tmp_path, stamp):
    # `inf` parsed as a float and crashed the cache-aware router with an OverflowError.
    path = write(tmp_path, "v.csv", f"num_prefill_tokens,num_decode_tokens,arrived_at\n10,2,0\n20,3,{stamp}\n")
    with pytest.raises(ConfigError, match=f"malformed trace line 3 .*arrived_at '{stamp}'"):
        load_trace(path)


def test_unsorted_trace_is_replayed_in_timestamp_order(tmp_path):
    # Row 1 arrives at 5 s, row 2 at 0 s. The open-loop driver pushed them in file order and the
    # event queue raised "event scheduled in the past"; rows now replay in timestamp order.
    path = write(tmp_path, "t.jsonl", mooncake_row("5000", n_in=300, n_out=7, block=0)
                 + mooncake_row("0", n_in=100, n_out=4, block=1))
    _, res = run(workload={"trace": str(path)})
    assert res.summary["num_completed"] == 2
    arrived = sorted(zip(res.requests["arrived_at"].tolist(), res.requests["input_len"].tolist()))
    assert arrived == [(0.0, 100), (5.0, 300)]


def test_huge_relative_timestamp_is_rejected(tmp_path):
    # 1e300 ms after the first row: float time stops advancing there, so the second request's
    # TTFT came out as a silent 0 and the throughputs as ~1e-300.
    path = write(tmp_path, "t.jsonl", mooncake_row("0") + mooncake_row("1e300", block=1))
    with pytest.raises(ConfigError, match=r"invalid trace .*row 2 arrives 1e\+297 s after the first; "
                                          r"at most 1e\+09 s"):
        run(workload={"trace": str(path)})


def test_huge_time_scale_is_rejected(tmp_path):
    path = write(tmp_path, "t.jsonl", mooncake_row("0") + mooncake_row("1000", block=1))
    with pytest.raises(ConfigError, match=r"invalid workload.time_scale 1e\+300"):
        run(workload={"trace": str(path), "time_scale": 1e300})


def test_tiny_rate_is_rejected():
    # Poisson gaps at 1e-12 requests/s put the second request ~1e12 s out.
    with pytest.raises(ConfigError, match=r"invalid workload.rate 1e-12: .*at most 1e\+09 s"):
        run(workload={"rate": 1e-12, "num_requests": 3, "input_len": 10, "output_len": 2})


def test_azure_stamps_ignore_time_zone(tmp_path, monkeypatch):
    # Azure stamps carry no zone. Read as local time, a trace crossing a daylight-saving change
    # (New York fell back at 02:00 on 2023-11-05) got a one-hour gap of 7200 s, so the same file
    # gave different runs on different machines.
    import time

    path = write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                 "2023-11-05 01:30:00.0000000,10,2\n2023-11-05 02:30:00.0000000,10,2\n")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert list(load_trace(path).arrival_s) == [0.0, 3600.0]
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("name,text", [
    ("v.csv", "num_prefill_tokens,num_decode_tokens\n100,10\n100,10,5,6\n"),
    ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
              "2023-11-16 18:15:47.6805900,374,44,9\n"),
])
def test_csv_row_with_extra_columns_is_malformed(tmp_path, name, text):
    # Rows shorter than the header were rejected, but longer ones were read and the extra values
    # dropped without a word.
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=r"malformed trace line 3 .*expected \d columns, found \d"):
        load_trace(path)


@pytest.mark.parametrize("name, text, fragment", [
    ("m.jsonl", mooncake_row("0") + mooncake_row("1", n_out=10**30), f"line 2 .*output_length {10**30} is above"),
    ("m.jsonl", mooncake_row("0") + mooncake_row("1", block=2**64), "line 2 .*hash_ids must be .* integers from 0"),
    ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1e30,4\n",
     "line 2 .*ContextTokens '1e30' is above"),
    ("v.csv", "num_prefill_tokens,num_decode_tokens\n10,99999999999999999999\n",
     "line 2 .*num_decode_tokens '99999999999999999999' is above"),
])
def test_huge_trace_numbers_are_malformed(tmp_path, name, text, fragment):
    # Numbers past int64 raised OverflowError when the rows were packed into arrays.
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=f"malformed trace {fragment}"):
        load_trace(path)


@pytest.mark.parametrize("name, text, fmt", [
    ("m.jsonl", mooncake_row("0"), "mooncake"),
    ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,10,4\n", "azure"),
    ("v.csv", "num_prefill_tokens,num_decode_tokens,arrived_at\n10,2,0\n", "vidur"),
])
def test_trace_with_utf8_bom_is_read(tmp_path, name, text, fmt):
    # Spreadsheet tools save CSV with a byte-order mark, which hid the first column or the JSON brace.
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    trace = load_trace(path)
    assert trace.format == fmt
    assert len(trace) == 1
