"""Hardware changes that matter to a scheduler: AC power and CPU hotplug (pyudev).

Kernel uevents are read straight from netlink (``source="kernel"``), so no udevd is
needed. Events of one kind arriving together (offlining four CPUs, a charger bouncing)
become one episode once they have been quiet for the settle time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from schedcpd.events.episodes import Episode, EpisodeEvent, Kind
from schedcpd.events.source import EventSource, EventSourceError

SUBSYSTEMS = ("power_supply", "cpu")


def describe(props: Mapping[str, str]) -> tuple[Kind, str] | None:
    """Kind and words for one uevent's properties; None when it does not matter here."""
    sub, action = props.get("SUBSYSTEM", ""), props.get("ACTION", "")
    dev = props.get("DEVPATH", "").rsplit("/", 1)[-1]
    if sub == "cpu" and dev.startswith("cpu") and dev[3:].isdigit():
        what = {"online": "online", "offline": "offline", "add": "added",
                "remove": "removed"}.get(action, action)
        return "cpu", f"{dev} {what}"
    if sub == "power_supply":
        kind = props.get("POWER_SUPPLY_TYPE", "")
        online = props.get("POWER_SUPPLY_ONLINE")
        if kind == "Mains" or (online is not None and kind != "Battery"):
            return "power", "AC power " + ("on" if online == "1" else "off")
        if kind == "Battery":
            return "power", f"battery {props.get('POWER_SUPPLY_STATUS', action).lower()}"
    return None


@dataclass
class _Burst:
    first: float
    last: float
    names: list[str] = field(default_factory=list)


class UdevSource(EventSource):
    def __init__(self, settle_s: float = 0.3) -> None:
        super().__init__(settle_s)
        self.settle_s = settle_s
        self.seen = 0
        self._monitor: object | None = None
        self._bursts: dict[Kind, _Burst] = {}

    async def _open(self) -> None:
        import pyudev

        try:
            mon = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
            for sub in SUBSYSTEMS:
                mon.filter_by(sub)
            mon.start()
        except (OSError, ImportError) as exc:
            raise EventSourceError(f"cannot listen to kernel uevents: {exc}") from exc
        self._monitor = mon
        asyncio.get_running_loop().add_reader(mon.fileno(), self._drain)

    async def _close(self) -> None:
        mon = self._monitor
        if mon is not None:
            asyncio.get_running_loop().remove_reader(mon.fileno())  # type: ignore[attr-defined]
            self._monitor = None

    def _drain(self) -> None:
        mon = self._monitor
        while mon is not None and (dev := mon.poll(timeout=0)) is not None:  # type: ignore[attr-defined]
            self.handle(dict(dev.properties), time.monotonic())

    def handle(self, props: Mapping[str, str], now: float) -> None:
        self.seen += 1
        d = describe(props)
        if d is None:
            return
        kind, name = d
        b = self._bursts.setdefault(kind, _Burst(first=now, last=now))
        b.last = now
        if name not in b.names:
            b.names.append(name)

    def _before_tick(self, now: float) -> None:
        for kind, b in list(self._bursts.items()):
            if now - b.last >= self.settle_s:
                del self._bursts[kind]
                ep = Episode(kind=kind, name=", ".join(b.names[:8]),
                             key=f"{kind}:{b.first:.3f}", started_at=b.first + self._wall_offset,
                             detail={"changes": str(len(b.names))})
                self.emit(EpisodeEvent("start", ep, now + self._wall_offset))
