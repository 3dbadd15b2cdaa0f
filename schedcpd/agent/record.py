"""The shared episode record: what every role of sched-agent reads and adds to.

Plain data. Observation fills in the profile (and deeper probes, when asked for) and the
baseline; each iteration adds the plan, the verifier's attempts, what was deployed, the
measured feedback and the lesson learned. Later iterations see all of it: the outcomes of
earlier iterations stay in context (the paper's in-context reinforcement learning).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from schedcpd.analysis.stats import Comparison

Action = Literal["configure", "patch", "compose", "keep"]
ACTIONS: tuple[Action, ...] = ("configure", "patch", "compose", "keep")
# What an iteration came to, for the record, the history and the stop rule.
IMPROVED, NO_GAIN, REGRESSED, REJECTED, NOT_DEPLOYED, KEPT, UNMEASURED = (
    "improved", "no_gain", "regressed", "rejected", "not_deployed", "kept_default",
    "unmeasured")


@dataclass(frozen=True)
class PlanChoice:
    """Planning's decision. ``configure`` sets a library policy's tunables; ``patch``
    changes a policy's source (``policy`` is the parent); ``compose`` writes a new one from
    the bpf/ primitives; ``keep`` leaves the running scheduler alone."""

    action: Action
    policy: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    rationale: str = ""

    def label(self) -> str:
        if self.action == "keep":
            return "keep the current scheduler"
        what = self.policy or "a new policy"
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.action} {what}" + (f" ({args})" if args else "")


@dataclass(frozen=True)
class Attempt:
    """One submission to the Execution Verifier."""

    policy: str  # the name it was verified under (a generated policy gets its own)
    passed: bool
    stage: str  # the stage it failed at, or "" when it passed
    findings: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Feedback:
    """Tier 3 on the target: the workload's metric before and after the deployment."""

    metric: str
    lower_is_better: bool
    baseline: float
    candidate: float
    ratio: float
    ci_low: float
    ci_high: float
    n_baseline: int
    n_candidate: int
    better: bool
    worse: bool

    @property
    def gain(self) -> float:
        return 1.0 - self.ratio if self.lower_is_better else self.ratio - 1.0

    @classmethod
    def of(cls, c: Comparison) -> Feedback:
        return cls(c.metric, c.lower_is_better, c.baseline_median, c.candidate_median,
                   c.ratio, c.ci_low, c.ci_high, c.n_baseline, c.n_candidate, c.better,
                   c.worse)

    def text(self) -> str:
        verdict = "better" if self.better else "worse" if self.worse else "no significant change"
        return (f"{self.metric} {self.baseline:.4g} -> {self.candidate:.4g} (ratio "
                f"{self.ratio:.3f}, 95% CI {self.ci_low:.3f}..{self.ci_high:.3f}, "
                f"n={self.n_baseline}+{self.n_candidate}): {verdict}")


@dataclass
class Iteration:
    n: int
    plan: PlanChoice | None = None
    attempts: list[Attempt] = field(default_factory=list)
    deployed: str = ""  # the policy deployed (its verified name), "" if none
    params: dict[str, Any] = field(default_factory=dict)
    feedback: Feedback | None = None
    outcome: str = ""
    lesson: str = ""
    seconds: float = 0.0  # control-plane time: planning, verification, deployment
    workload_s: float = 0.0  # time spent running the workload for feedback
    race: dict[str, Any] = field(default_factory=dict)  # the race that chose the plan
    # The winner's gain over the kernel's default, its races' ratios chained: each race
    # measured it against the one deployed before (None: not chosen by a race).
    race_gain: float | None = None


@dataclass
class Usage:
    """What the episode spent: checked against its budget after every step."""

    wall_s: float = 0.0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class EpisodeRecord:
    id: str
    target: str  # the request's words: what to optimize
    backend: str
    goal: str = ""  # the metric the episode optimizes ("makespan_s", ...), "" if none
    # The whole goal (agent.goal.Goal.to_dict()): metric, direction, guards, who said so.
    goal_spec: dict[str, Any] = field(default_factory=dict)
    workload: str = ""  # a named lab workload or a shell command; "" for a running one
    profile: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)  # deeper tiers, by kind
    baseline: list[float] = field(default_factory=list)
    iterations: list[Iteration] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""
    # The tools an LLM backend called through the registry: {tool, arguments, result}.
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    races: list[dict[str, Any]] = field(default_factory=list)  # every race, in order
    lab_runs: int = 0  # workload runs spent racing in the lab
    lab_s: float = 0.0  # and the lab seconds they took (verification included)

    def best(self) -> Iteration | None:
        """The iteration with the largest significant gain, if any improved.

        In a measured search each deployment won a race against the one before it (the
        first against the default), so the latest deployment that the target did not
        measure worse is the best; its few sequential runs on the target showing no
        significant change do not throw the race's interleaved evidence away."""
        raced = [it for it in self.iterations if it.deployed and it.race_gain is not None
                 and it.outcome in (IMPROVED, NO_GAIN)]
        if raced:
            return raced[-1]
        good = [it for it in self.iterations if it.outcome == IMPROVED and it.feedback]
        return max(good, key=_gain, default=None)

    def tried(self) -> list[tuple[str, dict[str, Any]]]:
        return [(it.plan.policy, dict(it.plan.params)) for it in self.iterations
                if it.plan is not None and it.plan.action == "configure"]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usage"]["tokens"] = self.usage.tokens
        return d

    def summary(self) -> dict[str, Any]:
        """The small form: for D-Bus, the CLI and the audit log."""
        best = self.best()
        return {"id": self.id, "backend": self.backend, "goal": self.goal,
                "iterations": len(self.iterations), "stop_reason": self.stop_reason,
                "best_policy": best.deployed if best else "",
                "best_gain": round(_gain(best), 4) if best else None,
                "goal_spec": self.goal_spec, "lab_runs": self.lab_runs,
                "lab_s": round(self.lab_s, 1),
                "wall_s": round(self.usage.wall_s, 2), "llm_calls": self.usage.llm_calls,
                "tokens": self.usage.tokens, "cost": round(self.usage.cost, 6),
                "outcomes": [it.outcome for it in self.iterations]}


def _gain(it: Iteration) -> float:
    if it.outcome == IMPROVED and it.feedback is not None:
        return it.feedback.gain
    return it.race_gain if it.race_gain is not None else 0.0
