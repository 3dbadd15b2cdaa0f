"""Tier 2 probes on this host: the CO-RE run-queue probe, perf stat, top, files, bpftrace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from schedcpd.analysis.tier2 import ProbeError
from schedcpd.analysis.tier2.bpftrace import check_program, probe_types, run_bpftrace
from schedcpd.analysis.tier2.files import read_allowed
from schedcpd.analysis.tier2.perfstat import parse_csv, perf_stat
from schedcpd.analysis.tier2.runqlat import hist_percentile, run_queue_latency
from schedcpd.analysis.tier2.top import top_snapshot
from tests.analysis.schema_check import check

SPIN = "import time\nt = time.time()\nwhile time.time() - t < 3: pass"


async def test_runqlat_sees_contention_of_competing_spinners() -> None:
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(3)]
    try:
        await asyncio.sleep(0.2)
        res = await run_queue_latency(1.0)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    check("runqlat", res)
    assert res["samples"] > 50 and res["p99_us"] is not None
    assert res["p99_us"] >= res["p50_us"]
    assert any(c["comm"].startswith("python") and c["runtime_ms"] > 50 for c in res["comms"])


async def test_runqlat_for_one_process_only() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        res = await run_queue_latency(0.5, tgid=proc.pid)
    finally:
        proc.kill()
        proc.wait()
    check("runqlat", res)
    assert {c["comm"] for c in res["comms"]} <= {"python", "python3"}


def test_histogram_percentiles() -> None:
    assert hist_percentile([0, 0, 0], 50) is None
    assert hist_percentile([10, 0, 90], 50) == 8.0  # bucket 2 is [4, 8) us
    assert hist_percentile([99, 1], 99) == 2.0


async def test_perf_stat_and_top() -> None:
    p = await perf_stat(0.3)
    check("perf_stat", p)
    assert p["counters"]["task-clock"] > 0 and p["counters"]["context-switches"] >= 0
    t = await top_snapshot(0.2, rows=10)
    check("top", t)
    assert 0 < len(t["processes"]) <= 10
    with pytest.raises(ProbeError):
        await perf_stat(0)


def test_parse_perf_csv_unsupported_counters() -> None:
    text = "1001.2,msec,task-clock,1,100.00,,\n<not supported>,,cycles,0,100.00,,\n"
    assert parse_csv(text) == {"task-clock": 1001.2, "cycles": None}


def test_file_allowlist(tmp_path: Path) -> None:
    assert "MemTotal" in read_allowed("/proc/meminfo")["text"]
    (tmp_path / "app.log").write_text("hello")
    assert read_allowed(str(tmp_path / "app.log"), workload_dir=str(tmp_path))["text"] == "hello"
    (tmp_path / "escape").symlink_to("/etc/passwd")
    for bad in ("/etc/passwd", "/proc/self/root/etc/passwd", "/proc/self/environ",
                "/proc/1/mem", str(tmp_path / "escape"), "/sys/../etc/passwd", ""):
        with pytest.raises(ProbeError):
            read_allowed(bad, workload_dir=str(tmp_path))
    with pytest.raises(ProbeError, match="workload directory"):
        read_allowed("/proc/loadavg", workload_dir="/")
    big = read_allowed("/proc/self/maps", max_bytes=100)
    assert len(big["text"]) <= 100


def test_bpftrace_program_checks() -> None:
    assert probe_types("t:sched:sched_switch /pid == 1/ { @n = count(); } END { }") == [
        "tracepoint", "END"]
    check_program('tracepoint:sched:sched_wakeup { printf("{%s}\\n", comm); }')
    for bad, why in [("kprobe:do_exit { }", "kprobe"),
                     ("uprobe:/bin/bash:readline { }", "uprobe"),
                     ("k:vfs_read, t:sched:sched_switch { }", "kprobe"),
                     ('BEGIN { system("id"); }', "system"),
                     ('BEGIN { cat("/etc/shadow"); }', "cat"),
                     ("BEGIN { exit(); ", "brace"),
                     ("#include <x.h>\nBEGIN { }", "preprocessor")]:
        with pytest.raises(ProbeError, match=why):
            check_program(bad)


async def test_bpftrace_runs_and_stops_at_its_limit() -> None:
    res = await run_bpftrace("tracepoint:sched:sched_switch { @switches = count(); }", 0.5)
    assert "@switches" in res["output"] and not res["timed_out"]
