"""Tier 3 on this host: known-different conditions differ, identical ones do not."""

from __future__ import annotations

import asyncio

import pytest

from schedcpd.analysis.feedback import (
    Condition,
    FeedbackError,
    LocalRunner,
    observe,
    parse_metrics,
    run_feedback,
)

JOB = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"


class Hogs:
    """Competing CPU hogs, started on enter and killed on exit."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        # Each in its own session, like the job: with autogroup, hogs sharing one session
        # would compete as a single group.
        self.procs = [await asyncio.create_subprocess_exec(
            "sh", "-c", "while :; do :; done", start_new_session=True) for _ in range(self.n)]

    async def stop(self) -> None:
        for p in self.procs:
            p.kill()
            await p.wait()
        self.procs = []


async def test_competing_hogs_make_a_significant_difference() -> None:
    hogs = Hogs(6)
    rep = await run_feedback(LocalRunner(), JOB, Condition("alone"),
                             Condition("6 hogs", hogs.start, hogs.stop), runs=8)
    mk = rep.get("makespan_s")
    assert mk.significant and mk.worse and mk.ratio > 1.5, mk
    assert rep.get("throughput_runs_per_s").worse
    assert (mk.n_baseline, mk.n_candidate) == (8, 8)


async def test_identical_reported_metrics_are_not_significant() -> None:
    # Wall time on this shared host is too noisy for an identical-runs check: that one
    # runs in the quiet lab guest (tests/analysis/test_lab_analysis.py). Here the workload's
    # own metric is identical by construction.
    cmd = "for x in 5 7 6 9 8; do echo SCHEDCP_METRIC wake_us $x; done"
    rep = await run_feedback(LocalRunner(), cmd, Condition("A"), Condition("A again"), runs=5,
                             warmup=0)
    assert not rep.get("wake_us_p50").significant and rep.get("wake_us_p50").ratio == 1.0


async def test_workload_metrics_latency_percentiles() -> None:
    cmd = "for x in 10 12 11 13 500; do echo SCHEDCP_METRIC wake_us $x; done; " \
          "echo SCHEDCP_METRIC ops_per_s 100"
    slow = cmd.replace("10 12 11 13", "40 42 41 43")
    rep = await run_feedback(LocalRunner(), "", Condition("fast", command=cmd),
                             Condition("slow", command=slow), runs=4, warmup=0)
    assert rep.get("wake_us_p50").worse and rep.get("wake_us_p50").ratio > 3
    assert not rep.get("ops_per_s").significant  # 100 both ways
    assert parse_metrics("SCHEDCP_METRIC a 1\nnoise\nSCHEDCP_METRIC b x") == {"a": 1.0}


async def test_failed_runs_are_counted_and_bad_requests_refused() -> None:
    with pytest.raises(FeedbackError, match="runs"):
        await run_feedback(LocalRunner(), "true", Condition("a"), Condition("b"), runs=1)
    with pytest.raises(FeedbackError, match="no metric"):
        await run_feedback(LocalRunner(), "false", Condition("a"), Condition("b"), runs=2)


async def test_observe_compares_windows() -> None:
    level = {"x": 1.0}

    async def window() -> dict[str, float]:
        await asyncio.sleep(0)
        return {"load": level["x"]}

    async def up() -> None:
        level["x"] = 2.0

    async def down() -> None:
        level["x"] = 1.0

    rep = await observe(window, Condition("base"), Condition("cand", up, down), windows=4)
    assert [c.metric for c in rep.comparisons] == ["load"]
    assert rep.get("load").ratio == 2.0 and rep.get("load").worse
