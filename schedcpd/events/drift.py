"""Metric drift: a change-point detector on tier-1 metrics, and a source that samples them.

The detector keeps a robust reference level (median and MAD of recent in-band samples).
A sample is out of band when it is further from the median than the largest of: k
robust standard deviations, a relative tolerance, an absolute floor. A drift is declared
only when samples stay out of band, on the same side, for longer than ``window_s``: a
spike shorter than the window is noise, a shift that lasts is a new regime. The
reference then restarts from the new level, so one shift is reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from schedcpd.analysis.tier1 import parse_stat, read_psi, read_text
from schedcpd.events.episodes import Episode, EpisodeEvent
from schedcpd.events.source import EventSource


@dataclass(frozen=True)
class Drift:
    metric: str
    at: float  # time of the sample that confirmed it
    since: float  # first out-of-band sample
    before: float
    after: float

    @property
    def direction(self) -> str:
        return "up" if self.after > self.before else "down"


class DriftDetector:
    def __init__(self, metric: str, window_s: float = 2.0, *, k: float = 4.0,
                 rel: float = 0.25, floor: float = 0.05, min_ref: int = 5,
                 ref_size: int = 60) -> None:
        if window_s <= 0 or min_ref < 2:
            raise ValueError("window_s must be > 0 and min_ref >= 2")
        self.metric, self.window_s = metric, window_s
        self.k, self.rel, self.floor, self.min_ref = k, rel, floor, min_ref
        self._ref: deque[float] = deque(maxlen=ref_size)
        self._run: list[tuple[float, float]] = []
        self._side = 0

    def level(self) -> float | None:
        return statistics.median(self._ref) if len(self._ref) >= self.min_ref else None

    def _band(self, med: float) -> float:
        mad = statistics.median(abs(x - med) for x in self._ref)
        return max(self.k * 1.4826 * mad, self.rel * abs(med), self.floor)

    def update(self, t: float, x: float) -> Drift | None:
        med = self.level()
        if med is None:
            self._ref.append(x)
            return None
        side = (x > med) - (x < med) if abs(x - med) > self._band(med) else 0
        if side == 0 or (self._run and side != self._side):
            self._run.clear()
            if side == 0:
                self._ref.append(x)
                return None
        self._side = side
        self._run.append((t, x))
        if t - self._run[0][0] < self.window_s:
            return None
        new = [v for _, v in self._run]
        drift = Drift(self.metric, at=t, since=self._run[0][0], before=med,
                      after=statistics.median(new))
        self._ref.clear()
        self._ref.extend(new)
        self._run.clear()
        return drift


Sampler = Callable[[], dict[str, float]]


class SystemMetrics:
    """Machine-wide tier-1 rates between calls: CPU busy fraction, PSI cpu 'some' (%),
    (the share of time some task waited for a CPU: a run-queue latency signal), runnable."""

    def __init__(self) -> None:
        self._prev: tuple[float, int, int, float] | None = None

    def __call__(self) -> dict[str, float]:
        cpus, counters = parse_stat(read_text("/proc/stat"))
        tot = cpus.get("cpu", [0] * 5)
        busy, total = sum(tot) - tot[3] - tot[4], sum(tot)
        psi = read_psi().get("cpu", {}).get("total", 0.0)
        now = time.monotonic()
        out: dict[str, float] = {"runnable": float(counters.get("procs_running", 0))}
        if self._prev is not None:
            t0, b0, n0, p0 = self._prev
            if total > n0:
                out["cpu_busy"] = (busy - b0) / (total - n0)
            out["psi_cpu_pct"] = (psi - p0) / max(1e-3, now - t0) / 1e4
        self._prev = (now, busy, total, psi)
        return out


class ProcessTreeCpu:
    """CPUs used by one process and its children between calls (from /proc/PID/stat)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._prev: tuple[float, int] | None = None
        self._tck = os.sysconf("SC_CLK_TCK")

    def _ticks(self) -> int:
        parts = read_text(f"/proc/{self.pid}/stat").rsplit(")", 1)[-1].split()
        if len(parts) < 15:
            return 0
        # utime stime cutime cstime: the children's share arrives when they are reaped.
        return sum(int(v) for v in parts[11:15])

    def __call__(self) -> dict[str, float]:
        now, ticks = time.monotonic(), self._ticks()
        out = {}
        if self._prev is not None:
            out["cpu"] = (ticks - self._prev[1]) / self._tck / max(1e-3, now - self._prev[0])
        self._prev = (now, ticks)
        return out


class DriftSource(EventSource):
    """Samples ``sampler`` every ``period_s`` and reports each confirmed drift as an episode."""

    def __init__(self, sampler: Sampler | None = None, period_s: float = 0.5,
                 window_s: float = 3.0, **detector_args: float) -> None:
        super().__init__(settle_s=0.0)
        self.sampler = sampler or SystemMetrics()
        self.period_s, self.window_s = period_s, window_s
        self.detector_args = detector_args
        self.detectors: dict[str, DriftDetector] = {}
        self.drifts: list[Drift] = []
        self._task: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            self.observe(time.monotonic(), self.sampler())
            await asyncio.sleep(self.period_s)

    def observe(self, t: float, values: dict[str, float]) -> None:
        for name, x in values.items():
            det = self.detectors.get(name)
            if det is None:
                det = self.detectors[name] = DriftDetector(
                    name, self.window_s, **self.detector_args)  # type: ignore[arg-type]
            d = det.update(t, x)
            if d is not None:
                self.drifts.append(d)
                self.emit(self._episode(d))

    def _episode(self, d: Drift) -> EpisodeEvent:
        wall = d.since + self._wall_offset
        ep = Episode(kind="drift", name=f"{d.metric} {d.direction} "
                                        f"{d.before:.3g} -> {d.after:.3g}",
                     key=f"drift:{d.metric}:{d.at:.3f}", started_at=wall,
                     detail={"metric": d.metric, "before": f"{d.before:.6g}",
                             "after": f"{d.after:.6g}", "direction": d.direction})
        return EpisodeEvent("start", ep, d.at + self._wall_offset)
