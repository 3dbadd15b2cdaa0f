"""BuiltinPlanner on a real repository (SQLite file, real library, real embedding model),
and the daemon's planner choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcpd.agent.builtin import BuiltinBackend, BuiltinPlanner, PlanningError
from schedcpd.agent.record import REJECTED, Attempt, EpisodeRecord, Iteration
from schedcpd.config import DaemonConfig, load
from schedcpd.repository import Measurement, Repository
from schedcpd.repository.lazy import LazyRepository
from schedcpd.store import Store
from tests.agent import profiles as P

WORSE = Measurement("makespan_s", True, baseline=10.0, value=12.0, ci_low=1.1, ci_high=1.3,
                    samples=8)
BETTER = Measurement("makespan_s", True, baseline=10.0, value=8.0, ci_low=0.75,
                     ci_high=0.85, samples=8)


async def test_feedback_in_the_repository_changes_the_plan(repo: Repository) -> None:
    planner = BuiltinPlanner.with_repository(repo)
    prof = P.long_tail()
    opts = {"profile": prof.to_dict()}
    first = await planner.plan("system", opts)
    assert first is not None and first.policy == "ljf"
    assert first.params == {"long_comms": "longjob", "long_after_ms": 0}

    await repo.record_run("ljf", first.params, prof, WORSE)
    second = await planner.plan("system", opts)
    assert second is not None and second.policy == "batch"
    assert "ljf (regressed 1x" in second.rationale

    for _ in range(2):
        await repo.record_run("batch", {}, prof, BETTER)
    third = await planner.plan("system", opts)
    assert third is not None and third.policy == "batch"
    assert "Measured 2x" in third.rationale and "+20%" in third.rationale


async def test_a_failed_run_is_an_antipattern_too(repo: Repository) -> None:
    planner = BuiltinPlanner.with_repository(repo)
    prof = P.sleepers_and_hogs()
    await repo.record_run("interactive", {}, prof, None, failure="watchdog: runnable stall")
    plan = await planner.plan("system", {"profile": prof})
    assert plan is not None and plan.policy == "edf"


async def test_gains_on_a_similar_workload_are_used(repo: Repository) -> None:
    # A pair like the fair pair but with another program (so another fingerprint): what
    # vtime gained on the fair pair counts here through the repository's similarity.
    other = P.fair_pair()
    twin = P.tier1_profile([("solver", 0.97, "cpu-bound"), ("encode", 0.99, "cpu-bound")],
                           runnable=2)
    assert twin.fingerprint != other.fingerprint
    planner = BuiltinPlanner.with_repository(repo)
    assert await planner.plan("system", {"profile": twin}) is None
    await repo.record_run("vtime", {"slice_us": 5000}, other, BETTER)
    plan = await planner.plan("system", {"profile": twin})
    assert plan is not None and (plan.policy, plan.params) == ("vtime", {"slice_us": 5000})
    assert "similar workloads gained" in plan.rationale


async def test_a_gain_counts_only_for_the_goal_it_was_measured_on(repo: Repository) -> None:
    # What vtime did to the fair pair's makespan says nothing about wake-ups: a latency
    # goal on its twin gets the latency rule's policy until a p99 gain is on record.
    other = P.fair_pair()
    twin = P.tier1_profile([("solver", 0.97, "cpu-bound"), ("encode", 0.99, "cpu-bound")],
                           runnable=2, goals=("p99 wakeup latency",))
    planner = BuiltinPlanner.with_repository(repo)
    await repo.record_run("vtime", {"slice_us": 5000}, other, BETTER)
    plan = await planner.plan("system", {"profile": twin})
    assert plan is not None and plan.policy == "interactive", plan
    p99 = Measurement("p99_wakeup_us", True, baseline=900.0, value=600.0, ci_low=0.6,
                      ci_high=0.75, samples=8)
    await repo.record_run("vtime", {"slice_us": 5000}, other, p99)
    plan = await planner.plan("system", {"profile": twin})
    assert plan is not None and (plan.policy, plan.params) == ("vtime", {"slice_us": 5000})
    assert "similar workloads gained" in plan.rationale


async def test_idle_keeps_the_default_and_says_why(repo: Repository) -> None:
    planner = BuiltinPlanner.with_repository(repo)
    assert await planner.plan("system", {"profile": P.idle().to_dict()}) is None
    assert planner.last is not None and "idle" in planner.last.verdict


async def test_without_a_profile_the_repository_is_not_opened() -> None:
    async def unreachable() -> Repository:
        raise AssertionError("the repository was opened")

    planner = BuiltinPlanner(unreachable)
    assert await planner.plan("system", {}) is None
    assert await planner.plan("system", {"command": "make -j2"}) is None
    with pytest.raises(PlanningError, match="description"):
        await planner.plan("system", {"profile": {"goals": []}})


def record_of(profile: object) -> EpisodeRecord:
    return EpisodeRecord("e1", "test", "builtin", profile=profile.to_dict())  # type: ignore[attr-defined]


async def test_builtin_backend_plans_from_the_episode_record(repo: Repository) -> None:
    backend = BuiltinBackend(LazyRepository.ready(repo))
    rec = record_of(P.long_tail())
    first = await backend.plan(rec)
    assert (first.action, first.policy, first.params) == ("configure", "ljf", {
        "long_comms": "longjob", "long_after_ms": 0})
    # The verifier refused it in this episode: the next plan leaves it out.
    rec.iterations.append(Iteration(1, first, [Attempt("ljf", False, "dynamic",
                                                       ("starvation",), 1.0)],
                                    outcome=REJECTED))
    second = await backend.plan(rec)
    assert second.action == "configure" and second.policy == "batch"
    assert "rejected by the dynamic stage" in second.rationale
    assert (await backend.plan(record_of(P.idle()))).action == "keep"


async def test_builtin_backend_asks_for_a_probe_only_when_the_summary_is_not_enough(
        repo: Repository) -> None:
    backend = BuiltinBackend(LazyRepository.ready(repo))
    assert (await backend.observe(record_of(P.long_tail()))).probes == ()
    # Two CPU-bound processes on two CPUs, nothing else: no rule knows this shape.
    pair = P.fair_pair()
    want = await backend.observe(record_of(pair))
    assert want.probes == ("runqlat",) and "run-queue" in want.why
    # With the probe's answer in the profile, it does not ask again.
    probed = record_of(pair)
    probed.profile["characteristics"]["runq_p99_us"] = 8000.0
    assert (await backend.observe(probed)).probes == ()


async def test_make_backend_builds_the_configured_backend(store: Store,
                                                          tmp_path: Path) -> None:
    from schedcpd.daemon.planning import make_backend

    lazy = LazyRepository.on_store(store)
    backend = make_backend(DaemonConfig(), lazy, None)  # type: ignore[arg-type]
    assert isinstance(backend, BuiltinBackend) and backend.name == "builtin"
    conf = tmp_path / "schedcpd.toml"
    conf.write_text('[agent]\nbackend = "openai"\nmodel = "m"\nurl = "http://127.0.0.1:9/v1"\n')
    llm = make_backend(load(conf), lazy, None)  # type: ignore[arg-type]
    assert llm.name == "openai"
    await llm.close()
