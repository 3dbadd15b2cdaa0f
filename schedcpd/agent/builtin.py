"""The built-in planner: no LLM, rules from the workload's shape plus a bandit over history.

    planner = BuiltinPlanner.on_store(store)
    plan = await planner.plan("system", {"profile": profile.to_dict()})   # Plan | None

``BuiltinBackend`` is the same planner behind the agent's backend interface (the
default backend of the loop).

The decision is a pure function, ``decide(profile, library, evidence)``: the rules
(``rules.py``) name candidate policies with priors, the repository's evidence removes the
pairs that failed or regressed on similar workloads and adds what gained there, and the
bandit (``bandit.py``) weighs priors against the gains measured on this very workload, so
the choice moves with feedback. ``BuiltinPlanner`` only fetches that evidence.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schedcpd.agent import search
from schedcpd.agent.backend import BackendError, ObserveDecision, Reflection
from schedcpd.agent.bandit import MIN_SCORE, PRIOR_GAIN, ArmKey, ArmStats, Score, arm_key, rank
from schedcpd.agent.record import REJECTED, Attempt, EpisodeRecord, PlanChoice
from schedcpd.agent.rules import Candidate, Library, Params, candidates, profile_params
from schedcpd.agent.shape import Shape
from schedcpd.analysis.measure import GOAL_OF
from schedcpd.analysis.profile import ProfileError, WorkloadProfile
from schedcpd.repository import (
    Antipattern,
    HistoryRecord,
    Profile,
    Recommendation,
    Repository,
    RepositoryError,
)
from schedcpd.repository.history import SELECT_RUNS, run_from_row
from schedcpd.repository.lazy import LazyRepository
from schedcpd.store import Store

log = logging.getLogger("schedcpd.agent")


@dataclass(frozen=True)
class Plan:
    """The built-in planner's answer: a library policy, its parameters and why."""

    policy: str
    params: dict[str, Any]
    rationale: str


class PlanningError(ValueError):
    """The request cannot be planned (a malformed profile, say); nothing was changed."""


@dataclass(frozen=True)
class Evidence:
    """What the repository knows, as plain data keyed by arm (policy, parameters)."""

    recommended: Mapping[ArmKey, float] = field(default_factory=dict)  # gain on similar work
    excluded: Mapping[ArmKey, str] = field(default_factory=dict)  # failed or regressed: why
    history: Mapping[ArmKey, ArmStats] = field(default_factory=dict)  # measured on this one


# The same work done sooner is more of it per second: these goals share their evidence.
KINDRED_GOALS = {"maximise throughput": "minimise makespan"}


def serves(metric: str, goals: Sequence[str], wanted: str = "") -> bool:
    """Whether a gain measured on ``metric`` is evidence for a workload with ``goals``: a
    shorter makespan says nothing about p99 wakeups. With the episode's own metric
    (``wanted``), history is compared goal to goal: the same metric, or one of the same
    known goal. Otherwise metrics of no known goal count."""
    goal = GOAL_OF.get(metric)
    if wanted:
        other = GOAL_OF.get(wanted)
        return metric == wanted or (goal is not None and other is not None and
                                    KINDRED_GOALS.get(goal, goal)
                                    == KINDRED_GOALS.get(other, other))
    if not goals or goal is None:
        return True
    return KINDRED_GOALS.get(goal, goal) in {KINDRED_GOALS.get(g, g) for g in goals}


def evidence_from(recs: Sequence[Recommendation], antis: Sequence[Antipattern],
                  runs: Iterable[HistoryRecord], fingerprint: str,
                  goals: Sequence[str] = (), metric: str = "") -> Evidence:
    recommended: dict[ArmKey, float] = {}
    for r in recs:
        if not serves(r.metric, goals, metric):
            continue
        key = arm_key(r.policy, r.params)
        recommended[key] = max(recommended.get(key, 0.0), r.gain * r.similarity)
    excluded = {arm_key(a.policy, a.params): f"{a.outcome} {a.count}x on a similar workload"
                for a in antis}
    history: dict[ArmKey, ArmStats] = {}
    for run in runs:
        if (run.profile_fingerprint == fingerprint and run.gain is not None
                and serves(run.metric, goals, metric)):
            key = arm_key(run.policy, run.params)
            history[key] = history.get(key, ArmStats()).add(run.gain)
    return Evidence(recommended, excluded, history)


