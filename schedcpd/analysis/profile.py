"""WorkloadProfile: what the agent and the Policy Repository know about one workload.

A plain frozen dataclass: a description in words, the measured characteristics (flat
numbers and short strings from tier 1, and deeper probes when asked), the goals to
optimize for, and a fingerprint: a short hash of the workload's coarse shape, equal for
two runs of the same kind of workload, so the repository can find what worked before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Value = float | int | str
GOALS = ("minimise makespan", "p99 wakeup latency", "maximise throughput",
         "fairness", "energy")


class ProfileError(ValueError):
    """A profile dictionary is malformed."""


@dataclass(frozen=True)
class WorkloadProfile:
    description: str
    characteristics: Mapping[str, Value] = field(default_factory=dict)
    goals: tuple[str, ...] = ()
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description,
                "characteristics": dict(self.characteristics),
                "goals": list(self.goals), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkloadProfile:
        if not isinstance(d, Mapping) or not isinstance(d.get("description"), str):
            raise ProfileError("a profile needs a 'description' string")
        chars = d.get("characteristics", {})
        if not isinstance(chars, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int | float | str) for k, v in chars.items()):
            raise ProfileError("'characteristics' must map names to numbers or strings")
        goals = d.get("goals", [])
        if not isinstance(goals, list | tuple) or not all(isinstance(g, str) for g in goals):
            raise ProfileError("'goals' must be a list of strings")
        fp = d.get("fingerprint", "")
        if not isinstance(fp, str):
            raise ProfileError("'fingerprint' must be a string")
        return cls(description=d["description"], characteristics=dict(chars),
                   goals=tuple(goals), fingerprint=fp)


def _bucket(x: float) -> int:
    """Coarse log2 bucket: 0, 1, 2-3, 4-7, ... so run-to-run noise keeps the bucket."""
    return 0 if x < 1 else int(x).bit_length()


def fingerprint(character: str, ncpu: int, scope_cpu: float, forks_per_s: float,
                comms: list[str]) -> str:
    shape = {"character": character.split(" (")[0], "ncpu": ncpu,
             "cpu": _bucket(scope_cpu / max(1, ncpu) * 4), "forks": _bucket(forks_per_s),
             "comms": sorted(set(comms))[:3]}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def from_tier1(summary: Mapping[str, Any], goals: tuple[str, ...] = (),
               description: str | None = None) -> WorkloadProfile:
    """A profile from a tier-1 summary (``tier1.sample``)."""
    top = summary.get("top", [])
    psi = summary.get("psi", {})
    chars: dict[str, Value] = {
        "ncpu": int(summary["ncpu"]), "scope_cpu": float(summary["scope_cpu"]),
        "runnable": int(summary["runnable"]), "blocked": int(summary["blocked"]),
        "ctxsw_per_s": int(summary["ctxsw_per_s"]),
        "forks_per_s": float(summary["forks_per_s"]),
        "busy_procs": int(summary["busy_procs"]), "nprocs": int(summary["nprocs"]),
        "psi_cpu_pct": float(psi.get("cpu", {}).get("pct", 0.0)),
        "psi_io_pct": float(psi.get("io", {}).get("pct", 0.0)),
        "psi_mem_pct": float(psi.get("memory", {}).get("pct", 0.0)),
    }
    if summary.get("migrations_per_s") is not None:
        chars["migrations_per_s"] = int(summary["migrations_per_s"])
    for i, row in enumerate(top[:3]):
        chars[f"top{i}_comm"] = str(row["comm"])
        chars[f"top{i}_cpu"] = float(row["cpu"])
        chars[f"top{i}_pattern"] = str(row["pat"])
    comms = [str(r["comm"]) for r in top[:3] if float(r["cpu"]) > 0.05]
    fp = fingerprint(str(summary["character"]), int(summary["ncpu"]),
                     float(summary["scope_cpu"]), float(summary["forks_per_s"]), comms)
    return WorkloadProfile(description=description or str(summary["character"]),
                           characteristics=chars, goals=tuple(goals), fingerprint=fp)


def from_run(out: Mapping[str, Any], goals: tuple[str, ...] = ()) -> WorkloadProfile:
    """A profile from ``run_profile``'s output: tier 1 while the command ran, plus the
    shape of its work from the accounting of every process it ran."""
    prof = from_tier1(out["tier1"], goals)
    ex = out.get("exits")
    if not isinstance(ex, Mapping) or not ex.get("busy"):
        return prof
    chars: dict[str, Value] = dict(prof.characteristics)
    for key in ("busy", "cpu_total_s", "cpu_max_s", "cpu_p50_s"):
        if isinstance(ex.get(key), int | float):
            chars[f"exits_{key}"] = ex[key]
    desc = prof.description
    long_comm = ex.get("long_comm")
    if isinstance(long_comm, str) and isinstance(ex.get("long_share"), int | float):
        chars["exits_long_comm"] = long_comm
        chars["exits_long_share"] = float(ex["long_share"])
        desc += (f"; long tail: one job ({long_comm}) did {ex['long_share']:.0%} of the "
                 f"CPU work of {ex.get('jobs', ex['busy'])} jobs")
    return WorkloadProfile(description=desc, characteristics=chars, goals=prof.goals,
                           fingerprint=prof.fingerprint)
