"""Learning from rollbacks, on a real store and the real embedding model: a scheduler its
canary threw out becomes an antipattern for similar workloads; other rollbacks teach
nothing; a lesson the repository cannot take is dropped with a warning, not raised."""

from __future__ import annotations

import logging

import pytest

from schedcpd.analysis.profile import WorkloadProfile
from schedcpd.daemon.learning import Learner, run_profile
from schedcpd.repository import Repository
from schedcpd.repository.lazy import LazyRepository

LONG_TAIL = WorkloadProfile("CPU-bound, parallel, many short-lived processes (awk/sh)",
                            {"ncpu": 2, "forks_per_s": 460.0, "top0_comm": "awk"},
                            ("minimise makespan",), "fp-awk")


def learner_on(r: Repository) -> Learner:
    return Learner(LazyRepository.ready(r))


async def test_a_regression_becomes_an_antipattern(repo: Repository) -> None:
    learn = learner_on(repo)
    assert await learn.rolled_back("fifo", {"slice_us": 5000}, LONG_TAIL.to_dict(), "",
                                   "regression", "cpu_pressure stayed above 0.9")
    [run] = await repo.runs("fifo")
    assert run.outcome == "failed" and run.params == {"slice_us": 5000}
    assert run.reason == "rolled back by the canary: cpu_pressure stayed above 0.9"
    assert run.profile_fingerprint == "fp-awk"
    similar = WorkloadProfile("CPU-bound, parallel, many short-lived processes (awk/sh)",
                              {"ncpu": 2, "forks_per_s": 400.0, "top0_comm": "awk"})
    antis = await repo.antipatterns(similar)
    assert [(a.policy, a.params) for a in antis] == [("fifo", {"slice_us": 5000})]


async def test_requested_rollbacks_teach_nothing(repo: Repository) -> None:
    learn = learner_on(repo)
    for cause in ("requested", "target_lost", ""):
        assert not await learn.rolled_back("fifo", {}, LONG_TAIL.to_dict(), "", cause, "x")
    assert await repo.runs("fifo") == []


async def test_a_lesson_the_repository_refuses_is_dropped(
        repo: Repository, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="schedcpd.learning")
    learn = learner_on(repo)
    assert not await learn.rolled_back("no_such_policy", {}, None, "r", "ejected", "stall")
    assert not await learn.rolled_back("fifo", {"nope": 1}, None, "r", "ejected", "stall")
    assert await repo.runs("fifo") == []
    assert len([r for r in caplog.records if "could not record" in r.getMessage()]) == 2


def test_without_a_profile_the_rationale_describes_the_workload() -> None:
    assert run_profile(None, "requested for 'kernel build'").description == \
        "requested for 'kernel build'"
    assert run_profile({"description": 3}, "  ").description == "an unprofiled workload"
    assert run_profile(LONG_TAIL.to_dict(), "ignored").fingerprint == "fp-awk"