def profile_from_options(options: object) -> WorkloadProfile | None:
    """The profile in the daemon's options, checked as the repository will check it; None
    when there is none (nothing to plan from). PlanningError when it is malformed."""
    if not isinstance(options, Mapping):
        raise PlanningError("options must be a mapping")
    raw = options.get("profile")
    if raw is None:
        return None
    try:
        prof = raw if isinstance(raw, WorkloadProfile) else WorkloadProfile.from_dict(raw)
        fp = Profile.of(prof).fingerprint  # a profile without one gets the repository's
    except (ProfileError, RepositoryError) as exc:
        raise PlanningError(f"invalid profile: {exc}") from None
    return dataclasses.replace(prof, fingerprint=fp)


def _checked(library: Library, policy: str, params: Mapping[str, Any]) -> Params | None:
    """Parameters as the library's current tunables accept them, or None if they do not."""
    known = {t.name: t for t in library.get(policy, ())}
    if policy not in library or not set(params) <= set(known):
        return None
    try:
        return {k: known[k].validate(v) for k, v in params.items()}
    except ValueError:
        return None


@dataclass(frozen=True)
class Arm:
    policy: str
    params: Params
    prior_gain: float
    reason: str
    similar: bool  # the prior is a gain recorded on similar workloads, not the rule's


def _arms(found: Sequence[Candidate], library: Library, ev: Evidence) -> dict[ArmKey, Arm]:
    arms: dict[ArmKey, Arm] = {}
    for c in found:
        key = arm_key(c.policy, c.params)
        seen = ev.recommended.get(key, 0.0)
        arms[key] = Arm(c.policy, c.params, max(PRIOR_GAIN * c.prior, seen), c.reason,
                        seen > PRIOR_GAIN * c.prior)
    # What measured well before joins even when no rule names it: learning beats rules.
    learned = dict(ev.recommended)
    for key, st in ev.history.items():
        if (m := st.mean) is not None and m > 0:
            learned.setdefault(key, 0.0)
    for key, gain in learned.items():
        if key in arms or (params := _checked(library, key[0], _params_of(key))) is None:
            continue
        arms[key] = Arm(key[0], params, gain, "it gained on this kind of workload before",
                        True)
    return {k: a for k, a in arms.items() if k not in ev.excluded}


def _params_of(key: ArmKey) -> dict[str, Any]:
    value = json.loads(key[1])
    return value if isinstance(value, dict) else {}


def _params_text(params: Params) -> str:
    return "" if not params else " with " + ", ".join(f"{k}={v!r}" for k, v in params.items())


def _evidence_text(best: Score, arm: Arm, skipped: Sequence[str]) -> str:
    st = best.stats
    if st.n:
        text = (f"Measured {st.n}x on this workload, mean gain {st.mean or 0.0:+.0%}; "
                f"expected {best.expected:+.0%}.")
    elif arm.similar:
        text = f"No runs here yet; similar workloads gained about {arm.prior_gain:.0%}."
    else:
        text = "No runs on this workload yet: the rule's expectation stands."
    if skipped:
        text += f" Left out: {', '.join(skipped)}."
    return text


@dataclass(frozen=True)
class Decision:
    plan: Plan | None
    verdict: str  # why, also when nothing is planned
    ranking: tuple[Score, ...] = ()


