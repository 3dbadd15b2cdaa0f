"""The canary's circuit breaker: watch a freshly attached scheduler and decide to roll back.

Pure logic, fed one sample at a time, so every rule is tested without a kernel. It trips
when the kernel ejected the scheduler, when the loader holding it died, or when the tracked
metric (lower is better) stayed worse than the pre-deployment baseline by more than the
threshold for a whole regression window. A scheduler that survives the canary window
without tripping becomes the last known good.

"Worse for a whole window" is judged on the median of the samples in the window, so one
noisy sample neither trips the breaker nor resets a real regression.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from schedcpd.config import CanaryConfig

EJECTED, LOADER_DIED, REGRESSION, REQUESTED = "ejected", "loader_died", "regression", "requested"


@dataclass(frozen=True)
class CanarySample:
    t: float  # seconds, any monotonic clock
    state: str  # /sys/kernel/sched_ext/state
    ops: str
    loader_alive: bool
    metric: float | None  # the tracked metric at t; None when it could not be read


@dataclass(frozen=True)
class Trip:
    cause: str
    detail: str


class CircuitBreaker:
    def __init__(self, cfg: CanaryConfig, ops: str, baseline: float | None, started: float):
        self.cfg = cfg
        self.ops = ops
        self.baseline = baseline
        self.started = started
        self._window: deque[tuple[float, float]] = deque()
        self._first_metric_at: float | None = None
        self.tripped: Trip | None = None
        self.samples = 0

    def limit(self) -> float | None:
        """The metric value above which the candidate counts as worse."""
        if self.baseline is None:
            return None
        return max(self.baseline * (1 + self.cfg.regression_threshold),
                   self.baseline + self.cfg.absolute_floor)

    def observe(self, s: CanarySample) -> Trip | None:
        if self.tripped:
            return self.tripped
        self.samples += 1
        self.tripped = self._judge(s)
        return self.tripped

    def _judge(self, s: CanarySample) -> Trip | None:
        if s.state != "enabled" or (s.ops and s.ops != self.ops):
            return Trip(EJECTED, f"sched_ext is {s.state!r} running {s.ops or 'nothing'!r}, "
                                 f"expected {self.ops!r}")
        if not s.loader_alive:
            return Trip(LOADER_DIED, "the loader holding the scheduler exited")
        limit = self.limit()
        if limit is None or s.metric is None:
            return None
        if self._first_metric_at is None:
            self._first_metric_at = s.t
        self._window.append((s.t, s.metric))
        while self._window[0][0] < s.t - self.cfg.regression_window_s:
            self._window.popleft()
        if s.t - self._first_metric_at < self.cfg.regression_window_s:
            return None  # not yet a whole window of evidence
        med = statistics.median(v for _, v in self._window)
        if med <= limit:
            return None
        return Trip(REGRESSION, f"{self.cfg.metric} stayed above {limit:.3f} (baseline "
                                f"{self.baseline:.3f}, threshold "
                                f"{self.cfg.regression_threshold:.0%}) for "
                                f"{self.cfg.regression_window_s:.1f} s: median {med:.3f}")

    def passed(self, now: float) -> bool:
        """Survived the whole canary window: the scheduler is now the last known good."""
        return self.tripped is None and now - self.started >= self.cfg.window_s
