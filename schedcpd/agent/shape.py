"""A workload's shape: the few facts the built-in planner's rules read from a profile.

Profiles come from tier 1 (measured numbers, ``top0_comm`` and the like), from a user or
from an earlier version of the analysis, so every field is optional and read defensively:
a missing, non-numeric or non-finite value is treated as unknown, never as a crash. The
description's words (tier 1's ``character``) back up the numbers when they are missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from schedcpd.analysis.profile import WorkloadProfile

COMM_RE = re.compile(r"^[A-Za-z0-9_.+:-]{1,15}$")  # what a comm tunable may safely carry
BUILD_COMMS = frozenset({"make", "ninja", "cc1", "cc1plus", "gcc", "g++", "clang", "ld",
                         "rustc", "cargo", "javac", "go", "as"})
TOP_N = 3
# A run-queue wait this long at p99 means tasks queue for the CPUs: contention the
# summary's averages can hide.
RUNQ_CONTENDED_US = 2000.0


@dataclass(frozen=True)
class TopProc:
    comm: str
    cpu: float  # CPUs used over the sample
    pattern: str  # tier 1: cpu-bound | interactive | mixed | sleeping


def number(chars: Mapping[str, object], key: str) -> float | None:
    v = chars.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _text(chars: Mapping[str, object], key: str) -> str | None:
    v = chars.get(key)
    return v if isinstance(v, str) else None


def _top(chars: Mapping[str, object]) -> tuple[TopProc, ...]:
    out = []
    for i in range(TOP_N):
        comm, pat = chars.get(f"top{i}_comm"), chars.get(f"top{i}_pattern")
        if not isinstance(comm, str):
            break
        out.append(TopProc(comm, number(chars, f"top{i}_cpu") or 0.0,
                           pat if isinstance(pat, str) else ""))
    return tuple(out)


@dataclass(frozen=True)
class Shape:
    ncpu: int
    cpu: float | None  # CPUs the workload used
    busy: int | None  # processes using at least 5% of a CPU
    runnable: float | None
    forks_per_s: float | None
    psi_cpu: float | None
    runq_p99_us: float | None  # from tier 2's run-queue probe, when observation ran it
    exits_long_comm: str | None  # the long job the process accounting found, if one stood out
    top: tuple[TopProc, ...]
    text: str  # the description, lower case
    goals: frozenset[str]

    @classmethod
    def of(cls, p: WorkloadProfile) -> Shape:
        c = p.characteristics
        ncpu = number(c, "ncpu")
        busy = number(c, "busy_procs")
        return cls(ncpu=max(1, min(4096, int(ncpu))) if ncpu else 1,
                   cpu=number(c, "scope_cpu"),
                   busy=None if busy is None else max(0, min(1 << 20, int(busy))),
                   runnable=number(c, "runnable"), forks_per_s=number(c, "forks_per_s"),
                   psi_cpu=number(c, "psi_cpu_pct"), runq_p99_us=number(c, "runq_p99_us"),
                   exits_long_comm=_text(c, "exits_long_comm"),
                   top=_top(c),
                   text=p.description.lower(), goals=frozenset(p.goals))

    def says(self, *words: str) -> bool:
        return any(w in self.text for w in words)

    @property
    def idle(self) -> bool:
        return self.says("mostly idle") or (self.cpu is not None and self.cpu < 0.05 * self.ncpu)

    @property
    def hogs(self) -> bool:
        return any(t.pattern == "cpu-bound" for t in self.top) or self.says("cpu-bound", "hog")

    @property
    def sleepers(self) -> bool:
        return any(t.pattern == "interactive" for t in self.top) or self.says(
            "latency-sensitive", "interactive", "sleeper", "wake-up", "wakeup")

    @property
    def contended(self) -> bool:
        return (self.says("oversubscribed", "beside")
                or (self.runnable is not None and self.runnable > self.ncpu)
                or (self.psi_cpu is not None and self.psi_cpu >= 10)
                or (self.runq_p99_us is not None and self.runq_p99_us >= RUNQ_CONTENDED_US)
                or (self.busy is not None and self.busy > self.ncpu)
                or (self.cpu is not None and self.cpu >= 0.7 * self.ncpu and self.busy != 1))

    @property
    def churn(self) -> bool:
        """Many short-lived processes: forks keep coming while the sample runs."""
        return (self.forks_per_s is not None and self.forks_per_s >= 20) or self.says(
            "short-lived", "many short")

    @property
    def build(self) -> bool:
        return self.says("build", "compile") or any(t.comm in BUILD_COMMS for t in self.top)

    @property
    def single(self) -> bool:
        """One task alone (or nothing competing): EEVDF has nothing to reorder."""
        return (self.busy is not None and self.busy <= 1 and not self.churn
                and not self.contended and not self.says("long tail", "long-tail"))

    def long_comm(self) -> str | None:
        """The comm of a long job that stands out: the one the process accounting found
        (tier 2's exits), else the busiest process, CPU-bound, named differently from the
        other busy ones (short jobs of one batch share a name)."""
        if self.exits_long_comm and COMM_RE.match(self.exits_long_comm):
            return self.exits_long_comm
        if not self.top or self.top[0].pattern != "cpu-bound":
            return None
        first, rest = self.top[0], [t for t in self.top[1:] if t.cpu >= 0.05]
        if any(t.comm == first.comm for t in rest) or not COMM_RE.match(first.comm):
            return None
        return first.comm

    @property
    def long_tail(self) -> bool:
        if self.says("long tail", "long-tail", "one long"):
            return True
        # One process stays CPU-bound through the sample while short ones come and go.
        return self.churn and self.long_comm() is not None and not self.build
