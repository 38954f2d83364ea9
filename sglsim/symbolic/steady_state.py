"""The steady-state model: every metric as a SymPy function of the configuration.

Built from the same step law the simulator runs (`forward.gpu_time` and
`combine_step_time` with SymPy ops), applied to the shapes of an average
request under frozen workload parameters (see `frozen.py`):

- prefill: the uncached part of the prompt, n_new = n_in (1 - pi_hit x
  prefix_match), runs in K = ceiling(n_new / c) chunks when it exceeds the
  chunk; shorter prompts share a step with others, up to min(c, B_tok)
  tokens per step (co-located servers admit about one request per finished
  one, so at most max(1, B / (n_out - 1)) per step);
- decode: a step at batch B over contexts averaging n_in + (n_out - 2) / 2
  reads the weights once and every sequence's KV; the n_out - 1 steps of a
  request are a `Sum` whose closed form is (n_out - 1) x the mid-context step;
- B = B_req while B_req requests fit in the KV pool, else the pool over the
  mean occupancy (the retracting regime); throughput is the capacity at that
  batch, while TPOT and TTFT use the batch the arrival rate sustains
  (Little's law, `batch_at_load`), which is the full batch at saturation;
- attention takes the fastest feasible backend (`kernels.py`), the
  all-reduce the cheaper algorithm, launches graph or eager (from the law);
- disaggregated: request rate = Min(N_p / T_prefill, N_d x B / decode
  time, N_p / T_transfer, N_d / T_transfer) with the simulator's KV-transfer
  law over the scale-out network; co-located: N_r x B / (decode time + B x
  T_prefill);
- TTFT adds queueing for Poisson arrivals at lambda_req: the wait for a
  free decode-batch slot (M/G/c, Sakasegawa's approximation) and the wait
  in the prefill queue (M/G/1, Pollaczek-Khinchine). Co-located servers
  serve prefill before decode, so their prefill wait follows Cobham's
  priority formula. Past capacity TTFT is infinite. The arrival process is
  taken as Poisson whatever the workload's real process.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import sympy
from sympy import Expr

from ..config.scenario import ServerArgs
from ..costs.efficiency import DEFAULT_EFFICIENCY
from ..costs.forward import attention_time, combine_step_time, gpu_time
from ..costs.kv_transfer import kv_transfer_time
from ..costs.laws import expected_experts_touched, expected_max_rank_assignments
from ..costs.params import ParallelParams
from ..costs.step_model import StepCostModel
from ..errors import unknown
from ..hardware.gpus import get_gpu
from ..serving.parallel import resolve_parallel
from ..serving.server_spec import build_law_context, resolve_model
from .binding import symbolize_law
from .footprint import (flops_per_token, kv_bytes_per_token_per_gpu, kv_pool_tokens, reserve_bytes,
                        symbolic_model_spec, weight_bytes_per_gpu)
from .algebra import SteadyOps, _max, _min, mgc_wait
from .functions import UnitStep
from .kernels import attention_backend_factor
from .symbols import ConfigSymbols

DEPLOYMENTS = ("disaggregated", "colocated")
METRIC_NAMES = ("ttft", "tpot", "e2e_latency", "throughput", "peak_memory", "compute_utilization",
                "memory_bandwidth_utilization", "network_utilization", "cost_per_token", "power_consumption",
                "goodput")
SECONDS_PER_HOUR = 3600


@dataclass
class MetricExpressions:
    """Steady-state metrics of one deployment.

    Units: ttft, tpot and e2e_latency in s. Throughput and goodput in
    output tokens/s. peak_memory in bytes per GPU, utilizations as fractions
    of peak, cost_per_token in USD per output token, power_consumption in W
    (board power of every GPU). `components` contains the intermediate
    expressions (prefill time, decode step, batch, request rate, the decode
    `Sum` and its closed form, GPU count, KV pool).
    """

    ttft: Expr
    tpot: Expr
    e2e_latency: Expr
    throughput: Expr
    peak_memory: Expr
    compute_utilization: Expr
    memory_bandwidth_utilization: Expr
    network_utilization: Expr
    cost_per_token: Expr
    power_consumption: Expr
    goodput: Expr
    components: dict[str, Expr] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Expr]:
        return {name: getattr(self, name) for name in METRIC_NAMES}

    def get_expression(self, name: str) -> Expr:
        if name in METRIC_NAMES:
            return getattr(self, name)
        if name in self.components:
            return self.components[name]
        raise unknown("metric", name, [*METRIC_NAMES, *self.components])

    def map(self, fn: Callable[[Expr], Expr]) -> "MetricExpressions":
        """Apply `fn` to every metric and component (e.g. to bind frozen parameters)."""
        metrics = {name: fn(getattr(self, name)) for name in METRIC_NAMES}
        return MetricExpressions(**metrics, components={k: fn(v) for k, v in self.components.items()})


class SymbolicShapes(StepCostModel):
    """The simulator's step shapes with symbolic sizes: MoE features computed with SymPy ops."""

    def moe_features(self, moe_tokens: Any) -> tuple[Any, Any]:
        if not self.ctx.model.is_moe:
            return 0, 0
        ops, m = SteadyOps(), self.ctx.model
        touched = expected_experts_touched(ops, m.num_experts, m.top_k, moe_tokens)
        return touched, expected_max_rank_assignments(ops, moe_tokens, m, self.ctx.par, self.ctx.eff)


