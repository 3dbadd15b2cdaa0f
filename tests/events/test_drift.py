"""Drift: synthetic series for the detector, and a real process whose load changes."""

from __future__ import annotations

import asyncio
import random
import sys
import time

import pytest

from schedcpd.events.drift import DriftDetector, DriftSource, ProcessTreeCpu, SystemMetrics


def feed(det: DriftDetector, xs: list[float], dt: float = 0.1) -> list[float]:
    return [round(i * dt, 3) for i, x in enumerate(xs) if det.update(i * dt, x) is not None]


def test_steady_noise_is_not_drift() -> None:
    rng = random.Random(1)
    det = DriftDetector("util", window_s=1.0)
    assert feed(det, [0.5 + rng.gauss(0, 0.03) for _ in range(600)]) == []


def test_a_lasting_shift_is_one_drift_after_the_window() -> None:
    rng = random.Random(2)
    xs = [0.2 + rng.gauss(0, 0.02) for _ in range(50)] + \
         [0.8 + rng.gauss(0, 0.02) for _ in range(100)]
    det = DriftDetector("util", window_s=1.0)
    hits = feed(det, xs)
    assert len(hits) == 1 and 5.9 <= hits[0] <= 6.1, hits  # shift at 5.0 s + 1 s window


def test_a_spike_shorter_than_the_window_is_not_drift() -> None:
    xs = [0.2] * 30 + [0.9] * 5 + [0.2] * 30 + [0.0] * 5 + [0.2] * 30
    assert feed(DriftDetector("util", window_s=1.0), xs) == []


def test_bad_detector_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        DriftDetector("x", window_s=0)


SLEEP_THEN_SPIN = "import time; time.sleep(2.5); t = time.time()\nwhile time.time() - t < 3: pass"


async def test_real_load_change_is_detected_and_steady_idle_is_not() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SLEEP_THEN_SPIN)
    t0 = asyncio.get_running_loop().time()
    try:
        async with DriftSource(ProcessTreeCpu(proc.pid), period_s=0.1, window_s=1.0) as src:
            first = await src.next(timeout=2.0)  # the process only sleeps for 2.5 s
            assert first is None, first
            ev = await src.next(timeout=4.0)
            when = asyncio.get_running_loop().time() - t0
    finally:
        await proc.wait()
    assert ev is not None and ev.episode.kind == "drift", "the spin was not noticed"
    assert ev.episode.detail["direction"] == "up"
    assert float(ev.episode.detail["after"]) > 0.2
    assert 3.3 <= when <= 6.0, when  # after the change (2.5 s) plus the window (1 s)


def test_system_metrics_are_rates() -> None:
    m = SystemMetrics()
    assert "cpu_busy" not in m()
    time.sleep(0.2)  # a few jiffies
    second = m()
    assert 0.0 <= second["cpu_busy"] <= 1.0 and second["runnable"] >= 1
