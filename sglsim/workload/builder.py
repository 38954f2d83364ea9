"""Turns a `WorkloadConfig` into a workload driver."""

from __future__ import annotations

import math

import numpy as np

from ..config.scenario import LengthSpec, WorkloadConfig
from ..errors import ConfigError
from .arrivals import arrival_times
from .drivers import ClosedLoopDriver, OpenLoopDriver, SessionDriver, ramp_open_times
from .lengths import LengthDist, cap_total_tokens
from .traces import Trace, load_trace

DEFAULT_NUM_REQUESTS = 1000
MAX_ARRIVAL_S = 1e9
"""Latest arrival accepted, seconds after the first (about 31 years). Simulated time is a double;
far beyond this a step of a few milliseconds no longer moves the clock, and latencies read 0."""
DEFAULT_INPUT = LengthSpec(dist="constant", mean=1024)
DEFAULT_OUTPUT = LengthSpec(dist="constant", mean=256)


def _dist(spec: LengthSpec) -> LengthDist:
    return LengthDist(spec.dist, spec.mean, spec.std, spec.cv, spec.min, spec.max)


def _arrivals(wl: WorkloadConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """Open-loop arrival times; without a rate every request arrives at t = 0 (a burst)."""
    if wl.rate is None:
        return np.zeros(n)
    return _check_rate_span(arrival_times(wl.arrival, wl.rate, n, rng, wl.cv), wl.rate)


def _check_rate_span(arrivals: np.ndarray, rate: float) -> np.ndarray:
    last = float(arrivals[-1]) if len(arrivals) else 0.0
    if not last <= MAX_ARRIVAL_S:
        raise ConfigError(f"invalid workload.rate {rate:g}: the last of {len(arrivals)} arrivals would come "
                          f"{last:.3g} s after the first; at most {MAX_ARRIVAL_S:g} s is simulated")
    return arrivals


def _trace_arrivals(trace: Trace, wl: WorkloadConfig, idx: np.ndarray) -> np.ndarray:
    """Arrival times of the chosen rows at the trace's timestamps, stretched by time_scale."""
    raw = trace.arrival_s[idx]
    late = int(np.argmax(raw)) if len(raw) else 0
    if len(raw) and not raw[late] <= MAX_ARRIVAL_S:
        raise ConfigError(f"invalid trace {wl.trace}: row {int(idx[late]) + 1} arrives {raw[late]:.3g} s after "
                          f"the first; at most {MAX_ARRIVAL_S:g} s is simulated")
    arrivals = raw * wl.time_scale
    if len(arrivals) and not arrivals.max() <= MAX_ARRIVAL_S:
        raise ConfigError(f"invalid workload.time_scale {wl.time_scale:g}: the trace would then span "
                          f"{arrivals.max():.3g} s; at most {MAX_ARRIVAL_S:g} s is simulated")
    return arrivals


def _trace_indices(trace: Trace, wl: WorkloadConfig, rng: np.random.Generator) -> np.ndarray:
    n = wl.num_requests or len(trace)
    if wl.trace_sampling == "with_replacement":
        return rng.integers(0, len(trace), size=n)
    order = rng.permutation(len(trace)) if wl.trace_sampling == "shuffle" else np.arange(len(trace))
    if n > len(trace):
        raise ConfigError(f"invalid num_requests {n}: the trace has {len(trace)} requests; use "
                          "trace_sampling with_replacement to draw more")
    return order[:n]


def build_trace_driver(wl: WorkloadConfig, rng: np.random.Generator):
    trace = load_trace(wl.trace, wl.trace_format)
    idx = _trace_indices(trace, wl, rng)
    arrivals = None
    if wl.concurrency is None and wl.rate is not None:
        arrivals = _check_rate_span(arrival_times(wl.arrival, wl.rate, len(idx), rng, wl.cv), wl.rate)
    elif wl.concurrency is None:
        if trace.arrival_s is None:
            raise ConfigError(f"trace {wl.trace} has no timestamps: give a rate (--rate) or a "
                              "concurrency (--concurrency)")
        arrivals = _trace_arrivals(trace, wl, idx)
        if wl.trace_sampling != "in_order":
            arrivals = np.sort(arrivals)
        else:
            # Rows replay in timestamp order (stable for equal stamps), whatever order the file has.
            order = np.argsort(arrivals, kind="stable")
            idx, arrivals = idx[order], arrivals[order]
        arrivals = arrivals - arrivals.min()
    input_len, output_len = trace.input_len[idx], trace.output_len[idx]
    if wl.max_request_tokens is not None:
        input_len, output_len = cap_total_tokens(input_len, output_len, wl.max_request_tokens)
    prompt_fn = None
    if trace.block_ids is not None and wl.max_request_tokens is None:
        prompt_fn = lambda i: trace.prompt_blocks(int(idx[i]))  # noqa: E731
    if arrivals is None:
        return _limited_driver(wl, input_len, output_len, prompt_fn, rng), trace
    return OpenLoopDriver(arrivals, input_len, output_len, prompt_fn), trace


def _limited_driver(wl: WorkloadConfig, input_len: np.ndarray, output_len: np.ndarray, prompt_fn,
                    rng: np.random.Generator) -> ClosedLoopDriver:
    """At most `concurrency` requests in flight, issued at `rate` if given, else all ready at t = 0."""
    ready = None
    if wl.rate is not None:
        ready = _check_rate_span(arrival_times(wl.arrival, wl.rate, len(input_len), rng, wl.cv), wl.rate)
    slots = ramp_open_times(wl.concurrency, wl.concurrency_ramp_s) if wl.concurrency_ramp_s else None
    return ClosedLoopDriver(wl.concurrency, input_len, output_len, prompt_fn, ready, slots)


def build_driver(wl: WorkloadConfig):
    """Return (driver, trace or None) for a workload config; the seed fixes every draw."""
    rng = np.random.default_rng(wl.seed)
    if wl.trace is not None:
        return build_trace_driver(wl, rng)
    n = wl.num_requests or DEFAULT_NUM_REQUESTS
    in_dist = _dist(wl.input_len or DEFAULT_INPUT)
    out_dist = _dist(wl.output_len or DEFAULT_OUTPUT)
    if wl.shared_prefix is not None:
        sp = wl.shared_prefix
        if wl.concurrency is not None:
            raise ConfigError("invalid workload: shared_prefix sessions are open loop; drop concurrency or shared_prefix")
        sessions = math.ceil(n / sp.turns)
        starts = _arrivals(wl, sessions, rng)
        groups = rng.integers(0, sp.num_groups, size=sessions)
        users = in_dist.sample(rng, sessions * sp.turns)
        outs = out_dist.sample(rng, sessions * sp.turns)
        driver = SessionDriver(starts, groups, sp.turns, sp.system_prompt_len, users, outs, sp.think_time_s, n)
        return driver, None
    input_len = in_dist.sample(rng, n)
    output_len = out_dist.sample(rng, n)
    if wl.max_request_tokens is not None:
        input_len, output_len = cap_total_tokens(input_len, output_len, wl.max_request_tokens)
    if wl.concurrency is not None:
        return _limited_driver(wl, input_len, output_len, None, rng), None
    return OpenLoopDriver(_arrivals(wl, n, rng), input_len, output_len), None
