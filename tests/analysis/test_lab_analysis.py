"""Tiers 1, 2 and 3 inside the lab guest (its own kernel, 2 vCPUs): one boot for all.

The guest sees the host's root read-only (chroot), so it runs the host's bare python3 on
this repository, and the probe object and reader built on the host under the cache dir.
"""

from __future__ import annotations

import json
import shlex

import pytest

from schedcpd import paths
from schedcpd.agent.shape import RUNQ_CONTENDED_US
from schedcpd.analysis.feedback import Condition, LabRunner, run_feedback
from schedcpd.analysis.on_target import probe_target
from schedcpd.analysis.tier2.build import reader_binary, runqlat_object
from schedcpd.analysis.tier2.runqlat import summarize
from schedcpd.lab.job import guest_path
from schedcpd.lab.result import CommandResult
from schedcpd.lab.session import LabSession
from tests.analysis.schema_check import check
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab

PY = f"PYTHONPATH={shlex.quote(guest_path(paths.REPO_ROOT))} /usr/bin/python3"
# The job times itself (the guest's uptime, 10 ms steps): a chroot'd exec under TCG costs
# ~50 ms of noise that the command's own wall time would include.
JOB = ("read a _ </proc/uptime; i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; "
       "read b _ </proc/uptime; "
       "awk -v a=$a -v b=$b 'BEGIN { print \"SCHEDCP_METRIC job_s\", b - a }'")


def with_spinners(n: int, command: str) -> str:
    """``command`` while ``n`` busy loops compete for the CPUs, then stop them."""
    start = " ".join(f"(while :; do :; done) & P{k}=$!;" for k in range(n))
    pids = " ".join(f"$P{k}" for k in range(n))
    return f"{start} {command}; rc=$?; kill {pids}; exit $rc"


WITH_HOGS = with_spinners(4, JOB)
LEVEL = 0.999
SPIN_5S = "for k in 1 2 3; do timeout 5 sh -c 'while :; do :; done' & done; wait"


class Guest:
    """The session as the deployment target the daemon's probes run on (named ``vm``)."""

    name = "vm"

    def __init__(self, s: LabSession) -> None:
        self.s = s

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult:
        return await self.s.run(command, timeout_s)


async def test_analysis_in_the_lab_guest() -> None:
    obj, reader = runqlat_object(), reader_binary()
    async with LabSession() as s:
        assert s._tmp is not None
        ours = s._tmp.name  # other engineers' guests may run on this machine too
        # Tier 1 with the guest's bare interpreter, while something runs.
        r = await s.run(with_spinners(1, f"{PY} -m schedcpd.analysis.tier1 --interval 0.5"),
                        120)
        assert r.exit_status == 0, r.stderr
        t1 = json.loads(r.stdout.strip().splitlines()[-1])
        check("tier1", t1)
        assert t1["ncpu"] == 2 and t1["scope_cpu"] > 0.5, t1
        assert t1["top"][0]["pat"] == "cpu-bound"

        # Tier 2: the CO-RE probe built against the host's BTF loads on the guest kernel.
        r = await s.run(with_spinners(3, f"{reader} {obj} 1"), 60)
        assert r.exit_status == 0, r.stderr
        rq = summarize(json.loads(r.stdout.strip().splitlines()[-1]))
        check("runqlat", rq)
        assert rq["samples"] > 10 and rq["p99_us"] >= 1000, rq  # 3 spinners on 2 vCPUs
        # The daemon's probe beside a workload sees it: three spinners wait for the two
        # vCPUs, where the same probe of the idle guest finds nothing waiting.
        busy = await probe_target(Guest(s), "runqlat", 1.0, during=SPIN_5S,
                                  during_timeout_s=60)
        idle = await probe_target(Guest(s), "runqlat", 1.0)
        assert busy["runq_p99_us"] >= RUNQ_CONTENDED_US > idle["runq_p99_us"], (busy, idle)
        r = await s.run(f"{PY} -c 'import json; from schedcpd.analysis.tier2.top import "
                        "_snapshot; print(json.dumps(_snapshot(0.3, 10)))'", 120)
        assert r.exit_status == 0, r.stderr
        check("top", json.loads(r.stdout))

        # Tier 3: four competing hogs against none differ; two identical conditions do not.
        # At 95 % two identical conditions differ "significantly" in one metric of twenty
        # (the test checks two): both comparisons are made at 99.9 %.
        runner = LabRunner(s)
        diff = await run_feedback(runner, JOB, Condition("alone"),
                                  Condition("4 hogs", command=WITH_HOGS), runs=6, level=LEVEL)
        same = await run_feedback(runner, JOB, Condition("alone"), Condition("alone again"),
                                  runs=6, level=LEVEL)
    assert [p for p in lab_processes() if ours in p] == []
    print(json.dumps({"differ": diff.to_dict(), "same": same.to_dict()}))
    job = diff.get("job_s")
    assert job.significant and job.worse and job.ratio > 1.5, job
    assert (job.n_baseline, job.n_candidate) == (6, 6)
    assert diff.get("makespan_s").worse
    assert not same.get("job_s").significant, same.get("job_s")
    assert not same.get("makespan_s").significant, same.get("makespan_s")
    assert diff.failures == {"alone": 0, "4 hogs": 0}
