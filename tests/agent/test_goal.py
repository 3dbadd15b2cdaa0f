"""The episode's goal: who states it, how it is parsed, how a candidate is judged by it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedcpd.agent.goal import Goal, GoalError, Guard, declared, judge

SERVER_OUT = """\
SCHEDCP_METRIC p99_ms 12.5
SCHEDCP_METRIC rps 840
SCHEDCP_GOAL p99_ms lower
SCHEDCP_GUARD rps higher 0.05
"""


def test_a_workload_declares_its_goal_and_guards() -> None:
    g = declared(SERVER_OUT)
    assert g == Goal("p99_ms", True, (Guard("rps", False, 0.05),), "workload")
    assert "p99_ms, lower is better" in g.text() and "rps" in g.text()


def test_output_without_a_goal_line_declares_nothing() -> None:
    assert declared("SCHEDCP_METRIC p99_ms 3\nhello\n") is None


def test_a_stray_malformed_line_is_ignored_not_fatal() -> None:
    g = declared("SCHEDCP_GOAL p99_ms sideways\nSCHEDCP_GOAL ops higher\n"
                 "SCHEDCP_GUARD x lower 7\n")
    assert g == Goal("ops", False, (), "workload")


def test_the_request_states_direction_and_guards() -> None:
    g = Goal.of_request({"goal": "higher", "guards": ["p99_ms:lower:0.1"]}, "rps")
    assert g == Goal("rps", False, (Guard("p99_ms", True, 0.1),), "request")
    assert Goal.of_request({}, "rps") is None  # the request said nothing: not its goal


def test_guards_alone_keep_an_inferred_direction() -> None:
    g = Goal.of_request({"guards": ["rps:higher"]}, "p99_ms")
    assert g is not None and g.lower_is_better and g.guards[0].margin == 0.05


@pytest.mark.parametrize("metric,lower", [("makespan_s", True), ("ops_per_s", False),
                                          ("rps", False), ("p99_ms", True)])
def test_inference_from_the_metric_name(metric: str, lower: bool) -> None:
    assert Goal.inferred(metric).lower_is_better is lower


@pytest.mark.parametrize("bad,why", [
    ({"goal": "sideways"}, "direction"),
    ({"goal": "lower", "guards": ["rps"]}, "expected METRIC"),
    ({"goal": "lower", "guards": ["rps:higher:2"]}, "margin"),
    ({"goal": "lower", "guards": ["rps:higher:x"]}, "margin"),
    ({"goal": "lower", "guards": ["bad name:higher"]}, "metric name"),
    ({"goal": "lower", "guards": ["rps:higher\n"]}, "direction"),
    ({"goal": "lower", "guards": "rps:higher"}, "list"),
    ({"goal": "lower", "guards": ["m:lower"]}, "cannot also be a guard"),
    ({"goal": "lower", "guards": [f"g{i}:lower" for i in range(5)]}, "at most"),
])
def test_a_malformed_goal_is_named(bad: dict[str, Any], why: str) -> None:
    with pytest.raises(GoalError, match=why):
        Goal.of_request(bad, "m")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["goal", "guards", "metric"]),
                       st.one_of(st.text(max_size=20), st.lists(st.text(max_size=20)),
                                 st.integers(), st.none(), st.floats())))
def test_any_request_gives_a_goal_none_or_goal_error(options: dict[str, Any]) -> None:
    try:
        g = Goal.of_request(options, "metric_s")
    except GoalError:
        return
    assert g is None or Goal.from_dict(g.to_dict()) == g


def test_round_trip_through_a_dict() -> None:
    g = declared(SERVER_OUT)
    assert g is not None and Goal.from_dict(g.to_dict()) == g


def test_judged_better_by_the_goal_s_direction() -> None:
    g = Goal("rps", False)
    j = judge(g, {"rps": [100, 102, 98, 101]}, {"rps": [150, 149, 152, 151]})
    assert j.better and j.gain == pytest.approx(0.5, abs=0.02)
    j = judge(Goal("rps", True), {"rps": [100, 102, 98, 101]}, {"rps": [150, 149, 152, 151]})
    assert not j.better and j.primary.worse


def test_a_broken_guard_blocks_a_better_primary() -> None:
    g = Goal("p99_ms", True, (Guard("rps", False, 0.05),))
    base = {"p99_ms": [10, 11, 10, 10.5], "rps": [100, 101, 99, 100]}
    cand = {"p99_ms": [5, 5.2, 5.1, 4.9], "rps": [80, 82, 79, 81]}
    j = judge(g, base, cand)
    assert j.primary.better and not j.better and "guard rps" in j.broken[0]
    # Within the margin (2 % fewer requests), the guard holds.
    cand["rps"] = [98, 99, 98, 98.5]
    assert judge(g, base, cand).better


def test_a_guard_that_may_be_broken_holds_the_candidate_back() -> None:
    g = Goal("p99_ms", True, (Guard("rps", False, 0.05),))
    base = {"p99_ms": [10, 11, 10, 10.5], "rps": [100, 60, 140, 100]}
    cand = {"p99_ms": [5, 5.2, 5.1, 4.9], "rps": [90, 50, 130, 85]}  # 10 % lower, noisy
    j = judge(g, base, cand)
    assert j.primary.better and not j.broken and "guard rps" in j.doubtful[0]
    assert not j.better
    # A guard the runs never reported cannot be shown to hold either.
    assert not judge(g, base, {"p99_ms": cand["p99_ms"]}).better
