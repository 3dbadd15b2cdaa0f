"""Process accounting (tier 2 ``exits``) and profiling a command's run, on this host: real
processes, the kernel's own acct(2) records."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from schedcpd.analysis.measure import MeasureError, fresh_dir, measured, samples
from schedcpd.analysis.profile import from_run
from schedcpd.analysis.run_profile import START_MARK
from schedcpd.analysis.run_profile import run as run_profile
from schedcpd.analysis.tier2 import exits
from schedcpd.deploy.local import LocalTarget
from schedcpd.lab import workloads

SPIN = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"
EQUAL = " ".join(f"(sh -c '{SPIN.format(n=60000)}') &" for _ in range(6)) + " wait"


def long_tail() -> str:
    """The lab's own long-tail driver, small: 8 short jobs of 50 ms, one of 600 ms."""
    return f"{workloads.driver()} longtail 8 50 600"


def test_comp_t_and_records_decode() -> None:
    assert exits.comp_t(100) == 100.0
    assert exits.comp_t((1 << 13) | 5) == 40.0  # mantissa 5, base-8 exponent 1
    rec = struct.pack("<ccHIIIIIIIHHHHHHHH16s", b"\0", bytes([3]), 0, 0, 0, 0, 4242, 1, 0,
                      struct.unpack("<I", struct.pack("<f", 250.0))[0], 150, 50,
                      0, 0, 0, 0, 0, 0, b"longjob")
    (e,) = exits.parse(rec + b"\0" * 10)  # a torn trailing record is ignored
    assert (e.pid, e.comm, e.cpu_s, e.elapsed_s) == (4242, "longjob", 2.0, 2.5)
    assert exits.parse(rec.replace(bytes([3]), bytes([2]), 1)) == []  # not acct_v3


def test_one_long_job_among_short_ones_is_measured_not_guessed() -> None:
    rc, summary = exits.run(["sh", "-c", long_tail()])
    assert rc == 0
    assert summary["long_comm"] == "longjob", summary
    assert summary["busy"] >= 6 and summary["long_share"] > 0.5


def test_a_long_job_of_several_processes_is_one_job(tmp_path: Path) -> None:
    # Four processes of 2.5 units one after the other in the long job, eight short jobs of
    # one unit: no process does a quarter of the work alone, the long job more than half.
    (tmp_path / "longjob").symlink_to("/bin/sh")
    (tmp_path / "long.sh").write_text(
        f"for k in 1 2 3 4; do {tmp_path}/longjob -c '{SPIN.format(n=250000)}'; done\n")
    unit = SPIN.format(n=100000)
    batch = " ".join(f"(sh -c '{unit}') &" for _ in range(8)) + f" sh {tmp_path}/long.sh & wait"
    rc, summary = exits.run(["sh", "-c", batch])
    assert rc == 0 and summary["jobs"] >= 9, summary
    assert summary["top"][0]["cpu_s"] < 0.25 * summary["cpu_total_s"], summary
    assert summary["long_comm"] == "longjob" and summary["long_share"] > 0.4, summary


def test_parallel_workers_beside_a_few_commands_are_no_long_tail(tmp_path: Path) -> None:
    # The latency workload's shape: six small commands, then one program whose four workers
    # keep both CPUs busy. Most of the work, but in parallel: nothing to start first.
    (tmp_path / "hog").symlink_to("/bin/sh")
    workers = " ".join(f"{tmp_path}/hog -c '{SPIN.format(n=800000)}' &" for _ in range(4))
    (tmp_path / "hogs.sh").write_text(f"{workers} wait\n")
    small = "; ".join(f"sh -c '{SPIN.format(n=30000)}'" for _ in range(6))
    rc, summary = exits.run(["sh", "-c", f"{small}; sh {tmp_path}/hogs.sh"])
    assert rc == 0 and summary["jobs"] >= 7, summary
    assert "long_comm" not in summary and summary["parallel_comm"] == "hog", summary


def test_equal_workers_are_no_long_tail() -> None:
    rc, summary = exits.run(["sh", "-c", EQUAL])
    assert rc == 0 and summary["busy"] >= 6
    assert "long_comm" not in summary, summary


def test_a_run_profile_says_long_tail_in_its_description() -> None:
    out = run_profile(["sh", "-c", long_tail()], 0.3)
    prof = from_run(out, ("minimise makespan",))
    assert "long tail: one job (longjob)" in prof.description
    assert prof.characteristics["exits_long_comm"] == "longjob"
    assert prof.goals == ("minimise makespan",) and prof.fingerprint


def test_tier_1_reads_a_marked_run_from_its_mark_on() -> None:
    # A set-up of 1.5 s (idle here), then the mark and the work: read from the command's
    # start, tier 1 sees the set-up; read from the mark, the work.
    cmd = ["sh", "-c", f"sleep 1.5; echo {START_MARK}; timeout 2 sh -c 'while :; do :; done'"]
    early = from_run(run_profile(cmd, 0.5, lead_s=0.2), ()).characteristics
    late = from_run(run_profile(cmd, 0.5, lead_s=0.2, after_mark=True), ()).characteristics
    assert late["scope_cpu"] - early["scope_cpu"] >= 0.5, (early, late)


def test_a_command_that_never_marks_is_read_when_it_ends() -> None:
    out = run_profile(["sh", "-c", "echo no mark here; exit 3"], 0.1, after_mark=True)
    assert out["exit"] == 3


def test_tier_1_reads_the_run_from_its_lead_on() -> None:
    # Idle for its first 1.5 s, then a spinner: a read from the start sees the idle part
    # (the whole machine is read: the difference is the spinner).
    cmd = ["sh", "-c", "sleep 1.5; timeout 2 sh -c 'while :; do :; done'"]
    early = from_run(run_profile(cmd, 0.5, lead_s=0.0), ()).characteristics
    late = from_run(run_profile(cmd, 0.5, lead_s=1.8), ()).characteristics
    assert late["scope_cpu"] - early["scope_cpu"] >= 0.5, (early, late)


async def test_measuring_a_command_and_a_lab_workload_definition(tmp_path: object) -> None:
    target = LocalTarget()
    m = measured("echo SCHEDCP_METRIC wake_us 12; echo SCHEDCP_METRIC wake_us 14",
                 metric="wake_us_p50")
    assert m.metric == "wake_us_p50" and m.lower_is_better
    assert await samples(target, m, 2) == [13.0, 13.0]
    wall = measured("sleep 0.1")
    assert wall.metric == "makespan_s" and wall.goal == "minimise makespan"
    (t,) = await samples(target, wall, 1)
    assert 0.1 <= t < 5
    # Each run gets a directory of its own: a build starts clean every time.
    (a, b) = await samples(target, measured("test ! -e x && touch x && echo SCHEDCP_METRIC "
                                            "ok 1", metric="ok"), 2)
    assert a == b == 1.0
    assert "mktemp -d" in fresh_dir("make")
    lt = measured("longtail")
    assert lt.metric == workloads.get("longtail").metric and lt.goal == "minimise makespan"
    assert measured("latency").goal == "p99 wakeup latency"
    with pytest.raises(MeasureError, match="reports makespan_s"):
        measured("longtail", metric="p99_wakeup_us")
    with pytest.raises(MeasureError, match="failed"):
        await samples(target, measured("exit 3"), 1)
    with pytest.raises(MeasureError, match="SCHEDCP_METRIC nope"):
        await samples(target, measured("true", metric="nope"), 1)
