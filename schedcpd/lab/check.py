"""`schedcpctl vm check`: prove the lab end to end with the FIFO policy.

Boot the lab, attach `fifo`, run a CPU workload, detach, power off; pass only if the
scheduler was enabled during the workload and disabled after it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.lab.vm import run_in_guest

WORKLOAD = "stress-ng --cpu 4 --timeout 2s --metrics-brief 2>&1 | tail -n 3"


@dataclass(frozen=True)
class CheckReport:
    kernel: str
    state_during: str
    ops: str
    state_after: str
    wall_s: float
    workload_ok: bool
    problem: str

    @property
    def passed(self) -> bool:
        return not self.problem

    def as_json(self) -> dict[str, object]:
        return {"kernel": self.kernel, "state_during": self.state_during, "ops": self.ops,
                "state_after": self.state_after, "wall_s": round(self.wall_s, 2)}


async def vm_check(timeout_s: float = 60.0) -> CheckReport:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schedcp-check-") as tmp:
        load = prepare_policy("fifo", None, Path(tmp))
        res = await run_in_guest(WORKLOAD, timeout_s=timeout_s, scheduler=load)
    problems = []
    if not res.attached:
        problems.append(f"fifo did not attach: {res.loader_error[-500:]}")
    if res.state_during != "enabled":
        problems.append(f"sched_ext state during the workload was {res.state_during!r}")
    if res.ops_during != "schedcp_fifo":
        problems.append(f"running ops were {res.ops_during!r}, not schedcp_fifo")
    if not res.ok:
        problems.append(f"workload failed (exit {res.exit_status}, timed out {res.timed_out})")
    if res.ejected:
        problems.append(f"the kernel ejected the scheduler: {res.sched_exit}")
    if res.state_after != "disabled":
        problems.append(f"sched_ext state after detach was {res.state_after!r}")
    return CheckReport(kernel=res.kernel, state_during=res.state_during, ops=res.ops_during,
                       state_after=res.state_after, wall_s=time.monotonic() - t0,
                       workload_ok=res.ok, problem="; ".join(problems))
