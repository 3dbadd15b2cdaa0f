"""The loop's measured search: races, deployments and when it stops, on a synthetic plane.

The plane's race and measurements draw from distributions the test sets per scheduler
(no lab, no daemon): what is tested is the loop's control flow. The real daemon, lab
guest and verifier run the same loop in tests/daemon/test_search_lab.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from schedcpd.agent.backend import ObserveDecision, Reflection
from schedcpd.agent.budget import Budget, Meter
from schedcpd.agent.loop import Agent, LoopSettings
from schedcpd.agent.plane import DeployOutcome, Verification
from schedcpd.agent.record import KEPT, Attempt, EpisodeRecord, Iteration, PlanChoice
from schedcpd.agent.search import Arm, RaceResult, RaceSettings, race
from schedcpd.bpf.policy import Tunable

SLICE = Tunable("slice_us", "u64", 20000, min=1000, max=100000)


class Plane:
    """A target whose makespan is ``mean(policy, params)`` with 2 % noise."""

    def __init__(self, mean: Callable[[str, dict[str, Any]], float]) -> None:
        self.mean = mean
        self.rng = random.Random(7)
        self.running: tuple[str, dict[str, Any]] | None = None
        self.deployed: list[str] = []
        self.races: list[tuple[str, list[str]]] = []
        self.ended = False

    def _draw(self, policy: str, params: dict[str, Any]) -> float:
        m = self.mean(policy, params)
        return self.rng.gauss(m, 0.02 * m)

    async def observe(self, rec: EpisodeRecord) -> dict[str, Any]:
        rec.goal, rec.goal_spec = "makespan_s", {"metric": "makespan_s", "direction": "lower",
                                                 "guards": [], "source": "request"}
        return {"description": "an unseen workload", "characteristics": {}}

    async def probe(self, rec: EpisodeRecord, kind: str) -> dict[str, Any]:
        return {}

    async def measure(self, rec: EpisodeRecord, runs: int) -> list[float]:
        p, params = self.running or ("eevdf", {})
        return [self._draw(p, params) for _ in range(runs)]

    async def race(self, rec: EpisodeRecord, baseline: Arm | None, arms: Sequence[Arm],
                   settings: RaceSettings) -> RaceResult:
        from schedcpd.agent.goal import Goal

        plane = self

        class Lab:
            async def prepare(self, arm: Arm) -> str:
                return ""

            async def run(self, arm: Arm | None) -> dict[str, float]:
                p, params = (arm.policy, dict(arm.params)) if arm else ("eevdf", {})
                return {"makespan_s": plane._draw(p, params)}

        self.races.append((baseline.label() if baseline else "eevdf",
                           [a.label() for a in arms]))
        return await race(Lab(), baseline, arms, Goal.from_dict(rec.goal_spec), settings)

    async def end_race(self) -> None:
        self.ended = True

    async def tunables(self, policy: str) -> Sequence[Tunable]:
        return (SLICE,)

    async def verify(self, rec: EpisodeRecord, choice: PlanChoice) -> Verification:
        return Verification(Attempt(choice.policy, True, "", (), 0.1), None)

    async def deploy(self, rec: EpisodeRecord, choice: PlanChoice,
                     v: Verification) -> DeployOutcome:
        self.running = (choice.policy, dict(choice.params))
        self.deployed.append(choice.label())
        return DeployOutcome("deployed", "ok")

    async def restore(self, rec: EpisodeRecord, it: Iteration) -> bool:
        assert it.plan is not None
        self.running = (it.plan.policy, dict(it.plan.params))
        return True

    async def rollback(self, reason: str) -> str:
        self.running = None
        return "default"

    async def learn(self, rec: EpisodeRecord, it: Iteration) -> None:
        return None

    def progress(self, rec: EpisodeRecord, step: str, detail: dict[str, Any]) -> None:
        return None


class Backend:
    name = "test"

    def __init__(self, names: Sequence[str]) -> None:
        self.names = names

    async def observe(self, rec: EpisodeRecord) -> ObserveDecision:
        return ObserveDecision((), "enough")

    async def plan(self, rec: EpisodeRecord) -> PlanChoice:
        raise AssertionError("the search plans by racing, not by plan()")

    async def propose(self, rec: EpisodeRecord, allowed: Sequence[str] = ()) -> list[Arm]:
        return [Arm(n, {}, 0.0, "listed") for n in self.names]

    async def fix(self, rec: EpisodeRecord, choice: PlanChoice, failed: Attempt) -> None:
        return None

    async def reflect(self, rec: EpisodeRecord) -> Reflection:
        return Reflection(True, "measured")

    async def close(self) -> None:
        return None


async def run(plane: Plane, names: Sequence[str], **kw: Any) -> EpisodeRecord:
    rec = EpisodeRecord("e1", "test", "test", workload="cmd")
    settings = LoopSettings(feedback_runs=4, race=RaceSettings(max_runs=6), **kw)
    agent = Agent(Backend(names), plane, settings, Meter(Budget(), rec.usage))
    return await agent.run(rec)


def tuned_mean(policy: str, params: dict[str, Any]) -> float:
    """"p" beats EEVDF at its default slice, and more so with a short one."""
    if policy != "p":
        return 10.0
    return 6.0 if int(params.get("slice_us", 20000)) < 5000 else 8.0


async def test_an_episode_iterates_past_its_first_deployment_while_a_better_one_exists(
        ) -> None:
    plane = Plane(tuned_mean)
    rec = await run(plane, ["q", "p", "r"], tune_trials=6)
    first, *later = [it for it in rec.iterations if it.deployed]
    assert first.plan is not None and first.plan.label() == "configure p"
    assert later, (rec.stop_reason, plane.races)
    best = rec.best()
    assert best is not None and best.plan is not None
    assert int(best.plan.params["slice_us"]) < 5000, best.plan
    assert plane.races[1][0] == "p"  # the second race was against the deployed one
    # It went on while something could beat the deployed one, and stopped after.
    assert rec.stop_reason.startswith(("converged", "iteration limit")), rec.stop_reason
    assert plane.ended and len(rec.races) == len(plane.races) and rec.lab_runs > 0
    # The same thing is never deployed twice.
    assert len(plane.deployed) == len(set(plane.deployed))


async def test_no_candidate_better_keeps_the_default_as_a_measured_outcome() -> None:
    plane = Plane(lambda p, params: 10.0)
    rec = await run(plane, ["a", "b", "c"])
    assert [it.outcome for it in rec.iterations] == [KEPT]
    assert plane.deployed == [] and plane.running is None
    assert rec.stop_reason.startswith("keep the current scheduler: measured in the lab")
    assert "no candidate was significantly better" in rec.stop_reason
    assert rec.races and rec.races[0]["runs"] >= 3 * 4


async def test_when_the_winner_stands_the_episode_converges_after_one_more_race() -> None:
    plane = Plane(lambda p, params: 7.0 if p == "p" else 10.0)
    rec = await run(plane, ["p", "q"], tune_trials=2)
    assert plane.deployed == ["configure p"]
    assert rec.stop_reason.startswith("converged"), rec.stop_reason
    assert plane.running == ("p", {})  # the measured win is kept
