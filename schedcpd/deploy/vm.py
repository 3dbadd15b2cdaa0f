"""The `vm` target: the lab guest, booted once and kept up while the daemon runs.

The default where the host kernel has no sched_ext. Workloads run in the guest, next to
the scheduler being deployed, so the canary watches the machine the scheduler really runs.
"""

from __future__ import annotations

import asyncio
import logging

from schedcpd.lab.session import GuestPanic, GuestRebooted, LabSession
from schedcpd.lab.vm import LabError

log = logging.getLogger("schedcpd.deploy")


class VMTarget(LabSession):
    name = "vm"

    def __init__(self) -> None:
        super().__init__()
        # Held across a request and the reboot after its panic: the canary's next sample
        # must not read the control port while the new guest's boot is read from it.
        self._gate = asyncio.Lock()

    async def start(self) -> None:
        from schedcpd.deploy.target import TargetError

        try:
            await super().start()  # boots again after a panic while booting
        except LabError as exc:
            await self.close()
            raise TargetError(f"the lab guest did not start: {exc}") from exc

    async def request(self, verb: str, *args: str, timeout_s: float = 60.0) -> dict[str, str]:
        """A guest that panicked is booted again at once; the caller still sees the error
        (what ran there, a scheduler included, is gone) but the next request works."""
        async with self._gate:
            try:
                return await super().request(verb, *args, timeout_s=timeout_s)
            except GuestPanic as exc:
                log.warning("the lab guest panicked; booting it again: %s", exc)
                await self.close()
                await self.start()
                raise GuestRebooted(f"{exc}; the guest was booted again") from exc
