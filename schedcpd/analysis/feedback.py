"""Tier 3, feedback: a workload under a baseline and under a candidate, compared with confidence.

``run_feedback`` runs one command under two conditions, interleaved (A B A B ...) so that
machine noise and drift hit both alike, and compares makespan, the latency percentiles and
throughput the workload reports, through ``stats.compare`` (ratio of medians, bootstrap
confidence interval, sample counts). A condition is a name plus optional enter/exit hooks
(attach a scheduler, start competing load) and optionally its own command.
``observe`` does the same for a workload that is already running: it samples metrics in
windows under each condition instead of running anything.

A workload reports its own numbers with stdout lines ``SCHEDCP_METRIC <name> <value>``;
a name reported several times in one run (per-request latencies) is summarised by that
run's p50 and p99. Names ending in ``_per_s`` or ``throughput`` are higher-is-better.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from schedcpd.analysis.stats import DEFAULT_LEVEL, Comparison, StatsError, compare, percentile

MIN_RUNS, MAX_RUNS = 2, 200
Hook = Callable[[], Awaitable[None]]


class FeedbackError(RuntimeError):
    """The comparison could not be made (bad request, failed runs, too few samples)."""


@dataclass(frozen=True)
class RunSample:
    wall_s: float
    exit_status: int
    metrics: Mapping[str, float] = field(default_factory=dict)


class Runner(Protocol):
    async def run(self, command: str, timeout_s: float) -> RunSample: ...


@dataclass(frozen=True)
class Condition:
    name: str
    enter: Hook | None = None
    exit: Hook | None = None
    command: str | None = None  # overrides the shared command for this condition


def parse_metrics(stdout: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "SCHEDCP_METRIC":
            try:
                x = float(parts[2])
            except ValueError:
                continue
            values.setdefault(parts[1], []).append(x)
    out: dict[str, float] = {}
    for name, xs in values.items():
        if len(xs) == 1:
            out[name] = xs[0]
        else:
            out[f"{name}_p50"] = percentile(xs, 50)
            out[f"{name}_p99"] = percentile(xs, 99)
    return out


def higher_is_better(metric: str) -> bool:
    return metric.endswith("_per_s") or metric.startswith("throughput")


class LocalRunner:
    """Runs commands with ``sh -c`` on this machine."""

    async def run(self, command: str, timeout_s: float) -> RunSample:
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", command, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            import os
            import signal

            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return RunSample(time.monotonic() - t0, 137)
        wall = time.monotonic() - t0
        return RunSample(wall, proc.returncode or 0, parse_metrics(out.decode(errors="replace")))


class LabRunner:
    """Runs commands in a lab guest (a started ``LabSession``); wall time is the guest's."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def run(self, command: str, timeout_s: float) -> RunSample:
        r = await self.session.run(command, timeout_s)
        return RunSample(r.wall_s, r.exit_status, parse_metrics(r.stdout))


@dataclass(frozen=True)
class FeedbackReport:
    baseline: str
    candidate: str
    runs: int
    comparisons: tuple[Comparison, ...]
    failures: Mapping[str, int]

    @property
    def significant(self) -> bool:
        return any(c.significant for c in self.comparisons)

    def get(self, metric: str) -> Comparison:
        for c in self.comparisons:
            if c.metric == metric:
                return c
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "candidate": self.candidate, "runs": self.runs,
                "significant": self.significant, "failures": dict(self.failures),
                "comparisons": [c.as_dict() for c in self.comparisons]}


def _series(samples: list[RunSample]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"makespan_s": [s.wall_s for s in samples],
                                   "throughput_runs_per_s": [1 / s.wall_s for s in samples
                                                             if s.wall_s > 0]}
    for s in samples:
        for k, v in s.metrics.items():
            out.setdefault(k, []).append(v)
    return out


