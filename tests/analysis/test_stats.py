"""The comparison every before/after decision rests on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedcpd.analysis.stats import StatsError, bootstrap_ci, compare, median, percentile


def test_clearly_faster_candidate_is_better_and_the_interval_excludes_one() -> None:
    rng = np.random.default_rng(1)
    base = list(10 + rng.normal(0, 0.3, 12))
    cand = list(7 + rng.normal(0, 0.3, 12))
    c = compare("makespan_s", base, cand)
    assert c.better and c.significant and not c.worse
    assert c.ci_low <= c.ratio <= c.ci_high < 1.0
    assert math.isclose(c.gain, 1 - c.ratio)
    assert (c.n_baseline, c.n_candidate) == (12, 12)


def test_same_distribution_is_not_called_better_or_worse() -> None:
    rng = np.random.default_rng(2)
    base = list(10 + rng.normal(0, 1.0, 10))
    cand = list(10 + rng.normal(0, 1.0, 10))
    c = compare("makespan_s", base, cand)
    assert not c.significant and not c.better and not c.worse


def test_direction_follows_the_metric() -> None:
    c = compare("throughput", [100, 101, 99, 100], [150, 151, 149, 150], lower_is_better=False)
    assert c.better and c.gain == pytest.approx(0.5)
    c = compare("latency", [100, 101, 99, 100], [150, 151, 149, 150], lower_is_better=True)
    assert c.worse and c.gain == pytest.approx(-0.5)


def test_one_sample_gives_a_zero_width_interval() -> None:
    assert bootstrap_ci([3.0]) == (3.0, 3.0)


@pytest.mark.parametrize("bad", [[], [float("nan")], [1.0, float("inf")]])
def test_bad_samples_are_refused(bad: list[float]) -> None:
    with pytest.raises(StatsError):
        median(bad)
    with pytest.raises(StatsError):
        compare("m", [1.0], bad)


def test_zero_baseline_cannot_make_a_ratio() -> None:
    with pytest.raises(StatsError, match="positive"):
        compare("m", [0.0, 0.0], [1.0])


def test_percentile_range_is_checked() -> None:
    with pytest.raises(StatsError):
        percentile([1.0], 101)


@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=30))
def test_interval_lies_within_the_samples(values: list[float]) -> None:
    lo, hi = bootstrap_ci(values, resamples=200)
    assert min(values) - 1e-9 <= lo <= hi <= max(values) + 1e-9
