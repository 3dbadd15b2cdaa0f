"""What an episode measures: a workload to run on the target and the metric it yields.

A workload is either one of the lab's named workloads (``longtail``, ``latency``,
``build``, ``mixed``: their own metric and parser) or any shell command, timed by its wall
time (``makespan_s``) or by a ``SCHEDCP_METRIC <name> <value>`` line it prints
(``metric=<name>``). Each run gets a fresh working directory, so a build starts clean.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from schedcpd.analysis.feedback import higher_is_better
from schedcpd.lab.result import CommandResult

MAKESPAN = "makespan_s"
# The goal words the planner reads, for the metrics it knows.
GOAL_OF = {"makespan_s": "minimise makespan", "build_s": "minimise makespan",
           "wall_s": "minimise makespan", "p99_wakeup_us": "p99 wakeup latency"}


class MeasureError(RuntimeError):
    """The workload could not be run or did not report its metric."""


class Runner(Protocol):
    name: str

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult: ...


@dataclass(frozen=True)
class Measured:
    workload: str  # as requested: a name or a command
    command: str
    metric: str
    lower_is_better: bool
    timeout_s: float
    parse: Callable[[str, float], float]
    marks_start: bool = False  # prints run_profile.START_MARK when its measured part begins

    @property
    def goal(self) -> str:
        return GOAL_OF.get(self.metric, "maximise throughput" if not self.lower_is_better
                           else "minimise makespan")


def _metric_parser(metric: str) -> Callable[[str, float], float]:
    """Wall time for makespan_s, else the lab workloads' own SCHEDCP_METRIC reader."""
    from schedcpd.lab.workloads import metric_value

    if metric == MAKESPAN:
        return lambda stdout, wall_s: wall_s
    return metric_value(metric)


def measured(workload: str, metric: str = "", timeout_s: float = 300.0) -> Measured:
    """The measurement for a named lab workload or a shell command."""
    from schedcpd.lab import workloads

    if not workload.strip():
        raise MeasureError("no workload to measure")
    if workload in workloads.WORKLOADS:
        wl = workloads.get(workload)
        if metric and metric != wl.metric:
            raise MeasureError(f"workload {workload} reports {wl.metric}, not {metric}")
        try:
            command = wl.command()
        except workloads.WorkloadError as exc:
            raise MeasureError(str(exc)) from None
        return Measured(workload, command, wl.metric, wl.lower_is_better, wl.timeout_s,
                        wl.parse, wl.marks_start)
    name = metric or MAKESPAN
    return Measured(workload, workload, name, not higher_is_better(name), timeout_s,
                    _metric_parser(name))


def fresh_dir(command: str) -> str:
    """``command`` in a working directory of its own, removed afterwards."""
    return (f"d=$(mktemp -d) && cd \"$d\" && {{ sh -c {shlex.quote(command)}; rc=$?; }}; "
            "cd / && rm -rf \"$d\"; exit $rc")


async def run_once(target: Runner, m: Measured) -> float:
    r = await target.run(fresh_dir(m.command), timeout_s=m.timeout_s)
    if r.exit_status != 0:
        raise MeasureError(f"the workload failed on the {target.name} target (exit "
                           f"{r.exit_status}): {r.stderr.strip()[-400:]}")
    try:
        return float(m.parse(r.stdout, r.wall_s))
    except (ValueError, KeyError, RuntimeError) as exc:  # a lab workload's own WorkloadError
        raise MeasureError(f"the workload's output has no {m.metric}: {exc}") from None


async def samples(target: Runner, m: Measured, runs: int) -> list[float]:
    """``runs`` timed runs under whatever scheduler the target runs now."""
    return [await run_once(target, m) for _ in range(runs)]
