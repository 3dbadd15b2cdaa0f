"""Whatever arrives as a profile, the planner answers with a plan, None, or a clear
PlanningError; never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schedcpd.agent.builtin import Evidence, Plan, PlanningError, decide, profile_from_options
from schedcpd.analysis.profile import GOALS, WorkloadProfile
from tests.agent import profiles as P

LIB = P.library()
KEYS = ["ncpu", "scope_cpu", "busy_procs", "runnable", "forks_per_s", "psi_cpu_pct",
        "nprocs", *(f"top{i}_{f}" for i in range(3) for f in ("comm", "cpu", "pattern"))]
PATTERNS = ["cpu-bound", "interactive", "mixed", "sleeping"]
values = (st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
          | st.booleans() | st.sampled_from(PATTERNS) | st.text(max_size=40))
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4), max_leaves=16)
profile_dicts = st.fixed_dictionaries(
    {"description": st.text(max_size=80) | st.sampled_from(["mostly idle", "long tail"])},
    optional={"characteristics": st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                 values, max_size=12) | json_like,
              "goals": st.lists(st.sampled_from(GOALS) | st.text(max_size=10), max_size=3)
              | json_like,
              "fingerprint": st.text(max_size=20) | json_like})


def valid(plan: Plan | None) -> bool:
    if plan is None:
        return True
    known = {t.name: t for t in LIB[plan.policy]}
    return all(known[k].validate(v) == v for k, v in plan.params.items()) and bool(
        plan.rationale)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["profile", "command", "policy"]),
                       profile_dicts | json_like, max_size=3) | json_like)
def test_options_parse_or_fail_clearly(options: Any) -> None:
    try:
        prof = profile_from_options(options)
    except PlanningError as exc:
        assert str(exc)
        return
    if prof is not None:
        assert prof.fingerprint
        assert valid(decide(prof, LIB, Evidence()))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.dictionaries(st.sampled_from(KEYS), values, max_size=14),
       st.lists(st.sampled_from(GOALS), max_size=3, unique=True))
def test_decide_never_crashes_on_odd_numbers(desc: str, chars: dict[str, Any],
                                             goals: list[str]) -> None:
    # Unchecked profiles too (NaN, negative CPU counts, text where numbers belong).
    assert valid(decide(WorkloadProfile(desc, chars, tuple(goals)), LIB, Evidence()))


def test_no_profile_means_no_plan() -> None:
    assert profile_from_options({}) is None
    assert profile_from_options({"command": "make -j8"}) is None


def test_a_bad_profile_names_the_problem() -> None:
    for bad, words in (({"profile": {"characteristics": {}}}, "description"),
                       ({"profile": {"description": "x", "characteristics": {"a": True}}},
                        "characteristic"),
                       ({"profile": {"description": "   "}}, "description"),
                       ({"profile": "long tail"}, "description"),
                       ("profile", "mapping")):
        try:
            profile_from_options(bad)
        except PlanningError as exc:
            assert words in str(exc), (bad, exc)
        else:
            raise AssertionError(f"accepted {bad!r}")
