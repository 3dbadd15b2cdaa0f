"""Hand-made workload profiles built the way tier 1 builds them (``tier1.character`` and
``profile.from_tier1``), so the planner is tested on the real field names and words."""

from __future__ import annotations

from typing import Any

from schedcpd import paths
from schedcpd.agent.rules import Library
from schedcpd.analysis.profile import WorkloadProfile, from_tier1
from schedcpd.analysis.tier1 import character
from schedcpd.bpf.policy import load_library

LIBRARY_ROOT = paths.REPO_ROOT / "policies"


def library() -> Library:
    return {spec.name: spec.tunables for spec in load_library(LIBRARY_ROOT)}


def tier1_profile(top: list[tuple[str, float, str]], *, ncpu: int = 2,
                  forks_per_s: float = 0.0, runnable: int = 1, psi_cpu: float = 0.0,
                  goals: tuple[str, ...] = ()) -> WorkloadProfile:
    rows = [{"pid": 100 + i, "comm": comm, "cpu": cpu, "thr": 1, "pat": pat,
             "vcs": 500 if pat == "interactive" else 1, "ics": 10}
            for i, (comm, cpu, pat) in enumerate(top)]
    summary: dict[str, Any] = {
        "ncpu": ncpu, "scope_cpu": round(sum(c for _, c, _ in top), 2),
        "runnable": runnable, "blocked": 0, "ctxsw_per_s": 900,
        "forks_per_s": forks_per_s, "migrations_per_s": 40,
        "busy_procs": sum(c >= 0.05 for _, c, _ in top), "nprocs": len(top) + 20,
        "psi": {"cpu": {"pct": psi_cpu}}, "top": rows}
    summary["character"] = character(summary)
    return from_tier1(summary, goals)


def long_tail() -> WorkloadProfile:
    """One long busy loop among short ones that keep being started (makespan matters)."""
    return tier1_profile([("longjob", 1.0, "cpu-bound"), ("short", 0.3, "cpu-bound"),
                          ("short", 0.3, "cpu-bound")], forks_per_s=35, runnable=8,
                         psi_cpu=60, goals=("minimise makespan",))


def build() -> WorkloadProfile:
    return tier1_profile([("cc1", 0.7, "cpu-bound"), ("cc1", 0.6, "cpu-bound"),
                          ("as", 0.2, "mixed")], forks_per_s=150, runnable=6, psi_cpu=45,
                         goals=("maximise throughput",))


def sleepers_and_hogs() -> WorkloadProfile:
    return tier1_profile([("stress-ng", 0.98, "cpu-bound"), ("stress-ng", 0.95, "cpu-bound"),
                          ("cyclictest", 0.06, "interactive")], runnable=3, psi_cpu=30,
                         goals=("p99 wakeup latency",))


def idle() -> WorkloadProfile:
    return tier1_profile([("sshd", 0.01, "sleeping"), ("cron", 0.0, "sleeping")])


def single_task() -> WorkloadProfile:
    return tier1_profile([("ffmpeg", 1.0, "cpu-bound"), ("sshd", 0.01, "sleeping")])


def fair_pair() -> WorkloadProfile:
    """Two CPU-bound jobs on two CPUs, no goal: nothing EEVDF does badly."""
    return tier1_profile([("solver", 0.99, "cpu-bound"), ("render", 0.98, "cpu-bound")],
                         runnable=2)
