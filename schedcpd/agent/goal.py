"""The episode's goal: the user's metric with its direction, and guards that may not regress.

    goal = Goal.of_request(options)                 # --metric/--goal/--guard, D-Bus, MCP
        or declared(stdout)                         # the workload's own SCHEDCP_GOAL line
        or Goal.inferred(metric)                    # from the metric's name, said so

A workload declares its goal next to its ``SCHEDCP_METRIC`` lines::

    SCHEDCP_GOAL p99_ms lower
    SCHEDCP_GUARD rps higher 0.05        # requests/s may be at most 5 % lower

The request wins over the workload, the workload over inference; ``source`` says which
one spoke, and reports, records and the repository's history carry the goal so that
history is only ever compared goal to goal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schedcpd.analysis.stats import Comparison, StatsError, compare

METRIC_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
DIRECTIONS = {"lower": True, "min": True, "minimise": True, "minimize": True,
              "higher": False, "max": False, "maximise": False, "maximize": False}
MAX_GUARDS = 4
DEFAULT_GUARD_MARGIN = 0.05


class GoalError(ValueError):
    """A goal or guard is malformed; the message names the part."""


def _metric(name: object, what: str) -> str:
    if not isinstance(name, str) or not METRIC_RE.fullmatch(name):
        raise GoalError(f"{what}: a metric name is 1-64 letters, digits or '_', "
                        f"not {name!r}")
    return name


def _direction(word: object, what: str) -> bool:
    if not isinstance(word, str) or word.lower() not in DIRECTIONS:
        raise GoalError(f"{what}: the direction is 'lower' or 'higher', not {word!r}")
    return DIRECTIONS[word.lower()]


def _margin(value: object, what: str) -> float:
    try:
        m = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GoalError(f"{what}: the margin is a fraction such as 0.05, not {value!r}") \
            from None
    if not math.isfinite(m) or not 0 <= m < 1:
        raise GoalError(f"{what}: the margin must be in [0, 1), not {value!r}")
    return m


def _words(lower: bool) -> str:
    return "lower" if lower else "higher"


@dataclass(frozen=True)
class Guard:
    """A metric that may not get worse by more than ``margin`` (a fraction)."""

    metric: str
    lower_is_better: bool
    margin: float = DEFAULT_GUARD_MARGIN

    @classmethod
    def parse(cls, text: str) -> Guard:
        """``METRIC:lower|higher[:MARGIN]``, e.g. ``rps:higher:0.05``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise GoalError(f"guard {text!r}: expected METRIC:lower|higher[:MARGIN]")
        margin = _margin(parts[2], f"guard {text!r}") if len(parts) == 3 \
            else DEFAULT_GUARD_MARGIN
        return cls(_metric(parts[0], f"guard {text!r}"),
                   _direction(parts[1], f"guard {text!r}"), margin)

    def text(self) -> str:
        return f"{self.metric} ({_words(self.lower_is_better)} is better) within " \
               f"{self.margin:.0%}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": _words(self.lower_is_better),
                "margin": self.margin}


@dataclass(frozen=True)
class Goal:
    metric: str
    lower_is_better: bool
    guards: tuple[Guard, ...] = ()
    source: str = "inferred"  # request | workload | inferred

    def __post_init__(self) -> None:
        _metric(self.metric, "goal")
        if len(self.guards) > MAX_GUARDS:
            raise GoalError(f"at most {MAX_GUARDS} guards")
        if any(g.metric == self.metric for g in self.guards):
            raise GoalError(f"{self.metric} is the goal: it cannot also be a guard")

    def text(self) -> str:
        out = f"{self.metric}, {_words(self.lower_is_better)} is better"
        if self.guards:
            out += "; guards: " + ", ".join(g.text() for g in self.guards)
        said = {"request": "stated by the request", "workload": "declared by the workload",
                "inferred": "inferred from the metric's name"}
        return f"{out} ({said.get(self.source, self.source)})"

    def metrics(self) -> tuple[str, ...]:
        return (self.metric, *(g.metric for g in self.guards))

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": _words(self.lower_is_better),
                "guards": [g.to_dict() for g in self.guards], "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Goal:
        if not isinstance(d, Mapping):
            raise GoalError("a goal is a mapping")
        guards = d.get("guards") or []
        if not isinstance(guards, list | tuple):
            raise GoalError("guards must be a list")
        return cls(_metric(d.get("metric"), "goal"), _direction(d.get("direction"), "goal"),
                   tuple(_guard_of(g) for g in guards), str(d.get("source") or "request"))

    @classmethod
    def of_request(cls, options: Mapping[str, Any], metric: str) -> Goal | None:
        """The goal the caller stated (``goal`` direction, ``guards``), or None if the
        request says nothing about it. ``metric`` is the one the request measures."""
        direction, guards = options.get("goal"), options.get("guards") or []
        if direction is None and not guards:
            return None
        if not isinstance(guards, list | tuple):
            raise GoalError("guards must be a list of METRIC:lower|higher[:MARGIN]")
        lower = _direction(direction, "goal") if direction is not None else None
        parsed = tuple(Guard.parse(g) if isinstance(g, str) else _guard_of(g)
                       for g in guards)
        if lower is None:
            return None if not parsed else cls.inferred(metric, parsed, "request")
        return cls(metric, lower, parsed, "request")

    @classmethod
    def inferred(cls, metric: str, guards: tuple[Guard, ...] = (),
                 source: str = "inferred") -> Goal:
        """Throughput-like names are higher-is-better; times and latencies lower."""
        from schedcpd.analysis.feedback import higher_is_better

        higher = higher_is_better(metric) or metric.endswith(("_ops", "rps", "qps", "tps"))
        return cls(metric, not higher, guards, source)


