"""EEVDF and the agent's choices on one workload, interleaved in one lab boot.

The episode's own before/after runs are sequential; here every scheduler runs once per
round, in an order rotated from round to round (A B C, B C A, C A B, ...), so drift in the
machine (another guest, a warm page cache) falls on all of them alike. Choices that are the
same scheduler with the same tunables are measured once and share their samples.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schedcpd.bench.episodes import EEVDF, Choice
from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.lab import run_steps, workloads
from schedcpd.lab.job import SchedulerLoad


@dataclass
class Samples:
    """Per distinct scheduler: its metric per successful run; failures kept as text."""

    values: dict[str, list[float]] = field(default_factory=dict)  # by Choice.label()
    # From the long-tail summary line, per scheduler: under TCG the work itself changes
    # with the scheduler (fewer switches cost less emulation), and so does the bound.
    lower_bounds: dict[str, list[float]] = field(default_factory=dict)
    total_cpu: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def rotated_order(labels: list[str], rounds: int) -> list[str]:
    """Every label once per round, the round's order rotated by one each time."""
    out: list[str] = []
    for r in range(rounds):
        k = r % len(labels)
        out += labels[k:] + labels[:k]
    return out


def distinct(choices: Mapping[str, Choice]) -> dict[str, Choice]:
    """The distinct schedulers among the named choices, by label (EEVDF first)."""
    out: dict[str, Choice] = {EEVDF: Choice(EEVDF)}
    for c in choices.values():
        out.setdefault(c.label(), c)
    return out


async def interleaved(workload: str, choices: Mapping[str, Choice], rounds: int) -> Samples:
    wl = workloads.get(workload)
    todo = distinct(choices)
    got = Samples(values={label: [] for label in todo})
    with tempfile.TemporaryDirectory(prefix="schedcp-bench-") as tmp:
        loads: dict[str, SchedulerLoad | None] = {
            label: None if c.policy == EEVDF else prepare_policy(c.policy, c.params,
                                                                  Path(tmp) / f"p{i}")
            for i, (label, c) in enumerate(todo.items())}
        order = rotated_order(list(todo), rounds)
        results = await run_steps([wl.step(loads[label]) for label in order])
    for n, (label, res) in enumerate(zip(order, results, strict=True)):
        ok = res.ok and (loads[label] is None or (res.attached and not res.ejected))
        if not ok:
            got.failures.append(f"{workload} run {n} ({label}): {res.summary()}")
            continue
        try:
            got.values[label].append(wl.measure(res))
        except workloads.WorkloadError as exc:
            got.failures.append(f"{workload} run {n} ({label}): {exc}")
            continue
        d = workloads.details(res.stdout)
        if "lower_bound_s" in d:
            got.lower_bounds.setdefault(label, []).append(d["lower_bound_s"])
            got.total_cpu.setdefault(label, []).append(d.get("total_cpu_s", 0.0))
    return got
