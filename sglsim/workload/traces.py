"""Trace readers: Mooncake JSONL, Azure LLM CSV and Vidur length CSV, recognised from the file.

Every reader validates the whole file up front (a malformed row is a
`ConfigError` naming the file, line and value) and returns a `Trace` of
numpy arrays, so a run never stops half-way on bad input.

Formats:
- Mooncake JSONL: objects with `timestamp` (ms), `input_length`,
  `output_length`, `hash_ids` (one id per 512-token block, the last block
  partial: input_length - 512 x (len(hash_ids) - 1) tokens).
- Azure CSV: header `TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps as
  wall-clock text (`2023-11-16 18:15:46.6805900`), read as UTC when they name no zone.
- Vidur CSV: header `num_prefill_tokens,num_decode_tokens` with an optional
  `arrived_at` column (seconds); columns may come in any order.
"""

from __future__ import annotations

import csv
import json
import math
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import ConfigError, not_utf8
from ..limits import MAX_TOKENS

MOONCAKE_BLOCK_TOKENS = 512
MAX_HASH_ID = 2**63 - 1
"""Largest Mooncake hash id: ids are stored as int64."""
TRACE_FORMATS = ("auto", "mooncake", "azure", "vidur")


@dataclass
class Trace:
    """Requests of a trace in file order (a replay at its timestamps sends them in time order)."""

    path: str
    format: str
    arrival_s: np.ndarray | None
    """Arrival times relative to the first row, seconds (None if the file has none)."""
    input_len: np.ndarray
    output_len: np.ndarray
    block_ids: np.ndarray | None = None
    """Concatenated Mooncake hash ids; request i owns block_ids[block_start[i]:block_start[i+1]]."""
    block_start: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.input_len)

    def prompt_blocks(self, i: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(ids, lens) of row i's prompt blocks, or None when the trace has no prefix ids."""
        if self.block_ids is None:
            return None
        ids = tuple(self.block_ids[self.block_start[i]:self.block_start[i + 1]].tolist())
        last = int(self.input_len[i]) - MOONCAKE_BLOCK_TOKENS * (len(ids) - 1)
        lens = (MOONCAKE_BLOCK_TOKENS,) * (len(ids) - 1) + (last,)
        return ids, lens


def _bad(path: Path, line: int, detail: str) -> ConfigError:
    return ConfigError(f"malformed trace line {line} in {path}: {detail}")


def detect_format(path: Path) -> str:
    """Recognise a trace format from its first non-empty line."""
    with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
        for raw in handle:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("{"):
                return "mooncake"
            header = [h.strip() for h in line.split(",")]
            if "ContextTokens" in header and "GeneratedTokens" in header:
                return "azure"
            if "num_prefill_tokens" in header and "num_decode_tokens" in header:
                return "vidur"
            raise ConfigError(f"unrecognised trace format in {path}: first line {line[:80]!r}; expected "
                              "Mooncake JSONL, an Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or a "
                              "Vidur CSV (num_prefill_tokens,num_decode_tokens[,arrived_at])")
    raise ConfigError(f"trace file is empty: {path}")


def load_trace(path: str | Path, fmt: str = "auto") -> Trace:
    """Read and validate a whole trace file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"trace file not found: {path}")
    if fmt not in TRACE_FORMATS:
        from ..errors import unknown

        raise unknown("trace format", fmt, TRACE_FORMATS)
    if fmt == "auto":
        fmt = detect_format(path)
    reader = {"mooncake": _read_mooncake, "azure": _read_azure, "vidur": _read_vidur}[fmt]
    try:
        trace = reader(path)
    except UnicodeDecodeError as exc:
        raise not_utf8("trace file", path, exc) from None
    if len(trace) == 0:
        raise ConfigError(f"trace file has no requests: {path}")
    return trace


def _positive_int(value: object, path: Path, line: int, field: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(path, line, f"{field} {value!r} is not an integer")
    try:
        number = float(value)
    except ValueError:
        raise _bad(path, line, f"{field} {value!r} is not an integer") from None
    if not number.is_integer() or number < (0 if allow_zero else 1):
        raise _bad(path, line, f"{field} {value!r} must be a {'non-negative' if allow_zero else 'positive'} integer")
    if number > MAX_TOKENS:
        raise _bad(path, line, f"{field} {value!r} is above the maximum of {MAX_TOKENS} tokens")
    return int(number)


def _read_mooncake(path: Path) -> Trace:
    # Typed arrays, not lists: a list of Python ints costs 36 bytes per hash id.
    arrivals, inputs, outputs = array("d"), array("q"), array("q")
    ids, starts = array("q"), array("q", [0])
    with path.open("r", encoding="utf-8-sig") as handle:
        for line_no, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _bad(path, line_no, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _bad(path, line_no, "expected a JSON object")
            for key in ("timestamp", "input_length", "output_length", "hash_ids"):
                if key not in row:
                    raise _bad(path, line_no, f"missing key {key!r}")
            ts = row["timestamp"]
            if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not (math.isfinite(ts) and ts >= 0):
                raise _bad(path, line_no, f"timestamp {ts!r} must be a finite, non-negative number of ms")
            n_in = _positive_int(row["input_length"], path, line_no, "input_length")
            n_out = _positive_int(row["output_length"], path, line_no, "output_length")
            hashes = row["hash_ids"]
            if not isinstance(hashes, list) or not hashes or not all(
                    isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= MAX_HASH_ID for h in hashes):
                raise _bad(path, line_no, f"hash_ids must be a non-empty list of integers from 0 to {MAX_HASH_ID}")
            last = n_in - MOONCAKE_BLOCK_TOKENS * (len(hashes) - 1)
            if not 0 < last <= MOONCAKE_BLOCK_TOKENS:
                raise _bad(path, line_no, f"input_length {n_in} does not fit {len(hashes)} blocks of "
                                          f"{MOONCAKE_BLOCK_TOKENS} tokens")
            arrivals.append(ts / 1000.0)
            inputs.append(n_in)
            outputs.append(n_out)
            ids.extend(hashes)
            starts.append(len(ids))
    arrival = np.asarray(arrivals, dtype=float)
    return Trace(str(path), "mooncake", arrival - (arrival.min() if len(arrival) else 0.0),
                 np.frombuffer(inputs, dtype=np.int64).copy(), np.frombuffer(outputs, dtype=np.int64).copy(),
                 np.frombuffer(ids, dtype=np.int64).copy(), np.frombuffer(starts, dtype=np.int64).copy())


def _csv_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], "csv.reader"]:
    handle = path.open("r", encoding="utf-8-sig", newline="")
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise ConfigError(f"trace {path} is missing column {missing[0]!r} (header: {','.join(header)})")
    return header, reader


def _read_azure(path: Path) -> Trace:
    header, reader = _csv_rows(path, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    t_col, in_col, out_col = (header.index(c) for c in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    arrivals, inputs, outputs = [], [], []
    for line_no, row in enumerate(reader, 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise _bad(path, line_no, f"expected {len(header)} columns, found {len(row)}")
        try:
            stamp = datetime.fromisoformat(row[t_col].strip()[:26])
        except ValueError:
            raise _bad(path, line_no, f"TIMESTAMP {row[t_col]!r} is not a date and time") from None
        if stamp.tzinfo is None:
            # Zone-less stamps are read as UTC, never as the machine's local time.
            stamp = stamp.replace(tzinfo=timezone.utc)
        arrivals.append(stamp.timestamp())
        inputs.append(_positive_int(row[in_col].strip(), path, line_no, "ContextTokens"))
        outputs.append(_positive_int(row[out_col].strip(), path, line_no, "GeneratedTokens"))
    arrival = np.asarray(arrivals, dtype=float)
    return Trace(str(path), "azure", arrival - (arrival.min() if len(arrival) else 0.0),
                 np.asarray(inputs, dtype=np.int64), np.asarray(outputs, dtype=np.int64))


def _read_vidur(path: Path) -> Trace:
    header, reader = _csv_rows(path, ("num_prefill_tokens", "num_decode_tokens"))
    in_col, out_col = header.index("num_prefill_tokens"), header.index("num_decode_tokens")
    t_col = header.index("arrived_at") if "arrived_at" in header else None
    arrivals, inputs, outputs = [], [], []
    for line_no, row in enumerate(reader, 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise _bad(path, line_no, f"expected {len(header)} columns, found {len(row)}")
        inputs.append(_positive_int(row[in_col].strip(), path, line_no, "num_prefill_tokens"))
        outputs.append(_positive_int(row[out_col].strip(), path, line_no, "num_decode_tokens"))
        if t_col is not None:
            try:
                stamp = float(row[t_col])
            except ValueError:
                raise _bad(path, line_no, f"arrived_at {row[t_col]!r} is not a number") from None
            if not (math.isfinite(stamp) and stamp >= 0):
                raise _bad(path, line_no, f"arrived_at {row[t_col]!r} must be a finite number >= 0")
            arrivals.append(stamp)
    arrival = np.asarray(arrivals, dtype=float) if t_col is not None else None
    if arrival is not None and len(arrival):
        arrival = arrival - arrival.min()
    return Trace(str(path), "vidur", arrival, np.asarray(inputs, dtype=np.int64),
                 np.asarray(outputs, dtype=np.int64))
