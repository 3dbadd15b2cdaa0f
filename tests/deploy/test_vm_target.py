"""The `vm` target on the real lab kernel: a guest that panics is booted again, once; a
deployer that loses it while attaching tries once more in the fresh guest, a rollback
that loses it at every try still completes, and a canary notices a reboot it did not
cause."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from schedcpd.analysis.on_target import profile_run
from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.config import CanaryConfig
from schedcpd.daemon.records import DaemonRecords
from schedcpd.deploy.deployer import Deployer, DeployError, DeployRequest
from schedcpd.deploy.vm import VMTarget
from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.result import CommandResult, SchedState
from schedcpd.lab.session import GuestRebooted
from schedcpd.lab.vm import LAB_ATTEMPTS
from schedcpd.store import Store
from tests.support.daemon import wait_for
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab


class PanicsAtNextRun(VMTarget):
    """The real vm target, with a real guest kernel panic (sysrq) before the next ``panics``
    commands it runs."""

    panics = 0

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult:
        if self.panics:
            self.panics -= 1
            await super().run("echo c > /proc/sysrq-trigger", 20)  # raises once rebooted
        return await super().run(command, timeout_s)


async def test_a_panicked_guest_is_booted_again_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    t = PanicsAtNextRun()
    await t.start()
    try:
        first = t.kernel
        # The caller learns that what ran there is gone; the next request finds a new guest.
        with pytest.raises(GuestRebooted, match=r"panicked.*booted again"):
            await t.run("echo c > /proc/sysrq-trigger", 20)
        r = await t.run("echo back", 10)
        assert (r.exit_status, r.stdout) == (0, "back\n")
        assert t.kernel == first
        # Observing changes nothing, so a run it lost to the lab is run once more.
        t.panics = 1
        prof = await profile_run(t, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
                                 0.5, ("minimise makespan",), 60)
        assert prof.goals == ("minimise makespan",) and prof.description
    finally:
        await t.close()
    msgs = [r.getMessage()[:200] for r in caplog.records]
    assert len([m for m in msgs if "booting it again" in m]) == 2, msgs
    assert len([m for m in msgs if "running it once more" in m]) == 1, msgs
    assert lab_processes() == []


class PanicsAtNextAttach(VMTarget):
    """The real vm target, with real guest kernel panics (sysrq) injected at the next
    ``panics`` attaches: the moment the lab's own TCG fault (README, "Guest panics") may
    strike."""

    panics = 0

    async def attach(self, load: SchedulerLoad) -> SchedState:
        if self.panics:
            self.panics -= 1
            await self.run("echo c > /proc/sysrq-trigger", 20)  # raises once rebooted
        return await super().attach(load)


def request(policy: str, tmp_path: Path) -> DeployRequest:
    load = prepare_policy(policy, {}, tmp_path / policy)
    return DeployRequest(policy, {}, load.object_path, "sha-" + policy, "token", "test",
                         "test", judge_metric=False)


async def test_losing_the_guest_mid_attach_is_recorded_and_rolled_back(
        tmp_path: Path) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    store = await Store.open(tmp_path / "state.db")
    records = DaemonRecords(store)
    target = PanicsAtNextAttach()
    await target.start()
    try:
        dep = Deployer(target, records, CanaryConfig(window_s=1.0, interval_s=0.5),
                       lambda *_: None, lambda name, payload: signals.append((name, payload)))
        good = await dep.deploy(request("fifo", tmp_path))

        async def became_good() -> bool | None:
            lg = await records.last_good()
            return True if lg is not None and lg.id == good.id else None
        await wait_for(became_good, 60, 0.2)
        bad = await dep.deploy(request("vtime", tmp_path))
        lost = len(await records.audit_log(action="target_lost"))
        # Lost at every try of the restore: the rollback still completes, to the default.
        target.panics = LAB_ATTEMPTS
        assert await dep.rollback("test: back to the last good", "tester") is None
        name, said = signals[-1]
        assert name == "RolledBack" and (said["from"], said["to"]) == ("vtime", "default")
        was = await records.deployment(bad.id)
        assert was is not None and was.state == "rolled_back"
        tries = (await records.deployments())[:LAB_ATTEMPTS]
        assert [(d.policy, d.state) for d in tries] == [("fifo", "failed")] * LAB_ATTEMPTS
        assert all(d.cause.startswith("target lost:") and "panicked" in d.cause
                   for d in tries)
        lg = await records.last_good()  # the guest's fault, not fifo's: it stays good
        assert lg is not None and lg.id == good.id
        assert len(await records.audit_log(action="target_lost")) == lost + LAB_ATTEMPTS
        r = await target.run("cat /sys/kernel/sched_ext/state", 10)
        assert r.stdout.strip() == "disabled"  # the fresh guest runs the default scheduler
        assert dep.active is None
        # Lost once while attaching a new one: attached again in the fresh guest.
        target.panics = 1
        again = await dep.deploy(request("vtime", tmp_path))
        first = (await records.deployments())[1]
        assert (first.policy, first.state) == ("vtime", "failed") and again.id > first.id
        assert (await target.sched_state()).ops == "schedcp_vtime"

        async def vtime_good() -> bool | None:
            lg = await records.last_good()
            return True if lg is not None and lg.id == again.id else None
        await wait_for(vtime_good, 60, 0.2)
        # Lost at every try: refused, recorded, and the last good is back.
        target.panics = LAB_ATTEMPTS
        with pytest.raises(DeployError, match=f"lost while attaching, {LAB_ATTEMPTS} times"):
            await dep.deploy(request("fifo", tmp_path))
        back, *lost_ones = (await records.deployments())[:LAB_ATTEMPTS + 1]
        assert [(d.policy, d.state) for d in lost_ones] == [("fifo", "failed")] * LAB_ATTEMPTS
        assert (back.policy, back.state) == ("vtime", "good")
        assert (await target.sched_state()).ops == "schedcp_vtime"
        # Lost under someone else's request (a workload that found the guest panicked):
        # the canary sees the uptime gone back and records the scheduler as lost.
        n = len(signals)
        with pytest.raises(GuestRebooted, match="booted again"):
            await target.run("echo c > /proc/sysrq-trigger", 20)

        async def rolled_back() -> dict[str, Any] | None:
            return next((p for name, p in signals[n:] if name == "RolledBack"), None)
        said = await wait_for(rolled_back, 30, 0.2)
        assert (said["cause"], said["from"]) == ("target_lost", "vtime"), said
        assert "the target restarted" in said["reason"]
        gone = await records.deployment(back.id)
        assert gone is not None and gone.state == "failed"
        assert dep.active is None
    finally:
        await target.close()
        await store.close()
    assert lab_processes() == []