def explain(profile: WorkloadProfile, library: Library, ev: Evidence) -> Decision:
    shape = Shape.of(profile)
    rules = candidates(shape, library)
    if rules.keep_default:
        return Decision(None, f"keep EEVDF: {rules.verdict}")
    if not rules.candidates and not ev.history and shape.runq_p99_us is not None \
            and not shape.contended:
        # The run-queue probe answered what no rule could: tasks barely wait for a CPU, so
        # a scheduler has nothing to reorder here. A gain on a similar-looking workload
        # elsewhere does not change that; a gain measured on this one would.
        return Decision(None, "keep EEVDF: nothing waits for a CPU (run-queue p99 "
                              f"{shape.runq_p99_us:g} us)")
    arms = _arms(rules.candidates, library, ev)
    skipped = sorted({f"{c.policy} ({ev.excluded[k]})" for c in rules.candidates
                      if (k := arm_key(c.policy, c.params)) in ev.excluded})
    ranking = tuple(rank({k: a.prior_gain for k, a in arms.items()}, ev.history))
    if not ranking or ranking[0].value < MIN_SCORE:
        why = "no candidate is expected to beat it" if ranking else rules.verdict
        return Decision(None, f"keep EEVDF: {why}" + (
            f"; left out {', '.join(skipped)}" if skipped else ""), ranking)
    best = ranking[0]
    arm = arms[best.key]
    rationale = (f"{arm.reason[0].upper()}{arm.reason[1:]}: {arm.policy}"
                 f"{_params_text(arm.params)}. {_evidence_text(best, arm, skipped)}")
    return Decision(Plan(arm.policy, dict(arm.params), rationale), rules.verdict, ranking)


EXCLUDED_PENALTY = 1.0  # an arm that failed or regressed on similar work races last


def search_arms(profile: WorkloadProfile, library: Library, ev: Evidence,
                allowed: Sequence[str] = ()) -> list[search.Arm]:
    """Every candidate worth measuring, best prior first: the rules' and the repository's
    arms ranked by the bandit, then each other library policy at its defaults (strings
    set from what the profile names), explored. Nothing is vetoed here: what failed or
    regressed on similar work goes last, and "no rule matches" only means every prior is
    the same. ``allowed`` (when given) limits the policies."""
    shape = Shape.of(profile)
    rules = candidates(shape, library)
    arms = _arms(rules.candidates, library, dataclasses.replace(ev, excluded={}))
    ranking = rank({k: a.prior_gain for k, a in arms.items()}, ev.history)
    out: list[search.Arm] = []
    for sc in ranking:
        a = arms[sc.key]
        out.append(search.Arm(a.policy, a.params, sc.value, a.reason))
    have = {a.policy for a in out}  # a policy the rules configured is not explored again
    for name in sorted(set(library) - have):
        out.append(search.Arm(name, profile_params(shape, library, name), 0.0,
                              f"no rule names {name} for this shape: measured to find out"))
    out = [dataclasses.replace(a, prior=a.prior - EXCLUDED_PENALTY,
                               reason=f"{a.reason} (last: {ev.excluded[a.key()]})")
           if a.key() in ev.excluded else a for a in out]
    if allowed:
        out = [a for a in out if a.policy in allowed]
    return sorted(out, key=lambda a: -a.prior)


def decide(profile: WorkloadProfile, library: Library, ev: Evidence) -> Plan | None:
    """The plan for this profile, or None to keep the default scheduler."""
    return explain(profile, library, ev).plan


class BuiltinPlanner:
    """The daemon's planner when ``agent.backend = "builtin"``: fetches evidence, decides."""

    def __init__(self, repository: LazyRepository) -> None:
        self._repository = repository
        self.last: Decision | None = None  # for status and tests: the latest reasoning

    @classmethod
    def on_store(cls, store: Store) -> BuiltinPlanner:
        return cls(LazyRepository.on_store(store))

    @classmethod
    def with_repository(cls, repo: Repository) -> BuiltinPlanner:
        return cls(LazyRepository.ready(repo))

    async def repository(self) -> Repository:
        return await self._repository.get()

    async def evidence(self, repo: Repository, profile: WorkloadProfile,
                       library: Library, metric: str = "") -> Evidence:
        recs = await repo.best_for(profile, k=20)
        antis = await repo.antipatterns(profile)
        return evidence_from(recs, antis, await self.runs_here(repo, profile.fingerprint),
                             profile.fingerprint, profile.goals, metric)

    @staticmethod
    async def runs_here(repo: Repository, fingerprint: str,
                        limit: int = 2000) -> list[HistoryRecord]:
        """The latest measured runs on exactly this workload, whatever the policy."""
        rows = await repo.store.fetchall(
            f"{SELECT_RUNS} WHERE pr.fingerprint = ? ORDER BY r.created_at DESC, r.id DESC "
            "LIMIT ?", (fingerprint, limit))
        return [run_from_row(r) for r in rows]

    async def plan(self, target: str, options: dict[str, Any]) -> Plan | None:
        profile = profile_from_options(options)
        if profile is None:
            # The daemon's observation step profiles the target before planning; without
            # a profile there is nothing to plan from, and keeping the scheduler is safe.
            return None
        repo = await self.repository()
        library = {r.name: r.tunables for r in await repo.policies()}
        self.last = explain(profile, library, await self.evidence(repo, profile, library))
        log.info("builtin planner for %s: %s", target,
                 self.last.plan.rationale if self.last.plan else self.last.verdict)
        return self.last.plan


