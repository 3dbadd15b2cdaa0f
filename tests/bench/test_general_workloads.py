"""The general suite (issue 21): fourteen lab workloads of real programs, each declaring its
own goal. Host-only checks of the registry, the goal lines, the parsers and the held-out
half; two scripts run on the host; and one lab test that runs every g- workload once under
EEVDF in a single boot."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import subprocess
import time
from pathlib import Path

import pytest

from schedcpd.agent.goal import declared
from schedcpd.analysis.feedback import parse_metrics
from schedcpd.analysis.run_profile import START_MARK
from schedcpd.bench import suites
from schedcpd.lab import general_tools as gt
from schedcpd.lab import workloads
from schedcpd.lab.result import GuestResult

NAMES = [w.name for w in gt.SUITE]


def goal_of(stdout: str) -> tuple[str, bool] | None:
    """(metric, lower_is_better) as the agent reads a run's declared goal."""
    g = declared(stdout)
    return (g.metric, g.lower_is_better) if g else None
REPO = Path(__file__).resolve().parents[2]


def test_the_suite_has_at_least_twelve_registered_g_workloads() -> None:
    assert len(NAMES) >= 12 and len(set(NAMES)) == len(NAMES)
    assert suites.get("general").workloads == tuple(NAMES)
    assert sorted(n for n in workloads.WORKLOADS if n.startswith("g-")) == sorted(NAMES)
    for w in gt.SUITE:
        wl = workloads.get(w.name)
        assert w.name.startswith("g-")
        assert (wl.metric, wl.lower_is_better, wl.unit) == (w.metric, w.lower_is_better, w.unit)
        assert wl.marks_start and wl.timeout_s == gt.TIMEOUT_S
        assert w.script_path().is_file()


def test_no_planner_rule_names_a_general_workload() -> None:
    """The suite is for generalisation: nothing in the planner may know these by name."""
    for src in (REPO / "schedcpd" / "agent").rglob("*.py"):
        text = src.read_text()
        for name in NAMES:
            assert name not in text, f"{src} names {name}"


@pytest.mark.parametrize("name", NAMES)
def test_each_script_declares_one_goal_matching_its_registry_entry(name: str) -> None:
    w = gt.BY_NAME[name]
    lines = gt.declared_lines(w)
    assert lines.count("SCHEDCP_GOAL") == 1, lines
    g = declared(lines)
    assert g is not None and (g.metric, g.lower_is_better) == (w.metric, w.lower_is_better)
    assert lines.count("SCHEDCP_GUARD") == len(g.guards)  # every guard line parses
    guards = g.guards
    for gd in guards:
        assert gd.metric != w.metric and 0 < gd.margin < 1
    # A goal on a metric the script never prints would be a goal nobody can meet.
    text = w.script_path().read_text()
    helper = {"sqlite.sh": "sqlite_bench.py", "bursty.sh": "bursty.py",
              "interactive.sh": "http_client.py", "nginx.sh": "wrk_latency.awk"}.get(w.script)
    if helper:
        text += (gt.SCRIPTS / helper).read_text()
    for metric in [w.metric, *(g.metric for g in guards)]:
        assert re.search(rf"\b{metric}\b", text.split(f"goal {w.metric}", 1)[1]), metric


@pytest.mark.parametrize("name", NAMES)
def test_each_parser_reads_its_metric_and_rejects_output_without_it(name: str) -> None:
    wl = workloads.get(name)
    sample = (f"SCHEDCP_GOAL {wl.metric} {'lower' if wl.lower_is_better else 'higher'}\n"
              f"{START_MARK}\nSCHEDCP_METRIC other_metric 3\nSCHEDCP_METRIC {wl.metric} 12.5\n")
    assert wl.parse(sample, 30.0) == 12.5
    assert goal_of(sample) == (wl.metric, wl.lower_is_better)
    with pytest.raises(workloads.WorkloadError, match=wl.metric):
        wl.parse("SCHEDCP_METRIC other_metric 3\nsome output\n", 30.0)
    failed = GuestResult(kernel="k", exit_status=1, timed_out=False, stdout=sample,
                         stderr="boom", wall_s=1.0, total_s=2.0, state_before="",
                         state_during="", state_after="", ops_before="", ops_during="",
                         ops_after="", attached=False, loader_error="", sched_exit=None,
                         dmesg_sched_ext=())
    with pytest.raises(workloads.WorkloadError, match="run failed"):
        wl.measure(failed)