def _guard_of(g: object) -> Guard:
    if isinstance(g, Guard):
        return g
    if isinstance(g, str):
        return Guard.parse(g)
    if not isinstance(g, Mapping):
        raise GoalError(f"a guard is METRIC:lower|higher[:MARGIN] or a mapping, not {g!r}")
    return Guard(_metric(g.get("metric"), "guard"), _direction(g.get("direction"), "guard"),
                 _margin(g.get("margin", DEFAULT_GUARD_MARGIN), "guard"))


def declared(stdout: str) -> Goal | None:
    """The goal a workload's output declares (the last SCHEDCP_GOAL line wins), or None."""
    goal: tuple[str, bool] | None = None
    guards: dict[str, Guard] = {}
    for line in stdout.splitlines():
        parts = line.split()
        try:
            if len(parts) == 3 and parts[0] == "SCHEDCP_GOAL":
                goal = (_metric(parts[1], "SCHEDCP_GOAL"), _direction(parts[2], "SCHEDCP_GOAL"))
            elif len(parts) in (3, 4) and parts[0] == "SCHEDCP_GUARD":
                guards[parts[1]] = Guard.parse(":".join(parts[1:]))
        except GoalError:
            continue  # a workload's stray line is not the request's error
    if goal is None:
        return None
    kept = tuple(g for m, g in guards.items() if m != goal[0])[:MAX_GUARDS]
    return Goal(goal[0], goal[1], kept, "workload")


# --- judging a candidate against a baseline by the goal ----------------------------------

@dataclass(frozen=True)
class Judgement:
    primary: Comparison
    broken: tuple[str, ...]  # guards the candidate regressed beyond their margins, surely
    doubtful: tuple[str, ...] = ()  # guards past their margins, not yet surely

    @property
    def better(self) -> bool:
        """Significantly better by the goal, and every guard shown to hold: a guard that
        may be broken holds a candidate back until more runs settle it."""
        return self.primary.better and not self.broken and not self.doubtful

    @property
    def gain(self) -> float:
        return self.primary.gain


def guard_check(g: Guard, base: Sequence[float], cand: Sequence[float]) -> tuple[str, str]:
    """(broken, doubtful): why the guard is broken (its median ratio past the margin and
    significantly worse than the baseline), or why it may be (past the margin, not yet
    significantly); "" for each that does not apply."""
    try:
        c = compare(g.metric, base, cand, lower_is_better=g.lower_is_better)
    except StatsError:
        return "", f"guard {g.metric}: not measured"
    worst_ok = 1 + g.margin if g.lower_is_better else 1 - g.margin
    past = c.ratio > worst_ok if g.lower_is_better else c.ratio < worst_ok
    if not past:
        return "", ""
    why = (f"guard {g.metric}: ratio {c.ratio:.3f} (95% CI {c.ci_low:.3f}..{c.ci_high:.3f}) "
           f"is more than {g.margin:.0%} worse")
    return (why, "") if c.worse else ("", why)


def judge(goal: Goal, base: Mapping[str, Sequence[float]],
          cand: Mapping[str, Sequence[float]]) -> Judgement:
    """The candidate's samples against the baseline's, by the goal and its guards.
    StatsError when the primary metric has no samples on either side. A guard the runs
    did not report cannot be shown to hold: it is doubtful."""
    primary = compare(goal.metric, base.get(goal.metric, ()), cand.get(goal.metric, ()),
                      lower_is_better=goal.lower_is_better)
    checks = [guard_check(g, base.get(g.metric, ()), cand.get(g.metric, ()))
              for g in goal.guards]
    return Judgement(primary, tuple(b for b, _ in checks if b),
                     tuple(d for _, d in checks if d))
