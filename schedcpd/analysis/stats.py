"""Statistics for before/after measurements: medians, bootstrap confidence intervals, ratios.

Every comparison in schedcp (the verifier's performance stage, the feedback tier, the
benchmarks) goes through ``compare``: the machines are noisy, so a candidate is called
better or worse only when the confidence interval of the ratio excludes 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 4000


class StatsError(ValueError):
    """Too few or invalid samples for the statistic asked for."""


def _array(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise StatsError(f"{what}: need at least one sample")
    if not np.all(np.isfinite(a)):
        raise StatsError(f"{what}: samples must be finite numbers")
    return a


def median(values: Sequence[float]) -> float:
    return float(np.median(_array(values, "median")))


def percentile(values: Sequence[float], q: float) -> float:
    if not 0 <= q <= 100:
        raise StatsError(f"percentile {q} is outside [0, 100]")
    return float(np.percentile(_array(values, "percentile"), q))


def bootstrap_ci(values: Sequence[float], level: float = DEFAULT_LEVEL,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median. One sample gives a zero-width interval."""
    a = _array(values, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(a, size=(resamples, a.size), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(meds, tail)), float(np.percentile(meds, 100 - tail))


@dataclass(frozen=True)
class Comparison:
    """A candidate against a baseline on one metric; ratio is candidate / baseline medians."""

    metric: str
    lower_is_better: bool
    baseline_median: float
    candidate_median: float
    ratio: float
    ci_low: float
    ci_high: float
    n_baseline: int
    n_candidate: int
    level: float = DEFAULT_LEVEL

    @property
    def significant(self) -> bool:
        return not self.ci_low <= 1.0 <= self.ci_high

    @property
    def better(self) -> bool:
        """Significantly better in the metric's own direction."""
        return self.ci_high < 1.0 if self.lower_is_better else self.ci_low > 1.0

    @property
    def worse(self) -> bool:
        return self.ci_low > 1.0 if self.lower_is_better else self.ci_high < 1.0

    @property
    def gain(self) -> float:
        """Fractional improvement (0.2 = 20 % better); negative when worse."""
        return 1.0 - self.ratio if self.lower_is_better else self.ratio - 1.0

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return {"metric": self.metric, "lower_is_better": self.lower_is_better,
                "baseline_median": self.baseline_median,
                "candidate_median": self.candidate_median, "ratio": self.ratio,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "level": self.level,
                "n_baseline": self.n_baseline, "n_candidate": self.n_candidate,
                "significant": self.significant, "better": self.better, "worse": self.worse}


def compare(metric: str, baseline: Sequence[float], candidate: Sequence[float], *,
            lower_is_better: bool = True, level: float = DEFAULT_LEVEL,
            resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Comparison:
    """Ratio of medians with a bootstrap interval (both groups resampled independently)."""
    b, c = _array(baseline, "baseline"), _array(candidate, "candidate")
    if np.median(b) <= 0:
        raise StatsError(f"{metric}: the baseline median must be positive for a ratio")
    rng = np.random.default_rng(seed)
    bm = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
    cm = np.median(rng.choice(c, size=(resamples, c.size), replace=True), axis=1)
    ratios = cm / np.where(bm > 0, bm, np.nan)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - level) / 2 * 100
    return Comparison(metric=metric, lower_is_better=lower_is_better,
                      baseline_median=float(np.median(b)), candidate_median=float(np.median(c)),
                      ratio=float(np.median(c) / np.median(b)),
                      ci_low=float(np.percentile(ratios, tail)),
                      ci_high=float(np.percentile(ratios, 100 - tail)),
                      n_baseline=int(b.size), n_candidate=int(c.size), level=level)