def test_the_held_out_half_is_the_seeded_sample() -> None:
    drawn = random.Random(suites.HELD_OUT_SEED).sample(sorted(NAMES), len(NAMES) // 2)
    assert tuple(drawn) == suites.HELD_OUT
    assert len(suites.HELD_OUT) == len(NAMES) // 2 == len(set(suites.HELD_OUT))
    assert set(suites.HELD_OUT) <= set(suites.get("general").workloads)


def test_the_scripts_parse_and_mark_their_start_as_observation_expects() -> None:
    for sh in sorted(gt.SCRIPTS.glob("*.sh")):
        res = subprocess.run(["sh", "-n", str(sh)], capture_output=True, text=True)
        assert res.returncode == 0, f"{sh.name}: {res.stderr}"
    for py in sorted(gt.SCRIPTS.glob("*.py")):
        compile(py.read_text(), str(py), "exec")
    assert f'echo "{START_MARK}"' in (gt.SCRIPTS / "common.sh").read_text()
    for name in ("bursty.py", "sqlite_bench.py"):
        assert f'print("{START_MARK}"' in (gt.SCRIPTS / name).read_text()


def _left_behind(workdir: Path) -> list[str]:
    """Processes whose working directory is under ``workdir``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "cwd").startswith(str(workdir)):
                    found.append(f"{d.name} {(d / 'cmdline').read_bytes()!r}")
            except OSError:
                continue
    return found


@pytest.mark.parametrize(("script", "args"), [("pipe.sh", ["2000"]),
                                              ("redis.sh", ["2000", "4"])])
def test_a_script_runs_on_the_host_and_leaves_nothing_behind(
        tmp_path: Path, script: str, args: list[str]) -> None:
    res = subprocess.run(["sh", str(gt.SCRIPTS / script), *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-1000:]
    w = next(w for w in gt.SUITE if w.script == script)
    assert goal_of(res.stdout) == (w.metric, w.lower_is_better)
    assert START_MARK in res.stdout.splitlines()
    value = workloads.get(w.name).parse(res.stdout, 0.0)
    assert math.isfinite(value) and value > 0
    assert _left_behind(tmp_path) == []


@pytest.mark.lab
def test_every_general_workload_runs_once_in_the_lab_under_eevdf() -> None:
    from schedcpd.lab import run_steps

    wls = [workloads.get(n) for n in NAMES]
    t0 = time.monotonic()
    results = asyncio.run(run_steps([wl.step(None) for wl in wls]))
    took = time.monotonic() - t0
    lines = [f"general suite, one boot under EEVDF: {took:.0f} s"]
    problems = []
    for wl, r in zip(wls, results, strict=True):
        try:
            value = wl.measure(r)
        except workloads.WorkloadError as exc:
            problems.append(str(exc)[:600])
            continue
        lines.append(f"  {wl.name:14} {wl.metric:18} {value:10.3f} {wl.unit:9} "
                     f"wall {r.wall_s:5.1f} s")
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{wl.name}: {wl.metric} = {value}")
        if goal_of(r.stdout) != (wl.metric, wl.lower_is_better):
            problems.append(f"{wl.name}: goal line {goal_of(r.stdout)}")
        if START_MARK not in r.stdout.splitlines():
            problems.append(f"{wl.name}: no {START_MARK} line")
        if not parse_metrics(r.stdout):
            problems.append(f"{wl.name}: no metrics")
    print("\n".join(lines))
    assert not problems, "\n".join(problems)
