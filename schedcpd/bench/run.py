"""A whole suite: for each workload an episode, then the interleaved measurement.

Results are written after every workload (``bench-<suite>.json``, ``.md`` and the charts),
so a run cut short still leaves what it measured. The episode and the measurement never
overlap: two guests on this machine's two cores would distort both.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schedcpd.bench import report
from schedcpd.bench.episodes import (
    Choice,
    EpisodeSettings,
    costs,
    final_choice,
    first_choice,
    run_episode,
)
from schedcpd.bench.measure import interleaved
from schedcpd.bench.suites import Suite
from schedcpd.lab import workloads


@dataclass(frozen=True)
class BenchSettings:
    rounds: int = 3  # interleaved rounds: each distinct scheduler runs once per round
    episode: EpisodeSettings = field(default_factory=EpisodeSettings)
    # Also measure ljf with no names (its longest-runtime mode) on long-tail batches:
    # what is left when the long job cannot be told apart by its comm.
    unnamed_ljf: bool = False


def machine() -> dict[str, Any]:
    from schedcpd.lab import kernel
    from schedcpd.lab.vm import VMConfig

    vm = VMConfig()
    try:
        release = kernel.current().release
    except kernel.KernelError as exc:
        release = f"unknown ({exc})"
    return {"guest": f"qemu TCG, {vm.cpus} vCPUs, {vm.memory_mb} MiB, -cpu {vm.cpu_model}",
            "guest_kernel": release, "host_cpus": os.cpu_count(),
            "host_kernel": platform.release(), "python": platform.python_version()}


def _choices(rec: dict[str, Any], workload: str, s: BenchSettings) -> dict[str, Choice]:
    out = {"first": first_choice(rec), "final": final_choice(rec)}
    if s.unnamed_ljf and workload.startswith("lt-"):
        out["ljf_unnamed"] = Choice("ljf", {})
    return out


async def bench_workload(name: str, s: BenchSettings, log_dir: Path,
                         say: Callable[[str], None]) -> dict[str, Any]:
    wl = workloads.get(name)
    wl.command()  # inputs are generated (and cached) before any guest boots
    t0 = time.monotonic()
    say(f"{name}: episode (max {s.episode.iterations} iterations, "
        f"{s.episode.feedback_runs} runs before and after)")
    full = await run_episode(name, s.episode, log_dir, say)
    ep = costs(full)
    rec = full.get("record") or {}
    choices = _choices(rec, name, s)
    say(f"{name}: episode {ep['state']} in {time.monotonic() - t0:.0f} s ({ep['stop_reason']}); "
        f"first {choices['first'].label()}, final {choices['final'].label()}")
    t1 = time.monotonic()
    got = await interleaved(name, choices, s.rounds)
    for f in got.failures:
        say(f"  failed: {f[:300]}")
    out = report.analyse(wl.metric, wl.lower_is_better, got.values, choices, got.lower_bounds)
    out["total_cpu_s"] = got.total_cpu
    out["episode"] = ep
    out["failures"] = got.failures
    out["measure_s"] = round(time.monotonic() - t1, 1)
    out["description"] = wl.description
    for role in choices:
        r = out[role]
        say(f"  {role:12s} {r['label']}: {r.get('verdict')}"
            + (f", ratio {r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
               if "ratio" in r else ""))
    return out


def write(result: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = result["suite"]
    js, md = out_dir / f"bench-{suite}.json", out_dir / f"bench-{suite}.md"
    js.write_text(json.dumps(result, indent=1, default=str) + "\n")
    md.write_text(report.markdown(result))
    return [js, md, *report.charts(result, out_dir)]


def _previous(suite: Suite, out_dir: Path) -> dict[str, Any]:
    """The suite's earlier result in ``out_dir``, to go on from (``--resume``)."""
    try:
        old: dict[str, Any] = json.loads((out_dir / f"bench-{suite.name}.json").read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old.get("workloads"), dict) else {}


async def run_suite(suite: Suite, names: list[str], s: BenchSettings, out_dir: Path,
                    say: Callable[[str], None], resume: bool = False) -> dict[str, Any]:
    """Every named workload of ``suite``; with ``resume``, those already in the suite's
    results are kept and not run again (a long suite can be run in parts)."""
    t0 = time.monotonic()
    result: dict[str, Any] = {
        "suite": suite.name, "paper": suite.paper,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "settings": asdict(s), "workloads": {}, "summary": {}}
    spent = 0.0
    if resume and (old := _previous(suite, out_dir)):
        result["workloads"] = {n: w for n, w in old["workloads"].items() if n in names}
        result["started"] = old.get("started", result["started"])
        spent = float(old.get("wall_s") or 0.0)
        say(f"resuming: {', '.join(result['workloads']) or 'nothing'} already measured")
    for name in names:
        if name in result["workloads"]:
            continue
        try:
            w = await bench_workload(name, s, out_dir / "logs", say)
            w["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            result["workloads"][name] = w
        except (RuntimeError, TimeoutError, OSError) as exc:
            say(f"{name}: FAILED: {exc}")
            result.setdefault("failed", {})[name] = str(exc)
        result["summary"] = report.summarize(result["workloads"], suite.target_gain)
        result["wall_s"] = round(spent + time.monotonic() - t0, 1)
        write(result, out_dir)
    result["summary"] = report.summarize(result["workloads"], suite.target_gain)
    result["wall_s"] = round(spent + time.monotonic() - t0, 1)
    return result
