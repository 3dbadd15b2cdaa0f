"""The circuit breaker's rules, fed sample by sample (pure logic, no kernel needed)."""

from __future__ import annotations

from schedcpd.config import CanaryConfig
from schedcpd.deploy.canary import (
    EJECTED,
    LOADER_DIED,
    REGRESSION,
    CanarySample,
    CircuitBreaker,
)

CFG = CanaryConfig(window_s=10, interval_s=1, regression_threshold=0.1,
                   regression_window_s=3, absolute_floor=0.05)


def sample(t: float, metric: float | None, state: str = "enabled",
           ops: str = "schedcp_x", alive: bool = True) -> CanarySample:
    return CanarySample(t, state, ops, alive, metric)


def feed(b: CircuitBreaker, values: list[float | None], start: float = 1.0) -> list[object]:
    return [b.observe(sample(start + i, v)) for i, v in enumerate(values)]


def test_steady_metric_never_trips_and_the_window_passes() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.20, started=0.0)
    assert feed(b, [0.2, 0.21, 0.19, 0.22, 0.2, 0.2, 0.21, 0.2, 0.2, 0.2]) == [None] * 10
    assert b.passed(10.0) and not b.passed(9.0)


def test_sustained_regression_trips_after_one_window_not_before() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.20, started=0.0)
    out = feed(b, [0.6, 0.6, 0.6])
    assert out == [None, None, None], "less than a window of evidence"
    trip = b.observe(sample(4.0, 0.6))
    assert trip is not None and trip.cause == REGRESSION
    assert "median 0.600" in trip.detail
    assert not b.passed(100.0)


def test_one_noisy_sample_does_not_trip() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.20, started=0.0)
    assert all(t is None for t in feed(b, [0.2, 0.9, 0.2, 0.2, 0.2, 0.9, 0.2, 0.2, 0.2]))


def test_small_absolute_change_near_zero_is_not_a_regression() -> None:
    # +100% of almost nothing stays under the absolute floor.
    b = CircuitBreaker(CFG, "schedcp_x", 0.01, started=0.0)
    assert all(t is None for t in feed(b, [0.02, 0.03, 0.02, 0.03, 0.02, 0.03]))


def test_ejection_trips_at_once_with_the_state() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.2, started=0.0)
    trip = b.observe(sample(1.0, 0.2, state="disabled", ops=""))
    assert trip is not None and trip.cause == EJECTED and "disabled" in trip.detail


def test_another_scheduler_in_its_place_counts_as_ejection() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.2, started=0.0)
    trip = b.observe(sample(1.0, 0.2, ops="schedcp_other"))
    assert trip is not None and trip.cause == EJECTED


def test_dead_loader_trips() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", None, started=0.0)
    trip = b.observe(sample(1.0, None, alive=False))
    assert trip is not None and trip.cause == LOADER_DIED


def test_without_a_baseline_only_ejection_counts() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", None, started=0.0)
    assert all(t is None for t in feed(b, [5.0] * 12))
    assert b.passed(12.0)


def test_a_trip_is_final() -> None:
    b = CircuitBreaker(CFG, "schedcp_x", 0.2, started=0.0)
    first = b.observe(sample(1.0, None, alive=False))
    assert b.observe(sample(2.0, 0.2)) is first
