"""The `vm` target on the real lab kernel: a guest that panics is booted again, once."""

from __future__ import annotations

import logging

import pytest

from schedcpd.deploy.vm import VMTarget
from schedcpd.lab.session import SessionError
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
