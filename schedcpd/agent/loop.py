"""sched-agent's loop: observe, then plan, execute and learn until it converges.

    agent = Agent(backend, plane, LoopSettings(max_iterations=3), meter)
    await agent.run(record)            # fills the record; record.stop_reason says why it ended

With a workload to measure and no policy named by the request, planning is a measured
search (``search.py``): the backend proposes candidates with priors, they race the running
scheduler in a lab guest, the winner (significantly better by the user's goal, no guard
broken) is verified at deployment depth, deployed and measured on the target, and the next
iteration races what could still beat it (close contenders and settings of its tunables
the optimizer proposes, ``tuning.py``) against it. Keeping EEVDF is then a measured
outcome. Without a workload (a running workload, a named policy) each iteration plans one
choice as before.

One episode record is shared by the four roles. Each iteration keeps its plan, the
verifier's findings, what was deployed and the measured feedback; the next plan is made
with all of it in view (in-context reinforcement learning). The loop stops when the
backend keeps the current scheduler, when it chooses again what this episode already
measured (converged), at the iteration limit, when a budget is spent, or when the backend
gives up. Whatever it stops on, the target is left on the best scheduler the episode
measured, or returned to what ran before when nothing helped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from schedcpd.agent.backend import PROBES, Backend, BackendError
from schedcpd.agent.budget import BudgetExceeded, Meter
from schedcpd.agent.goal import Goal, GoalError
from schedcpd.agent.plane import ControlPlane, Verification
from schedcpd.agent.record import (
    ACTIONS,
    IMPROVED,
    KEPT,
    NO_GAIN,
    NOT_DEPLOYED,
    REGRESSED,
    REJECTED,
    UNMEASURED,
    Action,
    EpisodeRecord,
    Feedback,
    Iteration,
    PlanChoice,
)
from schedcpd.agent.search import Arm, Lane, RaceResult, RaceSettings
from schedcpd.agent.tuning import Tuner
from schedcpd.analysis.stats import StatsError, compare

MAX_PROBES = 2


@dataclass(frozen=True)
class LoopSettings:
    max_iterations: int = 3
    max_fixes: int = 2  # verifier rejections the backend may try to fix, per iteration
    feedback_runs: int = 5  # workload runs before and after a deployment
    allowed: tuple[Action, ...] = ACTIONS  # what the backend may do
    search: bool = True  # race candidates in the lab when there is a workload to run
    race: RaceSettings = field(default_factory=RaceSettings)
    explore: tuple[str, ...] = ()  # policies the search may race (empty: the library)
    max_arms: int = 0  # new candidates per race at most (0: all proposed at once)
    order: tuple[str, ...] = ()  # the request's candidates, in its order of preference
    tune_trials: int = 2  # new settings of the leader's tunables per later race


class Agent:
    def __init__(self, backend: Backend, plane: ControlPlane, settings: LoopSettings,
                 meter: Meter) -> None:
        self.backend = backend
        self.plane = plane
        self.s = settings
        self.meter = meter

    async def run(self, rec: EpisodeRecord, first: PlanChoice | None = None) -> EpisodeRecord:
        """Run the episode; ``first`` is a plan given by the request (a named policy)."""
        try:
            await self._observe(rec)
            await self._iterate(rec, first)
        except BudgetExceeded as exc:
            rec.stop_reason = str(exc)
            await self._settle(rec)
        except BackendError as exc:
            rec.stop_reason = f"the {self.backend.name} backend gave up: {exc}"
            await self._settle(rec)
        finally:
            self.meter.tick()
        return rec

    # --- observation ---
    async def _observe(self, rec: EpisodeRecord) -> None:
        if not rec.profile:
            rec.profile = await self.plane.observe(rec)
        self.plane.progress(rec, "profile", {"description": rec.profile.get("description", "")})
        self.meter.check()
        want = await self.backend.observe(rec)
        for kind in [k for k in want.probes if k in PROBES][:MAX_PROBES]:
            self.meter.check()
            found = await self.plane.probe(rec, kind)
            rec.probes[kind] = found
            chars = rec.profile.setdefault("characteristics", {})
            chars.update({k: v for k, v in found.items()
                          if isinstance(v, int | float | str) and not isinstance(v, bool)})
            self.plane.progress(rec, "probe", {"kind": kind, "why": want.why})

    # --- the iterations ---
    def _searching(self, rec: EpisodeRecord, first: PlanChoice | None) -> bool:
        return (first is None and bool(rec.workload) and self.s.search
                and hasattr(self.backend, "propose") and hasattr(self.plane, "race"))

    async def _iterate(self, rec: EpisodeRecord, first: PlanChoice | None) -> None:
        if self._searching(rec, first):
            try:
                await self._search(rec)
            finally:
                await self.plane.end_race()
            await self._settle(rec)
            return
        for n in range(1, self.s.max_iterations + 1):
            self.meter.check()
            choice = first if first is not None and n == 1 else await self.backend.plan(rec)
            if stop := self._converged(rec, choice):
                rec.stop_reason = stop
                break
            it = Iteration(n, choice)
            rec.iterations.append(it)
            t0 = time.monotonic()
            self.plane.progress(rec, "plan", {"iteration": n, "plan": choice.label(),
                                              "rationale": choice.rationale})
            if choice.action == "keep":
                it.outcome = KEPT
                rec.stop_reason = f"keep the current scheduler: {choice.rationale}"
                break
            if choice.action not in self.s.allowed:
                raise BackendError(f"it chose to {choice.action}, which this daemon does not "
                                   f"allow (agent.allow: {', '.join(self.s.allowed)})")
            go_on = await self._execute(rec, it, t0)
            it.seconds = time.monotonic() - t0 - it.workload_s
            if not go_on:
                break
            self.meter.check()
            refl = await self.backend.reflect(rec)
            it.lesson = refl.lesson
            self.plane.progress(rec, "learned", {"iteration": n, "outcome": it.outcome,
                                                 "lesson": it.lesson})
            if not rec.workload and it.outcome == UNMEASURED:
                rec.stop_reason = ("deployed; with no workload to measure, the canary judges "
                                   "it from here")
                break
            if not refl.go_on:
                rec.stop_reason = f"the backend stopped: {refl.lesson}"
                break
        else:
            rec.stop_reason = f"iteration limit ({self.s.max_iterations})"
        await self._settle(rec)

    # --- the measured search ---
    async def _search(self, rec: EpisodeRecord) -> None:
        goal = self._goal(rec)
        baseline: Arm | None = None  # what the target runs: the kernel's default at first
        contenders: list[Arm] = []
        tuner: Tuner | None = None
        pending = self._ordered(await self.backend.propose(rec, self.s.explore))
        chain = 1.0  # the deployed one's ratio to the default, its races' ratios multiplied
        for n in range(1, self.s.max_iterations + 1):
            self.meter.check()
            t0 = time.monotonic()
            # Proposals not raced yet (past max_arms) race the deployed one later, with
            # the contenders that could still beat it and new settings of its tunables.
            k = self.s.max_arms or len(pending)
            arms = contenders + pending[:k] + (tuner.ask(self.s.tune_trials) if tuner else [])
            pending = pending[k:]
            if not arms:
                rec.stop_reason = (f"converged: nothing left that could beat "
                                   f"{baseline.label() if baseline else 'EEVDF'}")
                return
            self.plane.progress(rec, "race", {"iteration": n, "goal": goal.text(),
                                              "baseline": baseline.label() if baseline
                                              else "EEVDF",
                                              "candidates": [a.label() for a in arms]})
            result = await self.plane.race(rec, baseline, arms, self.s.race)
            self._account(rec, result, tuner)
            win = result.winner()
            if win is None or win.arm is None:
                self._no_winner(rec, n, result, baseline)
                return
            ratio = chain * (win.judgement.primary.ratio if win.judgement else 1.0)
            it = Iteration(n, PlanChoice("configure", win.arm.policy, dict(win.arm.params),
                                         None, f"{win.arm.reason}. {result.verdict()}"),
                           race=result.summary(),
                           race_gain=1 - ratio if goal.lower_is_better else ratio - 1)
            rec.iterations.append(it)
            self.plane.progress(rec, "plan", {"iteration": n, "plan": it.plan.label()
                                              if it.plan else "", "rationale": result.verdict()})
            go_on = await self._execute(rec, it, t0)
            it.seconds = time.monotonic() - t0 - it.workload_s
            if not go_on:
                return
            if it.deployed:
                baseline, contenders, tuner = win.arm, self._could_beat(result, win), \
                    await self._tuner(win.arm, n)
                chain = ratio
            else:  # refused at deployment depth: the next best race their old baseline
                contenders = [ln.arm for ln in result.ranking()
                              if ln is not win and ln.arm and ln.judgement
                              and ln.judgement.better]
            self.meter.check()
            refl = await self.backend.reflect(rec)
            it.lesson = refl.lesson
            self.plane.progress(rec, "learned", {"iteration": n, "outcome": it.outcome,
                                                 "lesson": it.lesson})
        rec.stop_reason = f"iteration limit ({self.s.max_iterations})"

    def _ordered(self, arms: list[Arm]) -> list[Arm]:
        """The request's own order of candidates, when it named them, before the priors."""
        if not self.s.order:
            return arms
        rank = {name: i for i, name in enumerate(self.s.order)}
        return sorted((a for a in arms if a.policy in rank), key=lambda a: rank[a.policy])

    def _goal(self, rec: EpisodeRecord) -> Goal:
        try:
            return Goal.from_dict(rec.goal_spec) if rec.goal_spec else Goal.inferred(rec.goal)
        except GoalError as exc:
            raise BackendError(f"the episode's goal is unusable: {exc}") from None

    @staticmethod
    def _account(rec: EpisodeRecord, result: RaceResult, tuner: Tuner | None) -> None:
        rec.races.append(result.summary())
        rec.lab_runs += result.runs
        rec.lab_s += result.lab_s
        if tuner is not None:
            for ln in result.lanes:
                if ln.arm is not None:
                    tuner.tell(ln.arm, ln.gain() if ln.judgement and not ln.dropped
                               .startswith("refused") else None)

    @staticmethod
    def _could_beat(result: RaceResult, win: Lane) -> list[Arm]:
        """Contenders whose interval still reaches past the winner's gain: the next race
        measures them against the winner itself."""
        return [ln.arm for ln in result.ranking()
                if ln is not win and ln.arm is not None and ln.gain_upper() > win.gain()]

    async def _tuner(self, leader: Arm, n: int) -> Tuner | None:
        if self.s.tune_trials <= 0:
            return None
        tunables = await self.plane.tunables(leader.policy)
        tuner = Tuner(leader, tunables, 0.0, seed=n)  # gains from here are against it
        return None if tuner.empty else tuner

    def _no_winner(self, rec: EpisodeRecord, n: int, result: RaceResult,
                   baseline: Arm | None) -> None:
        if baseline is not None:
            rec.stop_reason = f"converged: {result.verdict()}"
            return
        it = Iteration(n, PlanChoice("keep", rationale=result.verdict()), outcome=KEPT,
                       race=result.summary())
        rec.iterations.append(it)
        self.plane.progress(rec, "plan", {"iteration": n, "plan": "keep",
                                          "rationale": result.verdict()})
        rec.stop_reason = (f"keep the current scheduler: measured in the lab, "
                           f"{result.verdict()}")

    @staticmethod
    def _converged(rec: EpisodeRecord, choice: PlanChoice) -> str:
        """Non-empty when ``choice`` repeats an earlier iteration of this episode."""
        for it in rec.iterations:
            p = it.plan
            if p is None or choice.action == "keep" or p.action != choice.action:
                continue
            same = (p.policy, p.params, p.source) == (choice.policy, choice.params,
                                                     choice.source)
            if not same:
                continue
            if it.outcome == REJECTED:
                return (f"stopped: {choice.label()} was chosen again after the verifier "
                        "refused it")
            return f"converged: {choice.label()} again, already measured ({it.outcome})"
        return ""

    async def _verify(self, rec: EpisodeRecord, it: Iteration) -> Verification | None:
        assert it.plan is not None
        choice = it.plan
        for fixes in range(self.s.max_fixes + 1):
            v = await self.plane.verify(rec, choice)
            it.attempts.append(v.attempt)
            self.plane.progress(rec, "verify", {"iteration": it.n, "policy": v.attempt.policy,
                                                "passed": v.attempt.passed,
                                                "stage": v.attempt.stage,
                                                "findings": list(v.attempt.findings[:3])})
            if v.attempt.passed:
                it.plan = choice
                return v
            if fixes == self.s.max_fixes:
                break
            self.meter.check()
            fixed = await self.backend.fix(rec, choice, v.attempt)
            if fixed is None or fixed == choice:
                break
            if fixed.action not in self.s.allowed:
                break
            choice = fixed
            it.plan = choice
        return None

    async def _execute(self, rec: EpisodeRecord, it: Iteration, t0: float) -> bool:
        """Verify, deploy, measure; False when the episode cannot go on."""
        v = await self._verify(rec, it)
        if v is None:
            it.outcome = REJECTED
            await self.plane.learn(rec, it)
            it.lesson = f"the verifier refused {it.plan.label() if it.plan else '?'}"
            return True
        assert it.plan is not None
        if rec.workload and not rec.baseline:
            w0 = time.monotonic()
            rec.baseline = await self.plane.measure(rec, self.s.feedback_runs)
            it.workload_s += time.monotonic() - w0
            self.plane.progress(rec, "baseline", {"samples": rec.baseline, "metric": rec.goal})
        out = await self.plane.deploy(rec, it.plan, v)
        self.plane.progress(rec, "deploy", {"iteration": it.n, "state": out.state,
                                            "detail": out.detail})
        if out.state != "deployed":
            it.outcome = NOT_DEPLOYED
            it.lesson = out.detail
            rec.stop_reason = out.detail
            return False
        it.deployed, it.params = v.attempt.policy, dict(it.plan.params)
        if rec.workload:
            w0 = time.monotonic()
            cand = await self.plane.measure(rec, self.s.feedback_runs)
            it.workload_s += time.monotonic() - w0
            it.feedback = self._feedback(rec, cand)
            it.outcome = (IMPROVED if it.feedback and it.feedback.better
                          else REGRESSED if it.feedback and it.feedback.worse else NO_GAIN)
            self.plane.progress(rec, "feedback", {"iteration": it.n, "outcome": it.outcome,
                                                  "feedback": it.feedback.text()
                                                  if it.feedback else ""})
        else:
            it.outcome = UNMEASURED
        await self.plane.learn(rec, it)
        return True

    @staticmethod
    def _feedback(rec: EpisodeRecord, cand: list[float]) -> Feedback | None:
        lower = (rec.goal_spec.get("direction") == "lower" if rec.goal_spec
                 else not rec.goal.endswith(("_per_s", "throughput")))
        try:
            return Feedback.of(compare(rec.goal, rec.baseline, cand, lower_is_better=lower))
        except StatsError:
            return None

    async def _settle(self, rec: EpisodeRecord) -> None:
        """Leave the target on the episode's best, or on what ran before it."""
        deployed = [it for it in rec.iterations if it.deployed]
        if not deployed:
            return
        best, last = rec.best(), deployed[-1]
        if best is None:
            if last.outcome in (NO_GAIN, REGRESSED):
                await self.plane.rollback(f"episode {rec.id}: {last.deployed} measured "
                                          f"{last.outcome.replace('_', ' ')}")
            return
        if last is not best:
            await self.plane.restore(rec, best)
