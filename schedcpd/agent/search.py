"""The measured search: candidates race a baseline, interleaved in one lab guest.

    result = await race(lab, baseline, arms, goal, RaceSettings())
    result.winner()        # the lane significantly better than the baseline, or None

Every round runs the baseline and each candidate still in the race once, in an order
rotated from round to round, so drift in the machine falls on all of them alike. After
``min_runs`` rounds each candidate is judged against the baseline by the goal
(``goal.judge``: bootstrap interval of the ratio of medians, guards): one that is
significantly worse or breaks a guard leaves the race. At each rung (every second round
from then on) the race is halved: the weaker half leaves unless its interval still reaches
the leader's gain (a close contender keeps running). The race ends when one candidate is
left and judged, when the leader is significantly better than the baseline and than every
other candidate, at the run limit, or when the budget is spent.

Rules and priors only decide the order the candidates enter in and which enter when the
budget is short; measurement decides the winner. Keeping the baseline is a measured
outcome: no candidate was significantly better, and the result says by how much each was.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schedcpd.agent.bandit import ArmKey, arm_key
from schedcpd.agent.goal import Goal, Judgement, judge
from schedcpd.analysis.stats import StatsError

log = logging.getLogger("schedcpd.agent")
BASELINE = "baseline"


@dataclass(frozen=True)
class Arm:
    """A candidate: a library policy with its parameters, the prior that ordered it and
    why it is in the race."""

    policy: str
    params: Mapping[str, int | bool | str] = field(default_factory=dict)
    prior: float = 0.0
    reason: str = ""

    def key(self) -> ArmKey:
        return arm_key(self.policy, self.params)

    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.policy}({args})" if args else self.policy


class RunFailed(RuntimeError):
    """One run of a candidate failed (ejected, the workload failed, no metric)."""


class RaceLab(Protocol):
    async def prepare(self, arm: Arm) -> str:
        """Ready the candidate (verified, built); "" when it may race, else why not."""
        ...

    async def run(self, arm: Arm | None) -> dict[str, float]:
        """One run of the workload under ``arm`` (None: the baseline's scheduler): every
        metric it reported. RunFailed when the run does not count."""
        ...


@dataclass(frozen=True)
class RaceSettings:
    min_runs: int = 3  # rounds before anyone is judged
    max_runs: int = 8  # rounds at most
    max_total_runs: int = 80  # runs of every lane together
    max_lab_s: float = 600.0  # seconds of lab time for the race
    max_failures: int = 2  # failed runs before a candidate leaves

    def __post_init__(self) -> None:
        if not 2 <= self.min_runs <= self.max_runs:
            raise ValueError("a race needs 2 <= min_runs <= max_runs")


@dataclass
class Lane:
    arm: Arm | None  # None: the baseline
    samples: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    dropped: str = ""
    judgement: Judgement | None = None

    @property
    def label(self) -> str:
        return self.arm.label() if self.arm else BASELINE

    @property
    def runs(self) -> int:
        return max((len(v) for v in self.samples.values()), default=0)

    def add(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            if math.isfinite(v):
                self.samples.setdefault(k, []).append(float(v))

    def gain(self) -> float:
        return self.judgement.gain if self.judgement else -math.inf

    def gain_upper(self) -> float:
        """The optimistic end of the gain's 95 % interval."""
        if self.judgement is None:
            return -math.inf
        p = self.judgement.primary
        return 1 - p.ci_low if p.lower_is_better else p.ci_high - 1

    def summary(self) -> dict[str, Any]:
        j = self.judgement
        return {"arm": self.label, "policy": self.arm.policy if self.arm else "",
                "params": dict(self.arm.params) if self.arm else {},
                "runs": self.runs, "dropped": self.dropped, "failures": self.failures[:3],
                "ratio": round(j.primary.ratio, 4) if j else None,
                "ci": [round(j.primary.ci_low, 4), round(j.primary.ci_high, 4)] if j else None,
                "better": j.better if j else False, "guards_broken": list(j.broken) if j else [],
                "guards_doubtful": list(j.doubtful) if j else [],
                "samples": {k: [round(x, 4) for x in v] for k, v in self.samples.items()}}


@dataclass
class RaceResult:
    goal: Goal
    baseline: Lane
    lanes: list[Lane]
    runs: int = 0
    lab_s: float = 0.0
    stop: str = ""

    def ranking(self) -> list[Lane]:
        """Judged candidates still in the race, best gain first."""
        alive = [ln for ln in self.lanes if not ln.dropped and ln.judgement is not None]
        return sorted(alive, key=lambda ln: (-ln.gain(), ln.label))

    def winner(self) -> Lane | None:
        """The best candidate that is significantly better by the goal and breaks no guard."""
        return next((ln for ln in self.ranking() if ln.judgement and ln.judgement.better),
                    None)

    def verdict(self) -> str:
        w = self.winner()
        if w is not None and w.judgement is not None:
            return (f"{w.label} beat {self.baseline.label} on {self.goal.metric}: ratio "
                    f"{w.judgement.primary.ratio:.3f} (95% CI {w.judgement.primary.ci_low:.3f}"
                    f"..{w.judgement.primary.ci_high:.3f}, n={w.runs})")
        best = self.ranking()[:3]
        if not best:
            gone = "; ".join(f"{ln.label}: {ln.dropped}" for ln in self.lanes[:4])
            return f"no candidate finished the race ({self.stop}): {gone}"
        said = "; ".join(f"{ln.label} {ln.judgement.primary.ratio:.3f} "
                         f"[{ln.judgement.primary.ci_low:.3f}, "
                         f"{ln.judgement.primary.ci_high:.3f}]"
                         + (f" held back by {ln.judgement.doubtful[0]}"
                            if ln.judgement.doubtful else "")
                         for ln in best if ln.judgement)
        return (f"no candidate was significantly better than {self.baseline.label} on "
                f"{self.goal.metric} (ratio and 95% CI: {said})")

    def summary(self) -> dict[str, Any]:
        return {"goal": self.goal.to_dict(), "baseline": self.baseline.label,
                "baseline_runs": self.baseline.runs, "runs": self.runs,
                "baseline_samples": {k: [round(x, 4) for x in v]
                                     for k, v in self.baseline.samples.items()},
                "lab_s": round(self.lab_s, 1), "stop": self.stop, "verdict": self.verdict(),
                "lanes": [ln.summary() for ln in self.lanes]}


def rotate(lanes: Sequence[Lane], k: int) -> list[Lane]:
    if not lanes:
        return []
    k %= len(lanes)
    return [*lanes[k:], *lanes[:k]]


def _judge(goal: Goal, base: Lane, lane: Lane) -> None:
    try:
        lane.judgement = judge(goal, base.samples, lane.samples)
    except StatsError:
        lane.judgement = None


def prune(goal: Goal, base: Lane, lanes: Sequence[Lane], rnd: int, s: RaceSettings) -> None:
    """Judge every candidate; drop the clearly worse and, at a rung, the weaker half."""
    alive = [ln for ln in lanes if not ln.dropped]
    for ln in alive:
        _judge(goal, base, ln)
        j = ln.judgement
        if j is None:
            continue
        if j.broken:  # named first: a broken guard refuses it whatever the goal says
            ln.dropped = f"round {rnd}: {j.broken[0]}"
        elif j.primary.worse:
            ln.dropped = (f"round {rnd}: significantly worse than {base.label} "
                          f"(ratio {j.primary.ratio:.3f})")
    alive = sorted([ln for ln in alive if not ln.dropped and ln.judgement],
                   key=lambda ln: (-ln.gain(), ln.label))
    if len(alive) <= 2 or (rnd - s.min_runs) % 2:
        return
    leader = alive[0].gain()
    keep = math.ceil(len(alive) / 2)
    for ln in alive[keep:]:
        if ln.gain_upper() < leader:
            ln.dropped = (f"round {rnd}: gain {ln.gain():+.1%} (at best {ln.gain_upper():+.1%})"
                          f" below the leader's {leader:+.1%}")


def clear_leader(goal: Goal, alive: Sequence[Lane]) -> bool:
    """The best candidate is significantly better than the baseline and than every other
    one still running: more rounds would not change the winner."""
    ranked = sorted(alive, key=lambda ln: (-ln.gain(), ln.label))
    lead = ranked[0]
    if lead.judgement is None or not lead.judgement.better:
        return False
    for other in ranked[1:]:
        try:
            j = judge(Goal(goal.metric, goal.lower_is_better), lead.samples, other.samples)
        except StatsError:
            return False
        if not j.primary.worse:
            return False
    return True


def finished(goal: Goal, lanes: Sequence[Lane], rnd: int, s: RaceSettings) -> str:
    alive = [ln for ln in lanes if not ln.dropped]
    if not alive:
        return "every candidate left the race"
    if rnd >= s.max_runs:
        return f"run limit ({s.max_runs} rounds)"
    if rnd < s.min_runs:
        return ""
    if len(alive) > 1:
        return (f"a clear leader after {rnd} rounds" if clear_leader(goal, alive) else "")
    if alive[0].judgement is None:
        return ""
    j = alive[0].judgement
    if j.better:
        return f"one candidate left, significantly better after {rnd} rounds"
    if j.gain <= 0 and rnd >= s.min_runs + 2:
        return f"one candidate left, with no gain after {rnd} rounds"
    return ""  # a promising, not yet significant candidate: measure it again


async def race(lab: RaceLab, baseline: Arm | None, arms: Sequence[Arm], goal: Goal,
               s: RaceSettings, progress: Callable[[str, dict[str, Any]], None] | None = None,
               clock: Callable[[], float] = time.monotonic) -> RaceResult:
    """Race ``arms`` against ``baseline`` (None: the kernel's default scheduler)."""
    t0 = clock()
    base = Lane(baseline)
    if baseline is not None and (why := await lab.prepare(baseline)):
        base.dropped = f"refused: {why}"
        return RaceResult(goal, base, [], stop=f"the baseline cannot run: {why}")
    lanes: list[Lane] = []
    seen: set[ArmKey] = {baseline.key()} if baseline else set()
    for arm in arms:
        if arm.key() in seen:
            continue
        seen.add(arm.key())
        lane = Lane(arm)
        if why := await lab.prepare(arm):
            lane.dropped = f"refused: {why}"
        lanes.append(lane)
    result = RaceResult(goal, base, lanes)
    rnd = 0
    while not (stop := finished(goal, lanes, rnd, s)):
        alive = [ln for ln in lanes if not ln.dropped]
        if result.runs + len(alive) + 1 > s.max_total_runs:
            stop = f"run budget ({s.max_total_runs} runs) spent"
            break
        if clock() - t0 > s.max_lab_s:
            stop = f"lab-time budget ({s.max_lab_s:g} s) spent"
            break
        for lane in rotate([base, *alive], rnd):
            await _run(lab, lane, s, result)
        if base.dropped:
            stop = f"the baseline failed: {base.dropped}"
            break
        rnd += 1
        if rnd >= s.min_runs:
            prune(goal, base, lanes, rnd, s)
        if progress:
            progress("race", {"round": rnd, "alive": [ln.label for ln in lanes
                                                      if not ln.dropped]})
    result.stop, result.lab_s = stop, clock() - t0
    log.info("race on %s: %s (%s)", goal.metric, result.verdict(), stop)
    return result


async def _run(lab: RaceLab, lane: Lane, s: RaceSettings, result: RaceResult) -> None:
    result.runs += 1
    try:
        lane.add(await lab.run(lane.arm))
    except RunFailed as exc:
        lane.failures.append(str(exc)[:300])
        if len(lane.failures) >= s.max_failures:
            lane.dropped = f"failed {len(lane.failures)} runs: {lane.failures[-1][:200]}"