def build_report(base: Condition, cand: Condition, a: list[RunSample], b: list[RunSample],
                 failures: Mapping[str, int], runs: int,
                 level: float = DEFAULT_LEVEL) -> FeedbackReport:
    sa, sb = _series(a), _series(b)
    comps = []
    for metric in sa.keys() & sb.keys():
        if len(sa[metric]) < MIN_RUNS or len(sb[metric]) < MIN_RUNS:
            continue
        try:
            comps.append(compare(metric, sa[metric], sb[metric],
                                 lower_is_better=not higher_is_better(metric), level=level))
        except StatsError:
            continue  # e.g. a zero baseline: no ratio to report
    comps.sort(key=lambda c: (c.metric != "makespan_s", c.metric))
    if not comps:
        raise FeedbackError("no metric had enough successful runs under both conditions")
    return FeedbackReport(base.name, cand.name, runs, tuple(comps), dict(failures))


async def _one(runner: Runner, cond: Condition, command: str, timeout_s: float) -> RunSample:
    if cond.enter is not None:
        await cond.enter()
    try:
        return await runner.run(cond.command or command, timeout_s)
    finally:
        if cond.exit is not None:
            await cond.exit()


async def run_feedback(runner: Runner, command: str, baseline: Condition, candidate: Condition,
                       runs: int = 8, timeout_s: float = 60.0,
                       warmup: int = 1, level: float = DEFAULT_LEVEL) -> FeedbackReport:
    """Run ``command`` ``runs`` times per condition, interleaved, and compare at ``level``
    (each metric's false alarm rate between identical conditions is about 1 - level)."""
    if not MIN_RUNS <= runs <= MAX_RUNS:
        raise FeedbackError(f"runs must be in [{MIN_RUNS}, {MAX_RUNS}]")
    if not command and not (baseline.command and candidate.command):
        raise FeedbackError("no command to run")
    for _ in range(warmup):  # first runs pay cold caches; they are not counted
        await _one(runner, baseline, command, timeout_s)
    got: dict[str, list[RunSample]] = {"a": [], "b": []}
    failures = {baseline.name: 0, candidate.name: 0}
    for i in range(runs):
        order = [("a", baseline), ("b", candidate)]
        for slot, cond in order if i % 2 == 0 else order[::-1]:
            s = await _one(runner, cond, command, timeout_s)
            if s.exit_status == 0:
                got[slot].append(s)
            else:
                failures[cond.name] += 1
    return build_report(baseline, candidate, got["a"], got["b"], failures, runs, level)


Window = Callable[[], Awaitable[Mapping[str, float]]]


async def observe(window: Window, baseline: Condition, candidate: Condition,
                  windows: int = 8, level: float = DEFAULT_LEVEL) -> FeedbackReport:
    """Compare metrics sampled by ``window()`` (e.g. a tier-1 interval) under each condition."""
    if not MIN_RUNS <= windows <= MAX_RUNS:
        raise FeedbackError(f"windows must be in [{MIN_RUNS}, {MAX_RUNS}]")
    got: dict[str, list[RunSample]] = {"a": [], "b": []}
    for i in range(windows):
        order = [("a", baseline), ("b", candidate)]
        for slot, cond in order if i % 2 == 0 else order[::-1]:
            if cond.enter is not None:
                await cond.enter()
            try:
                t0 = time.monotonic()
                metrics = dict(await window())
                got[slot].append(RunSample(time.monotonic() - t0, 0, metrics))
            finally:
                if cond.exit is not None:
                    await cond.exit()
    a = [RunSample(1.0, 0, s.metrics) for s in got["a"]]  # windows have no makespan
    b = [RunSample(1.0, 0, s.metrics) for s in got["b"]]
    rep = build_report(baseline, candidate, a, b, {}, windows, level)
    keep = tuple(c for c in rep.comparisons
                 if c.metric not in ("makespan_s", "throughput_runs_per_s"))
    if not keep:
        raise FeedbackError("the window returned no metric")
    return FeedbackReport(rep.baseline, rep.candidate, windows, keep, {})
