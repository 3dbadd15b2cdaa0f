"""Where schedulers are deployed: this machine's kernel or the lab guest, behind one protocol.

The daemon, the canary and the agent's feedback runs talk to a ``Target`` and never care
which one it is. Both report scheduler state and metrics with the lab's own types.
"""

from __future__ import annotations

from typing import Protocol

from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.result import CommandResult, GuestMetrics, SchedState


class TargetError(RuntimeError):
    """The target cannot be used (no sched_ext, lab not set up) or refused a request."""


class Target(Protocol):
    name: str
    kernel: str  # release of the kernel that runs the schedulers

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def attach(self, load: SchedulerLoad) -> SchedState: ...
    async def detach(self) -> SchedState: ...
    async def sched_state(self) -> SchedState: ...
    async def metrics(self) -> GuestMetrics: ...
    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult: ...
    async def spawn(self, command: str) -> str: ...
    async def poll(self, job: str) -> CommandResult | None: ...
    async def kill(self, job: str) -> None: ...


def make_target(name: str) -> Target:
    if name == "vm":
        from schedcpd.deploy.vm import VMTarget
        return VMTarget()
    if name == "local":
        from schedcpd.deploy.local import LocalTarget
        return LocalTarget()
    raise TargetError(f"unknown target {name!r}: expected local or vm")
