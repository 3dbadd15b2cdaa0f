"""Rules from a workload's measured shape to candidate policies, each with a prior.

A prior (0..1) says how sure the rule is that the policy will help this shape; the bandit
turns it into an expected gain and lets measured history overrule it. No candidate means
the rules see nothing the default scheduler (EEVDF) does badly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schedcpd.agent.shape import Shape
from schedcpd.bpf.policy import PolicyError, Tunable

Params = dict[str, int | bool | str]
Library = Mapping[str, Sequence[Tunable]]  # policy name -> its tunables
Rule = tuple[str, float, dict[str, object], str]  # policy, prior, wanted settings, why


@dataclass(frozen=True)
class Candidate:
    policy: str
    params: Params
    prior: float
    reason: str  # why the rule chose it, one clause


@dataclass(frozen=True)
class RuleResult:
    candidates: tuple[Candidate, ...]
    verdict: str  # the shape in words: why these candidates, or why none
    keep_default: bool = False  # the shape itself says EEVDF is right (idle, one task)


def _params(library: Library, policy: str, wanted: Mapping[str, object]) -> Params:
    """The wanted settings the policy has and accepts; others are left at their defaults."""
    known = {t.name: t for t in library.get(policy, ())}
    out: Params = {}
    for name, value in wanted.items():
        if (t := known.get(name)) is not None:
            try:
                out[name] = t.validate(value)
            except PolicyError:
                continue
    return out


def profile_params(s: Shape, library: Library, policy: str) -> Params:
    """The settings a policy takes from what the profile names (a long job's comm), the
    rest at their defaults: how a policy no rule chose is explored."""
    comm = s.long_comm()
    return _params(library, policy, {"long_comms": comm} if comm else {})


def _long_tail(s: Shape) -> list[Rule]:
    comm = s.long_comm()
    why = (f"one CPU-bound process ({comm!r}) runs on while short ones come and go"
           if comm else "a long job among many short ones")
    # A named long job needs no runtime test, and the test misfires where a tool's start
    # alone costs more than long_after_ms (under TCG a python3 start is about 1 s of CPU,
    # an ffmpeg one 2 s), when every short task turns long and the real long job waits its
    # turn (unnamed ljf: 1.29x and 1.42x EEVDF on lt-tests and lt-analytics).
    wanted: dict[str, object] = {"long_comms": comm, "long_after_ms": 0} if comm else {}
    return [("ljf", 0.9, wanted, f"long tail: {why}, so the longest job should start first"),
            ("batch", 0.4, {}, "long tail: fewer switches shorten the batch")]


def _shape_rules(s: Shape) -> tuple[list[Rule], str]:
    latency_goal = "p99 wakeup latency" in s.goals
    # First the most specific shape: the shells that keep a stream of short jobs coming
    # wait on them and so look like sleepers beside the long job.
    if s.long_tail and not latency_goal:
        return _long_tail(s), "long-tail batch"
    if (s.sleepers and (s.hogs or s.contended)) or (latency_goal and s.hogs and s.contended):
        why = "latency-sensitive tasks share the CPUs with CPU hogs"
        return [("interactive", 0.9, {}, f"{why}; short bursts should run first"),
                ("edf", 0.6, {}, f"{why}; deadlines from bursts serve them promptly")], why
    if s.long_tail:
        return _long_tail(s), "long-tail batch"
    if s.churn or s.build:
        why = "a parallel build" if s.build else "many short-lived processes"
        rules: list[Rule] = [
            ("batch", 0.8, {}, f"{why}: long slices and no preemption keep caches warm"),
            ("locality", 0.6, {}, f"{why}: tasks stay on the CPU that has their data"),
            ("sjf", 0.4, {}, f"{why}: short recurring jobs finish first")]
        if "minimise makespan" in s.goals:
            rules.append(("ljf", 0.5, {}, f"{why} judged by makespan: long jobs start first"))
        return rules, why
    if s.hogs and s.contended and "maximise throughput" in s.goals:
        why = "more CPU-bound work than CPUs, judged by throughput"
        return [("batch", 0.6, {}, f"{why}: long slices cut switches"),
                ("locality", 0.5, {}, f"{why}: fewer migrations")], why
    return [], "no rule matches the measured shape"


def candidates(s: Shape, library: Library) -> RuleResult:
    if s.idle:
        if "energy" in s.goals and "powersave" in library:
            return RuleResult((Candidate("powersave", {}, 0.6,
                                         "mostly idle with an energy goal: pack work on "
                                         "few CPUs"),), "mostly idle")
        return RuleResult((), "the workload is mostly idle", keep_default=True)
    if s.single:
        return RuleResult((), "one task runs alone: nothing to reorder", keep_default=True)
    rules, verdict = _shape_rules(s)
    found = tuple(Candidate(p, _params(library, p, wanted), prior, why)
                  for p, prior, wanted, why in rules if p in library)
    return RuleResult(found, verdict)
