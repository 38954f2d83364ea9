"""Property tests over random small scenarios: conservation, completion, capacity, time."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import validate_scenario
from sglsim.simulation import Simulation

servers = st.fixed_dictionaries({
    "kv_pool_tokens": st.integers(1500, 40000),
    "chunked_prefill_size": st.sampled_from([-1, 64, 256, 1000, 4096]),
    "max_prefill_tokens": st.sampled_from([512, 4096, 16384]),
    "max_running_requests": st.sampled_from([1, 2, 8, 64]),
    "schedule_policy": st.sampled_from(["fcfs", "lpm"]),
    "page_size": st.sampled_from([1, 1, 16]),
    "enable_mixed_chunk": st.booleans(),
    "schedule_conservativeness": st.sampled_from([0.3, 1.0, 1.5]),
}).filter(lambda s: s["chunked_prefill_size"] == -1 or s["chunked_prefill_size"] % s["page_size"] == 0)
# SGLang requires chunked_prefill_size to be a multiple of page_size.

lengths = st.fixed_dictionaries({
    "dist": st.sampled_from(["lognormal", "uniform", "exponential"]),
    "mean": st.integers(8, 800), "cv": st.sampled_from([0.5, 1.0, 2.0]),
    "min": st.just(1), "max": st.integers(900, 3000),
})

workloads = st.one_of(
    st.fixed_dictionaries({
        "num_requests": st.integers(1, 30), "rate": st.sampled_from([1.0, 20.0, 500.0]),
        "input_len": lengths, "output_len": lengths, "seed": st.integers(0, 1000)}),
    st.fixed_dictionaries({
        "num_requests": st.integers(1, 30), "concurrency": st.integers(1, 8),
        "input_len": lengths, "output_len": lengths, "seed": st.integers(0, 1000)}),
    st.fixed_dictionaries({
        "num_requests": st.integers(2, 30), "rate": st.sampled_from([2.0, 50.0]),
        "input_len": lengths, "output_len": lengths, "seed": st.integers(0, 1000),
        "shared_prefix": st.fixed_dictionaries({
            "num_groups": st.integers(1, 3), "system_prompt_len": st.integers(0, 600),
            "turns": st.integers(1, 4), "think_time_s": st.sampled_from([0.0, 0.5])})}),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server=servers, workload=workloads, replicas=st.integers(1, 3),
       router=st.sampled_from(["round_robin", "shortest_queue"]))
def test_random_scenarios_conserve_and_complete(server, workload, replicas, router):
    scenario = validate_scenario({
        "model": "llama-3.1-8b", "gpu": "h100", "server": server,
        "cluster": {"replicas": replicas, "router": router}, "workload": workload,
        # Checks KV conservation, cache <= pool and a monotone clock at every step boundary.
        "check_invariants": True})
    sim = Simulation(scenario)
    result = sim.run()
    summary = result.summary
    # Every request completes or is reported rejected.
    assert summary["num_completed"] + summary["num_rejected"] == sim.driver.num_requests
    # Tokens are conserved: each completed request produced exactly its (possibly clipped) output.
    assert summary["output_tokens"] == int(result.requests["output_len"].sum())
    # Every output token after a request's first one adds one inter-token gap, retractions included.
    if summary["num_completed"]:
        assert summary["itl_s"]["count"] == summary["output_tokens"] - summary["num_completed"]
    for worker in sim.workers:
        sched = worker.scheduler
        # At the end nothing is queued or running, and all KV is free or cached.
        assert not sched.has_work()
        assert sched.private_tokens == 0
        assert sched.free_tokens + sched.tree.total_tokens == sched.config.max_total_tokens
        assert sched.tree.protected_tokens == 0
        sched.check_invariants()
    # Time never runs backwards: every request finishes after its first token, after arrival.
    reqs = result.requests
    assert (reqs["first_token_at"] >= reqs["arrived_at"]).all()
    assert (reqs["finished_at"] >= reqs["first_token_at"]).all()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_same_seed_same_result(seed):
    data = {"model": "llama-3.1-8b", "gpu": "h100", "cluster": {"replicas": 2, "router": "shortest_queue"},
            "workload": {"num_requests": 40, "rate": 30.0, "seed": seed,
                         "input_len": {"dist": "lognormal", "mean": 500, "cv": 1.0},
                         "output_len": {"dist": "lognormal", "mean": 100, "cv": 1.0},
                         "shared_prefix": {"num_groups": 2, "system_prompt_len": 300, "turns": 2}}}
    first = Simulation(validate_scenario(data)).run()
    second = Simulation(validate_scenario(data)).run()
    assert first.summary == second.summary
    for key in first.requests:
        assert (first.requests[key] == second.requests[key]).all() or key == "tpot_s"