@dataclass(frozen=True)
class _Pool:
    ctx: Any
    tp: Expr
    cost: StepCostModel


class SymbolicMetricBuilder:
    """Builds `MetricExpressions` for one model architecture and deployment shape.

    `model` fixes the architecture's structure (dense or MoE, GQA or MLA,
    shared experts); its sizes stay symbols, bound later by
    `ConfigSymbols.values`. `deployment` is "disaggregated" (N_p prefill and
    N_d decode servers, the default) or "colocated" (N_r servers that both
    prefill and decode).
    """

    def __init__(self, symbols: ConfigSymbols | None = None, model: str = "llama-3.1-8b",
                 deployment: str = "disaggregated", cuda_graph: bool = True, overlap: bool = True) -> None:
        if deployment not in DEPLOYMENTS:
            raise unknown("deployment", deployment, DEPLOYMENTS)
        self.symbols = symbols or ConfigSymbols()
        self.deployment = deployment
        self.template = resolve_model(model, None)
        args = ServerArgs(disable_cuda_graph=not cuda_graph, disable_overlap_schedule=not overlap)
        gpu = get_gpu("h100")
        parallel = resolve_parallel(args, self.template, gpu)
        self._numeric_ctx = build_law_context(self.template, gpu, args, parallel, DEFAULT_EFFICIENCY, 256)
        self.model = symbolic_model_spec(self.symbols, self.template)
        self.backend_factor = attention_backend_factor(self.symbols)

    # ----- law pieces -----

    def pool(self, name: str) -> _Pool:
        """Symbolic law context of a pool ("prefill", "decode" or "default").

        Its servers split the model over TP GPUs (experts over EP ranks of TP /
        EP GPUs each), one pipeline stage and no DP attention.
        """
        ctx = symbolize_law(self.symbols, self._numeric_ctx, name).ctx
        tp = self.symbols.tp_for(name)
        ctx = replace(ctx, par=ParallelParams(tp=tp, ep=self.symbols.ep_size if self.template.is_moe else 1))
        return _Pool(ctx, tp, SymbolicShapes(ctx))

    def step_time(self, shape: Any, pool: _Pool) -> Expr:
        """Evaluate the forward-step law on `shape`, with attention at the fastest feasible backend."""
        ops = SteadyOps()
        gpu = gpu_time(ops, shape, pool.ctx)
        attention = pool.ctx.model.num_layers * attention_time(ops, shape, pool.ctx)
        return combine_step_time(ops, gpu + attention * (self.backend_factor - 1), shape, pool.ctx)

    def workload(self) -> dict[str, Expr]:
        s = self.symbols
        n_in, n_out = s.avg_prompt_len, s.avg_output_len
        n_cached = n_in * s.cache_hit_rate * s.avg_prefix_match
        return {"n_in": n_in, "n_out": n_out, "n_cached": n_cached, "n_new": n_in - n_cached,
                "ctx_mid": n_in + (n_out - 2) / 2}

    def prefill_shape(self, pool: _Pool, requests_per_step: Expr) -> Any:
        """Summed shape of one request's prefill: K chunks if longer than c, else a share of a packed step."""
        s, w = self.symbols, self.workload()
        n_new, n_cached, c = w["n_new"], w["n_cached"], s.chunk_size
        chunks = sympy.ceiling(n_new / c)
        # A prompt longer than c runs `chunks` steps (requests_per_step is then 1); a shorter one
        # (chunks = 1) takes its share 1 / requests_per_step of a packed step.
        steps = chunks - 1 + 1 / requests_per_step
        kv_read = chunks * n_cached + n_new + c * chunks * (chunks - 1) / 2
        one = pool.cost.extend_shape([(None, n_cached, n_new)])
        experts = 0
        if self.template.is_moe:
            experts = steps * pool.cost.experts_touched(n_new / steps)
        return replace(one, steps=steps, seqs=chunks, extend_seqs=chunks, extend_kv_tokens=kv_read,
                       experts_touched=experts)

    def decode_batch(self, pool: _Pool) -> tuple[Expr, Expr]:
        """(batch size, KV-pool tokens): B_req while it fits the pool, else the pool over the mean occupancy."""
        s, w = self.symbols, self.workload()
        occupancy = s.block_size * sympy.ceiling((w["n_in"] + w["n_out"] / 2) / s.block_size)
        capacity = kv_pool_tokens(s, self.model, pool.tp)
        cap = s.batch_cap_requests
        # Min(B_req, C / occ) is Piecewise((B_req, B_req occ <= C), (C / occ, True)), the fits / retracts
        # regimes; the Min form keeps SymPy from folding a Piecewise into the law's own branch conditions.
        batch = _min(cap, capacity / occupancy)
        return batch, capacity

    def decode_step(self, pool: _Pool, batch: Expr, ctx_per_seq: Expr) -> Expr:
        return self.step_time(pool.cost.decode_shape(batch, batch * ctx_per_seq), pool)

    # ----- metrics -----

    def build_all_expressions(self) -> MetricExpressions:
        """Build every metric (see the module docstring for the model)."""
        if self.deployment == "colocated":
            parts = self._colocated()
        else:
            parts = self._disaggregated()
        return self._finish(parts)

    def _decode_parts(self, pool: _Pool) -> dict[str, Expr]:
        w = self.workload()
        batch, capacity = self.decode_batch(pool)
        j = sympy.Symbol("j", integer=True, nonnegative=True)
        step_mid = self.decode_step(pool, batch, w["ctx_mid"])
        # Built without Sum's constructor, which would fold every Piecewise of the law (slow, same value).
        limits = sympy.Tuple(j, 0, w["n_out"] - 2)
        loop_sum = sympy.Basic.__new__(sympy.Sum, self.decode_step(pool, batch, w["n_in"] + j), limits)
        return {"batch": batch, "kv_pool_tokens": capacity, "decode_step": step_mid,
                "decode_loop_sum": loop_sum, "decode_loop": (w["n_out"] - 1) * step_mid}

    def batch_at_load(self, pool: _Pool, parts: dict[str, Expr], arrival: Expr,
                      prefill_share: Expr) -> tuple[Expr, Expr]:
        """(decode batch, decode step time) of a server whose requests arrive at `arrival` per second.

        A request keeps its slot for n_out - 1 decode steps of T(B), plus, on a
        co-located server, the prefills of the B requests that replace it
        (`prefill_share` = T_prefill each). With T(B) = a + b B, the secant
        through B = 1 and the full batch, Little's law gives B = lambda
        (n_out - 1) a / (1 - lambda prefill_share - lambda (n_out - 1) b), at
        most the full batch; an infinite arrival rate (a saturated server)
        gives the full batch and its exact step time. The step time at a
        smaller batch is read off the same secant, which keeps the expression
        to two step laws instead of nesting one inside another.
        """
        w = self.workload()
        full = parts["batch"]
        single = self.decode_step(pool, 1, w["ctx_mid"])
        slope = (parts["decode_step"] - single) / _max(full - 1, sympy.Float(1e-9))
        per_slot = arrival * (w["n_out"] - 1)
        load = per_slot * (single - slope) / _max(1 - arrival * prefill_share - per_slot * slope, 0)
        loaded = _min(full, load)
        return loaded, single + slope * (loaded - 1)

    def _colocated(self) -> dict[str, Expr]:
        s, w = self.symbols, self.workload()
        pool = self.pool("default")
        parts = self._decode_parts(pool)
        batch = parts["batch"]
        budget_per_step = _max(1, _min(s.chunk_size, s.batch_cap_tokens) / w["n_new"])
        per_step = _min(_max(1, batch / (w["n_out"] - 1)), budget_per_step)
        prefill_shape = self.prefill_shape(pool, per_step)
        prefill = self.step_time(prefill_shape, pool)
        parts["prefill_steps"] = prefill_shape.steps
        servers = s.num_replicas
        full_cycle = parts["decode_loop"] + batch * prefill
        rate = servers * batch / full_cycle
        # At the offered load the batch may be smaller than its cap, and so are its steps.
        arrival = s.arrival_rate / servers
        loaded, step = self.batch_at_load(pool, parts, arrival, prefill)
        cycle = (w["n_out"] - 1) * step + loaded * prefill
        # Queueing for Poisson arrivals at lambda_req / N_r per server, two waits in series:
        # 1. a free decode-batch slot: M/G/c with c = B slots. A request waits only while the batch
        #    is full, and then each slot is held for a full batch's cycle, so S = that cycle and
        #    rho = lambda S / c is the load over the capacity;
        # 2. the prefill queue, served before decode steps: M/G/1 with non-preemptive priority
        #    (Cobham), W = R / (1 - rho_prefill), R = mean residual work of the step in service.
        rho_prefill = arrival * prefill
        rho_decode = arrival * (w["n_out"] - 1) * step / loaded
        slot_wait = mgc_wait(arrival, full_cycle, batch, s.output_len_scv)
        residual = arrival * prefill**2 * (1 + s.prompt_len_scv) / 2 + rho_decode * step / 2
        priority_wait = residual / _max(1 - rho_prefill, 0)
        parts.update({
            "prefill_time": prefill, "request_rate": rate, "num_gpus": servers * s.tp_size,
            "batch_at_load": loaded, "decode_step_at_load": step,
            "ttft": slot_wait + priority_wait + prefill,
            "tpot": cycle / (w["n_out"] - 1),
            "peak_memory": self._server_memory(pool, s.batch_cap_requests * (w["n_in"] + w["n_out"])),
            "bytes_per_request": self._request_bytes(pool, parts, prefill_pool=pool),
            "network_bytes_per_s_per_gpu": sympy.Integer(0),
        })
        return parts

    def _disaggregated(self) -> dict[str, Expr]:
        s, w = self.symbols, self.workload()
        prefill_pool, decode_pool = self.pool("prefill"), self.pool("decode")
        parts = self._decode_parts(decode_pool)
        budget = _min(s.chunk_size, s.batch_cap_tokens)
        prefill_shape = self.prefill_shape(prefill_pool, _max(1, budget / w["n_new"]))
        prefill = self.step_time(prefill_shape, prefill_pool)
        parts["prefill_steps"] = prefill_shape.steps

        # The KV of a prompt crosses the scale-out network (the transfer law the simulator runs).
        # Each server's port carries one transfer at a time.
        transfer = kv_transfer_time(SteadyOps(), decode_pool.ctx.model, w["n_in"], prefill_pool.tp, decode_pool.tp,
                                    s.network_bw, s.network_latency, decode_pool.ctx.eff)
        upstream = _min(s.N_p / prefill, s.N_p / transfer, s.N_d / transfer)
        kv_gpu = kv_bytes_per_token_per_gpu(s, self.model, prefill_pool.tp)
        rate = _min(upstream, s.N_d * parts["batch"] / parts["decode_loop"])

        # Decode servers see what the prefill pool and the links deliver, split over N_d servers.
        loaded, step = self.batch_at_load(decode_pool, parts, _min(s.arrival_rate, upstream) / s.N_d, 0)

        # Queueing: M/G/1 at each prefill server (Pollaczek-Khinchine), W = rho S (1 + scv) / (2 (1 - rho)),
        # then a free slot among the N_d x B decode slots (M/G/c), each held for a full batch's decode
        # loop. The decode server preallocates KV for a request at one step boundary and merges it
        # into its batch (the first token) at another: two half steps on average.
        rho = s.arrival_rate / s.N_p * prefill
        prefill_wait = rho * prefill * (1 + s.prompt_len_scv) / (2 * _max(1 - rho, 0))
        slot_wait = mgc_wait(s.arrival_rate, parts["decode_loop"], s.N_d * parts["batch"], s.output_len_scv)

        if self.symbols.per_pool_tp:
            gpus = s.N_p * s.tp_prefill + s.N_d * s.tp_decode
        else:
            gpus = s.tp_size * (s.N_p + s.N_d)
        decode_peak = self._server_memory(decode_pool, s.batch_cap_requests * (w["n_in"] + w["n_out"]))
        prefill_peak = self._server_memory(prefill_pool, _max(w["n_in"], budget))
        parts.update({
            "prefill_time": prefill, "kv_transfer_time": transfer, "request_rate": rate, "num_gpus": gpus,
            "batch_at_load": loaded, "decode_step_at_load": step,
            "ttft": prefill_wait + prefill + transfer + slot_wait + step,
            "tpot": step,
            "peak_memory": _max(prefill_peak, decode_peak),
            "bytes_per_request": self._request_bytes(decode_pool, parts, prefill_pool=prefill_pool),
            "network_bytes_per_s_per_gpu": rate * w["n_in"] * kv_gpu / s.N_p,
        })
        return parts

    def _server_memory(self, pool: _Pool, kv_tokens: Expr) -> Expr:
        """Peak bytes on one GPU: weights + KV of `kv_tokens` tokens + SGLang's activation reserve."""
        s = self.symbols
        return (weight_bytes_per_gpu(s, self.model, pool.tp) + kv_tokens * kv_bytes_per_token_per_gpu(s, self.model, pool.tp)
                + reserve_bytes(s, pool.tp))

    def _request_bytes(self, decode_pool: _Pool, parts: dict[str, Expr], prefill_pool: _Pool) -> Expr:
        """HBM bytes one request moves over all GPUs: weight reads shared by its batch, plus KV reads."""
        s, w = self.symbols, self.workload()
        batch = parts["batch"]
        decode_weights = decode_pool.tp * weight_bytes_per_gpu(s, self.model, decode_pool.tp)
        decode_kv = decode_pool.tp * kv_bytes_per_token_per_gpu(s, self.model, decode_pool.tp)
        decode = (w["n_out"] - 1) * (decode_weights / batch + w["ctx_mid"] * decode_kv)
        prefill_weights = prefill_pool.tp * weight_bytes_per_gpu(s, self.model, prefill_pool.tp)
        prefill_kv = prefill_pool.tp * kv_bytes_per_token_per_gpu(s, self.model, prefill_pool.tp)
        prefill = prefill_weights * parts["prefill_steps"] + w["n_in"] * prefill_kv
        return decode + prefill

    def _finish(self, parts: dict[str, Expr]) -> MetricExpressions:
        s, w = self.symbols, self.workload()
        rate, gpus = parts["request_rate"], parts["num_gpus"]
        throughput = w["n_out"] * rate
        model = self.model
        lm_head = 2 * s.vocab_size * s.hidden_dim
        attention_flops = 4 * s.num_heads * s.head_dim * s.num_layers * (
            w["n_new"] * w["n_cached"] + w["n_new"] * (w["n_new"] + 1) / 2 + (w["n_out"] - 1) * w["ctx_mid"])
        request_flops = (flops_per_token(s, model) - lm_head) * (w["n_new"] + w["n_out"] - 1) \
            + lm_head * w["n_out"] + attention_flops
        # 1 when mean TTFT and TPOT meet their targets (equality counts as met), else 0.
        meets_slo = UnitStep(s.ttft_slo - parts["ttft"]) * UnitStep(s.tpot_slo - parts["tpot"])
        served = _min(s.arrival_rate, rate)
        components = {k: v for k, v in parts.items()
                      if k not in ("ttft", "tpot", "peak_memory")}
        components["request_flops"] = request_flops
        return MetricExpressions(
            ttft=parts["ttft"],
            tpot=parts["tpot"],
            e2e_latency=parts["ttft"] + (w["n_out"] - 1) * parts["tpot"],
            throughput=throughput,
            peak_memory=parts["peak_memory"],
            compute_utilization=request_flops * rate / (gpus * s.gpu_flops * s.gemm_peak_ratio),
            memory_bandwidth_utilization=parts["bytes_per_request"] * rate / (gpus * s.gpu_mem_bw),
            network_utilization=parts["network_bytes_per_s_per_gpu"] / s.network_bw,
            cost_per_token=gpus * s.gpu_price / (SECONDS_PER_HOUR * throughput),
            power_consumption=gpus * s.gpu_power,
            goodput=w["n_out"] * served * meets_slo,
            components=components,
        )

