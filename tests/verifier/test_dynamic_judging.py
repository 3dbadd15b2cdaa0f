"""Judging the mixed workload's reports: starvation by gaps, by a late first run and by a
niced hog's share of the CPU; shares by CPU time, not by work done."""

from __future__ import annotations

import pytest

from schedcpd.verifier.dynamic import QUICK, DynamicSettings, judge_mixed, parse_parts

FAIR = """hog equal1 900 12 3 190
hog equal2 880 15 5 186
hog equal3 910 11 2 192
hog equal4 905 14 4 191
hog niced 300 30 9 63
hog pinned 1200 9 1 250
sleeper sleeper 60 20 2 4
burst short-lived 40 35 6 3
"""


def checks(stdout: str) -> list[str]:
    return [f.check for f in judge_mixed(parse_parts(stdout), QUICK)]


def test_a_fair_run_has_no_findings() -> None:
    assert checks(FAIR) == []


def test_a_hog_that_first_runs_after_the_others_finished_is_starved() -> None:
    # It then ran alone with no gaps at all: only its late start shows the starvation.
    late = FAIR.replace("hog niced 300 30 9 63", "hog niced 2000 2 610 200")
    found = judge_mixed(parse_parts(late), QUICK)
    assert [f.check for f in found] == ["starvation"]
    assert "the niced (nice 5) hog first ran 6.10 s after the release" in found[0].message


def test_long_gaps_are_starvation_for_hogs_and_latency_for_sleepers() -> None:
    gappy = FAIR.replace("hog equal2 880 15 5 186", "hog equal2 800 260 5 170")
    assert checks(gappy) == ["starvation"]
    slow = FAIR.replace("sleeper sleeper 60 20 2 4", "sleeper sleeper 10 230 2 1")
    assert checks(slow) == ["latency"]


def test_a_niced_hog_that_runs_only_in_moments_is_starved_without_a_long_gap() -> None:
    # Counts as in the lab under a strict-priority scheduler (CI saw it pass by gaps alone).
    scraps = FAIR.replace("hog niced 300 30 9 63", "hog niced 14 240 9 3")
    found = judge_mixed(parse_parts(scraps), QUICK)
    assert [f.check for f in found] == ["starvation"]
    assert "the niced (nice 5) hog got 0.03 s of CPU, 0.016 of an equal hog's" \
        in found[0].message
    # Its weight's third of the CPU, or a third of that, is no starvation.
    assert checks(FAIR.replace("hog niced 300 30 9 63", "hog niced 100 30 9 21")) == []


def test_shares_are_judged_by_cpu_time_not_by_work_done() -> None:
    # Under TCG a hog can do half the others' work in the same CPU time: fair.
    slow = FAIR.replace("hog equal1 900 12 3 190", "hog equal1 420 12 3 189")
    assert checks(slow) == []
    # Half the others' work in half their CPU time, and a bit less: unfair.
    short = FAIR.replace("hog equal1 900 12 3 190", "hog equal1 420 12 3 90")
    found = judge_mixed(parse_parts(short), QUICK)
    assert [f.check for f in found] == ["fairness"]
    assert "four equal CPU hogs got [0.90, 1.86, 1.91, 1.92] s of CPU; the least got 0.47" \
        in found[0].message


def test_a_starved_niced_hog_is_reported_once() -> None:
    both = FAIR.replace("hog niced 300 30 9 63", "hog niced 14 400 9 3")
    assert checks(both) == ["starvation"]


def test_missing_parts_and_malformed_lines() -> None:
    broken = FAIR.replace("hog pinned 1200 9 1 250", "hog pinned x 9 1 250") + "garbage\n"
    found = judge_mixed(parse_parts(broken), QUICK)
    assert [f.check for f in found] == ["completion"]
    assert "pinned" in found[0].message


def test_a_run_too_short_to_tell_starvation_is_refused() -> None:
    with pytest.raises(ValueError, match="at least twice"):
        DynamicSettings(mixed_seconds=4, starvation_bound_s=2.5)
