"""The `vm` target on the real lab kernel: a guest that panics is booted again, once, and
a deployer that loses it mid-rollback still completes the rollback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.config import CanaryConfig
from schedcpd.daemon.records import DaemonRecords, Deployment
from schedcpd.deploy.deployer import Deployer, DeployError, DeployRequest
from schedcpd.deploy.vm import VMTarget
from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.result import SchedState
from schedcpd.lab.session import SessionError
from schedcpd.store import Store
from tests.support.daemon import wait_for
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab


async def test_a_panicked_guest_is_booted_again_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="schedcpd.deploy")
    t = VMTarget()
    await t.start()
    try:
        first = t.kernel
        # The caller learns that what ran there is gone; the next request finds a new guest.
        with pytest.raises(SessionError, match=r"panicked.*booted again"):
            await t.run("echo c > /proc/sysrq-trigger", 20)
        r = await t.run("echo back", 10)
        assert (r.exit_status, r.stdout) == (0, "back\n")
        assert t.kernel == first
    finally:
        await t.close()
    reboots = [r for r in caplog.records if "booting it again" in r.getMessage()]
    assert len(reboots) == 1, [r.getMessage()[:200] for r in caplog.records]
    assert lab_processes() == []


class PanicsAtNextAttach(VMTarget):
    """The real vm target, with a real guest kernel panic (sysrq) injected at the next
    attach: the moment the lab's own TCG fault (README, "Guest panics") may strike."""

    panic_next = False

    async def attach(self, load: SchedulerLoad) -> SchedState:
        if self.panic_next:
            self.panic_next = False
            await self.run("echo c > /proc/sysrq-trigger", 20)  # raises once rebooted
        return await super().attach(load)


def request(policy: str, tmp_path: Path) -> DeployRequest:
    load = prepare_policy(policy, {}, tmp_path / policy)
    return DeployRequest(policy, {}, load.object_path, "sha-" + policy, "token", "test",
                         "test", judge_metric=False)


async def deploy_through_lab_faults(dep: Deployer, req: DeployRequest) -> Deployment:
    """The lab's own TCG panic may strike any attach (README, "Guest panics"); the deployer
    then refuses with a lost target. For a step that only sets the scene, once more."""
    try:
        return await dep.deploy(req)
    except DeployError as exc:
        if "target was lost" not in str(exc):
            raise
        return await dep.deploy(req)


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
        good = await deploy_through_lab_faults(dep, request("fifo", tmp_path))

        async def became_good() -> bool | None:
            lg = await records.last_good()
            return True if lg is not None and lg.id == good.id else None
        await wait_for(became_good, 60, 0.2)
        bad = await deploy_through_lab_faults(dep, request("vtime", tmp_path))
        lost_before = len(await records.audit_log(action="target_lost"))
        target.panic_next = True
        assert await dep.rollback("test: back to the last good", "tester") is None
        name, said = signals[-1]
        assert name == "RolledBack" and (said["from"], said["to"]) == ("vtime", "default")
        was = await records.deployment(bad.id)
        assert was is not None and was.state == "rolled_back"
        restore = (await records.deployments())[0]
        assert (restore.policy, restore.state) == ("fifo", "failed")
        assert restore.cause.startswith("target lost:") and "panicked" in restore.cause
        lg = await records.last_good()  # the guest's fault, not fifo's: it stays good
        assert lg is not None and lg.id == good.id
        assert len(await records.audit_log(action="target_lost")) == lost_before + 1
        r = await target.run("cat /sys/kernel/sched_ext/state", 10)
        assert r.stdout.strip() == "disabled"  # the fresh guest runs the default scheduler
        assert dep.active is None
        # Lost while attaching a new one: refused, recorded, and the last good is back.
        target.panic_next = True
        with pytest.raises(DeployError, match="target was lost while attaching"):
            await dep.deploy(request("vtime", tmp_path))
        back, lost = (await records.deployments())[:2]
        assert (lost.policy, lost.state) == ("vtime", "failed")
        assert (back.policy, back.state) == ("fifo", "good")
        assert (await target.sched_state()).ops == "schedcp_fifo"
    finally:
        await target.close()
        await store.close()
    assert lab_processes() == []
