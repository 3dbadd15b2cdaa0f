"""udev: real kernel uevents (a synthetic 'change' on a CPU), and the event vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcpd.events.udev import UdevSource, describe

CPU1 = Path("/sys/devices/system/cpu/cpu1/uevent")


async def test_a_cpu_uevent_burst_is_one_episode() -> None:
    if not CPU1.exists():
        pytest.skip("needs a second CPU")
    async with UdevSource(settle_s=0.2) as src:
        for _ in range(3):  # asks the kernel to re-announce the CPU: harmless, real
            CPU1.write_text("change")
        ev = await src.next(timeout=3)
        more = await src.next(timeout=0.5)
    assert ev is not None and ev.episode.kind == "cpu"
    assert ev.episode.name == "cpu1 change"
    assert more is None and src.seen >= 3


def test_vocabulary() -> None:
    assert describe({"SUBSYSTEM": "cpu", "ACTION": "offline",
                     "DEVPATH": "/devices/system/cpu/cpu3"}) == ("cpu", "cpu3 offline")
    assert describe({"SUBSYSTEM": "power_supply", "ACTION": "change",
                     "POWER_SUPPLY_TYPE": "Mains", "POWER_SUPPLY_ONLINE": "0",
                     "DEVPATH": "/devices/LNXSYSTM:00/ACPI0003:00/power_supply/AC"}) == (
        "power", "AC power off")
    assert describe({"SUBSYSTEM": "power_supply", "ACTION": "change",
                     "POWER_SUPPLY_TYPE": "Battery", "POWER_SUPPLY_STATUS": "Discharging",
                     "DEVPATH": "/x/BAT0"}) == ("power", "battery discharging")
    assert describe({"SUBSYSTEM": "cpu", "ACTION": "change",
                     "DEVPATH": "/devices/system/cpu/cpufreq"}) is None
