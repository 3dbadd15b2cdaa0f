"""The race's decisions, on a synthetic lab whose metric distributions each test chooses.

The lab here is a seeded random draw per run (no scheduler runs): what is tested is the
search's logic (interleaving, judging, halving, guards, budgets), whose answers are
known from the distributions. The same search against the real lab guest is in
tests/daemon/test_search_lab.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from schedcpd.agent.goal import Goal, Guard
from schedcpd.agent.search import Arm, Lane, RaceSettings, RunFailed, race, rotate


class SyntheticLab:
    """Each arm's metrics are normal draws: ``means`` by policy (the baseline under
    "eevdf"), with a relative noise."""

    def __init__(self, means: Mapping[str, Mapping[str, float]], noise: float = 0.03,
                 refuse: frozenset[str] = frozenset(), fail: frozenset[str] = frozenset(),
                 seed: int = 1) -> None:
        self.means, self.noise = means, noise
        self.refuse, self.fail = refuse, fail
        self.rng = random.Random(seed)
        self.order: list[str] = []

    async def prepare(self, arm: Arm) -> str:
        return "static: refused on purpose" if arm.policy in self.refuse else ""

    async def run(self, arm: Arm | None) -> dict[str, float]:
        name = arm.policy if arm else "eevdf"
        self.order.append(name)
        if name in self.fail:
            raise RunFailed(f"{name} was ejected")
        return {k: self.rng.gauss(m, m * self.noise) for k, m in self.means[name].items()}


def arms(*names: str) -> list[Arm]:
    return [Arm(n, {}, 0.1 * (len(names) - i), "test") for i, n in enumerate(names)]


MAKESPAN = Goal("makespan_s", True)


async def test_the_clear_winner_wins_and_clear_losers_leave_early() -> None:
    means = {"eevdf": {"makespan_s": 10.0}, "good": {"makespan_s": 7.0}}
    means |= {f"bad{i}": {"makespan_s": 13.0 + i} for i in range(5)}
    lab = SyntheticLab(means)
    res = await race(lab, None, arms(*[f"bad{i}" for i in range(5)], "good"), MAKESPAN,
                     RaceSettings())
    w = res.winner()
    assert w is not None and w.arm is not None and w.arm.policy == "good"
    assert w.judgement is not None and w.judgement.primary.ratio == pytest.approx(0.7, abs=0.05)
    losers = [ln for ln in res.lanes if ln.arm and ln.arm.policy.startswith("bad")]
    assert all("significantly worse" in ln.dropped for ln in losers)
    assert max(ln.runs for ln in losers) == 3  # judged after min_runs, not raced on
    assert res.runs < 7 * RaceSettings().max_runs


async def test_without_a_better_candidate_the_baseline_stays_and_says_why() -> None:
    means = {n: {"makespan_s": 10.0} for n in ("eevdf", "a", "b", "c")}
    res = await race(SyntheticLab(means), None, arms("a", "b", "c"), MAKESPAN,
                     RaceSettings(max_runs=6))
    assert res.winner() is None
    assert "no candidate was significantly better than baseline" in res.verdict()


async def test_every_round_runs_each_lane_once_in_a_rotated_order() -> None:
    means = {n: {"makespan_s": 10.0} for n in ("eevdf", "a", "b")}
    lab = SyntheticLab(means)
    await race(lab, None, arms("a", "b"), MAKESPAN, RaceSettings(min_runs=3, max_runs=3))
    assert lab.order == ["eevdf", "a", "b", "a", "b", "eevdf", "b", "eevdf", "a"]
    assert rotate([Lane(None)], 5)[0].label == "baseline"


async def test_a_higher_is_better_goal_picks_the_higher_one() -> None:
    means = {"eevdf": {"rps": 100.0}, "fast": {"rps": 160.0}, "slow": {"rps": 60.0}}
    res = await race(SyntheticLab(means), None, arms("slow", "fast"), Goal("rps", False),
                     RaceSettings())
    w = res.winner()
    assert w is not None and w.arm is not None and w.arm.policy == "fast"


async def test_a_guard_that_regresses_blocks_the_primary_winner() -> None:
    goal = Goal("p99_ms", True, (Guard("rps", False, 0.05),))
    means = {"eevdf": {"p99_ms": 10.0, "rps": 100.0},
             "greedy": {"p99_ms": 4.0, "rps": 70.0},  # the best p99, at 30 % of the rps
             "fair": {"p99_ms": 7.0, "rps": 99.0}}
    res = await race(SyntheticLab(means), None, arms("greedy", "fair"), goal, RaceSettings())
    greedy = next(ln for ln in res.lanes if ln.arm and ln.arm.policy == "greedy")
    assert "guard rps" in greedy.dropped
    w = res.winner()
    assert w is not None and w.arm is not None and w.arm.policy == "fair"


async def test_refused_and_failing_candidates_leave_with_their_reason() -> None:
    means = {n: {"makespan_s": m} for n, m in (("eevdf", 10.0), ("ok", 8.0),
                                               ("refused", 1.0), ("ejects", 1.0))}
    lab = SyntheticLab(means, refuse=frozenset({"refused"}), fail=frozenset({"ejects"}))
    res = await race(lab, None, arms("refused", "ejects", "ok"), MAKESPAN, RaceSettings())
    by = {ln.arm.policy: ln for ln in res.lanes if ln.arm}
    assert by["refused"].dropped.startswith("refused: static") and by["refused"].runs == 0
    assert by["ejects"].dropped.startswith("failed 2 runs") and "ejected" in by["ejects"].dropped
    assert "refused" not in lab.order
    w = res.winner()
    assert w is not None and w.arm is not None and w.arm.policy == "ok"


async def test_the_run_budget_ends_the_race() -> None:
    means = {n: {"makespan_s": 10.0} for n in ("eevdf", "a", "b", "c", "d")}
    res = await race(SyntheticLab(means), None, arms("a", "b", "c", "d"), MAKESPAN,
                     RaceSettings(max_total_runs=12))
    assert res.runs <= 12 and "run budget" in res.stop


async def test_a_close_contender_keeps_running_past_the_rung() -> None:
    means = {"eevdf": {"makespan_s": 10.0}, "a": {"makespan_s": 7.0},
             "b": {"makespan_s": 7.1}, "c": {"makespan_s": 9.0}, "d": {"makespan_s": 9.5}}
    res = await race(SyntheticLab(means, noise=0.02), None, arms("a", "b", "c", "d"),
                     MAKESPAN, RaceSettings())
    by = {ln.arm.policy: ln for ln in res.lanes if ln.arm}
    assert not by["a"].dropped and not by["b"].dropped  # within each other's noise
    assert by["c"].dropped and by["d"].dropped
    assert by["a"].runs > 3


async def test_a_baseline_that_is_a_policy_is_prepared_and_raced_against() -> None:
    means = {"deployed": {"makespan_s": 8.0}, "better": {"makespan_s": 6.0}}
    lab = SyntheticLab(means)
    res = await race(lab, Arm("deployed"), arms("better"), MAKESPAN, RaceSettings())
    assert res.baseline.label == "deployed" and "eevdf" not in lab.order
    w = res.winner()
    assert w is not None and "beat deployed" in res.verdict()


async def test_a_clear_leader_ends_the_race_before_the_run_limit() -> None:
    means = {"eevdf": {"makespan_s": 10.0}, "a": {"makespan_s": 6.0},
             "b": {"makespan_s": 8.0}}
    res = await race(SyntheticLab(means, noise=0.02), None, arms("b", "a"), MAKESPAN,
                     RaceSettings())
    assert res.stop.startswith("a clear leader"), res.stop
    w = res.winner()
    assert w is not None and w.arm is not None and w.arm.policy == "a"
    assert w.runs < RaceSettings().max_runs