def profile_of(rec: EpisodeRecord) -> WorkloadProfile:
    """The episode's profile as planning sees it; BackendError if there is none."""
    try:
        prof = profile_from_options({"profile": rec.profile}) if rec.profile else None
    except PlanningError as exc:
        raise BackendError(str(exc)) from None
    if prof is None:
        raise BackendError("observation gave no profile to plan from")
    return prof


def _rejected(rec: EpisodeRecord) -> dict[ArmKey, str]:
    """Arms the verifier refused in this episode: never planned again within it."""
    out: dict[ArmKey, str] = {}
    for it in rec.iterations:
        if it.outcome == REJECTED and it.plan is not None and it.plan.action == "configure":
            stage = it.attempts[-1].stage if it.attempts else "verifier"
            out[arm_key(it.plan.policy, it.plan.params)] = f"rejected by the {stage} stage"
    return out


class BuiltinBackend:
    """The default backend: the rules and the bandit of ``BuiltinPlanner``, no LLM.

    It only configures library policies (it writes no code). Measured feedback reaches it
    through the repository's history, which the learning step writes after each iteration,
    so the bandit's next choice moves with what this episode measured.
    """

    name = "builtin"

    def __init__(self, repository: LazyRepository) -> None:
        self.planner = BuiltinPlanner(repository)

    async def _library(self) -> tuple[Repository, Library]:
        repo = await self.planner.repository()
        return repo, {r.name: r.tunables for r in await repo.policies()}

    async def observe(self, rec: EpisodeRecord) -> ObserveDecision:
        prof = profile_of(rec)
        _, library = await self._library()
        rules = candidates(Shape.of(prof), library)
        if rules.candidates or rules.keep_default or "runq_p99_us" in prof.characteristics:
            return ObserveDecision((), f"the summary is enough: {rules.verdict}")
        return ObserveDecision(("runqlat",), "no rule knows the summary's shape: run-queue "
                                             "latency shows whether tasks wait for a CPU")

    async def plan(self, rec: EpisodeRecord) -> PlanChoice:
        prof = profile_of(rec)
        repo, library = await self._library()
        ev = await self.planner.evidence(repo, prof, library)
        ev = dataclasses.replace(ev, excluded={**ev.excluded, **_rejected(rec)})
        decision = explain(prof, library, ev)
        self.planner.last = decision
        if decision.plan is None:
            return PlanChoice("keep", rationale=decision.verdict)
        p = decision.plan
        return PlanChoice("configure", p.policy, dict(p.params), None, p.rationale)

    async def propose(self, rec: EpisodeRecord, allowed: Sequence[str] = ()
                      ) -> list[search.Arm]:
        """The candidates to race, best prior first (see ``search_arms``)."""
        prof = profile_of(rec)
        repo, library = await self._library()
        ev = await self.planner.evidence(repo, prof, library, rec.goal)
        refused = _rejected(rec)  # by the verifier in this very episode: not again
        return [a for a in search_arms(prof, library, ev, allowed) if a.key() not in refused]

    async def fix(self, rec: EpisodeRecord, choice: PlanChoice,
                  failed: Attempt) -> PlanChoice | None:
        return None  # it writes no code: a refused configuration is left out next time

    async def reflect(self, rec: EpisodeRecord) -> Reflection:
        it = rec.iterations[-1]
        if it.feedback is not None:
            lesson = f"{it.plan.label() if it.plan else '?'}: {it.feedback.text()}"
        else:
            lesson = f"{it.plan.label() if it.plan else '?'}: {it.outcome}"
        # Another iteration is always worth planning: the loop stops when the bandit's
        # choice is one this episode already measured (convergence) or keeps EEVDF.
        return Reflection(True, lesson)

    async def close(self) -> None:
        return None
