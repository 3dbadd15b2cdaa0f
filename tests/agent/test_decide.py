"""The built-in planner's pure decision: rules, repository evidence and the bandit."""

from __future__ import annotations

import dataclasses

from schedcpd.agent.bandit import ArmStats, arm_key, stats_from
from schedcpd.agent.builtin import Evidence, decide, explain, search_arms, serves
from schedcpd.agent.rules import profile_params
from schedcpd.agent.shape import Shape
from schedcpd.analysis.profile import WorkloadProfile
from tests.agent import profiles as P

LIB = P.library()
NONE = Evidence()
LJF_NAMED = {"long_comms": "longjob", "long_after_ms": 0}  # what the rules plan for P.long_tail


def test_long_tail_gets_ljf_with_the_long_comm() -> None:
    plan = decide(P.long_tail(), LIB, NONE)
    assert plan is not None
    assert plan.policy == "ljf"
    assert plan.params == LJF_NAMED
    assert "long tail" in plan.rationale.lower() and "longjob" in plan.rationale


def test_long_tail_fed_by_waiting_shells_is_still_a_long_tail() -> None:
    # As measured in the lab guest: the shells that fork the short jobs wait on them and
    # look interactive; the long job and the churn still decide.
    prof = P.tier1_profile([("awk", 0.7, "cpu-bound"), ("sh", 0.15, "interactive"),
                            ("sh", 0.15, "interactive")], forks_per_s=460, runnable=5)
    plan = decide(prof, LIB, NONE)
    assert plan is not None and plan.policy == "ljf"
    assert plan.params == {"long_comms": "awk", "long_after_ms": 0}
    # With a latency goal the same shape is served for latency.
    latency = dataclasses.replace(prof, goals=("p99 wakeup latency",))
    plan = decide(latency, LIB, NONE)
    assert plan is not None and plan.policy == "interactive"


def test_long_tail_in_words_only_gets_ljf_without_a_comm() -> None:
    prof = WorkloadProfile("a batch with a long tail: 39 short jobs and one long one",
                           goals=("minimise makespan",))
    plan = decide(prof, LIB, NONE)
    assert plan is not None and plan.policy == "ljf" and plan.params == {}


def test_short_jobs_sharing_the_top_comm_are_not_a_long_job() -> None:
    # The busiest process shares its name with the others: naming it would make every
    # short job "long".
    prof = P.tier1_profile([("worker", 1.0, "cpu-bound"), ("worker", 0.4, "cpu-bound")],
                           forks_per_s=40, runnable=5)
    assert Shape.of(prof).long_comm() is None
    plan = decide(prof, LIB, NONE)
    assert plan is not None and "long_comms" not in plan.params


def test_parallel_build_gets_a_throughput_policy() -> None:
    plan = decide(P.build(), LIB, NONE)
    assert plan is not None and plan.policy in ("batch", "locality")
    assert "build" in plan.rationale


def test_sleepers_beside_hogs_get_interactive() -> None:
    plan = decide(P.sleepers_and_hogs(), LIB, NONE)
    assert plan is not None and plan.policy == "interactive"


def test_idle_single_task_and_a_fair_pair_keep_the_default() -> None:
    for prof in (P.idle(), P.single_task(), P.fair_pair()):
        d = explain(prof, LIB, NONE)
        assert d.plan is None, prof.description
        assert d.verdict.startswith("keep EEVDF")


def test_idle_with_an_energy_goal_packs_work() -> None:
    prof = dataclasses.replace(P.idle(), goals=("energy",))
    plan = decide(prof, LIB, NONE)
    assert plan is not None and plan.policy == "powersave"


def test_an_antipattern_excludes_the_pair() -> None:
    bad = arm_key("ljf", LJF_NAMED)
    plan = decide(P.long_tail(), LIB, Evidence(excluded={bad: "regressed 1x"}))
    assert plan is not None and plan.policy != "ljf"
    assert "ljf (regressed 1x)" in plan.rationale


def test_every_candidate_excluded_keeps_the_default() -> None:
    d = explain(P.sleepers_and_hogs(), LIB, NONE)
    excluded = {s.key: "failed 1x" for s in d.ranking}
    d2 = explain(P.sleepers_and_hogs(), LIB, Evidence(excluded=excluded))
    assert d2.plan is None and "left out" in d2.verdict


def test_a_policy_missing_from_the_library_is_never_planned() -> None:
    lib = {k: v for k, v in LIB.items() if k != "ljf"}
    plan = decide(P.long_tail(), lib, NONE)
    assert plan is not None and plan.policy == "batch"


def test_neutral_runs_move_the_bandit_to_the_next_candidate() -> None:
    ljf = arm_key("ljf", LJF_NAMED)
    history = stats_from([(ljf, 0.0), (ljf, -0.02), (ljf, 0.01)])
    plan = decide(P.long_tail(), LIB, Evidence(history=history))
    assert plan is not None and plan.policy == "batch"
    assert "No runs on this workload yet" in plan.rationale


def test_measured_gains_keep_the_winner() -> None:
    ljf = arm_key("ljf", LJF_NAMED)
    plan = decide(P.long_tail(), LIB, Evidence(history=stats_from([(ljf, 0.3), (ljf, 0.25)])))
    assert plan is not None and plan.policy == "ljf"
    assert "Measured 2x" in plan.rationale and "+28%" in plan.rationale


def test_gains_of_a_runner_up_overtake_the_rules_favourite() -> None:
    ljf, batch = arm_key("ljf", LJF_NAMED), arm_key("batch", {})
    history = stats_from([(ljf, 0.02), (ljf, 0.03), (batch, 0.3), (batch, 0.35)])
    plan = decide(P.long_tail(), LIB, Evidence(history=history))
    assert plan is not None and plan.policy == "batch"


def test_candidates_that_never_gain_end_in_keep_default() -> None:
    d = explain(P.sleepers_and_hogs(), LIB, NONE)
    history = {s.key: ArmStats(12, 0.0) for s in d.ranking}
    assert decide(P.sleepers_and_hogs(), LIB, Evidence(history=history)) is None


def test_what_gained_before_is_planned_even_without_a_rule() -> None:
    vtime = arm_key("vtime", {"slice_us": 5000})
    assert decide(P.fair_pair(), LIB, NONE) is None
    plan = decide(P.fair_pair(), LIB, Evidence(history=stats_from([(vtime, 0.2)] * 3)))
    assert plan is not None and (plan.policy, plan.params) == ("vtime", {"slice_us": 5000})


def test_a_recommendation_from_similar_workloads_raises_the_prior() -> None:
    loc = arm_key("locality", {})
    plan = decide(P.build(), LIB, Evidence(recommended={loc: 0.4}))
    assert plan is not None and plan.policy == "locality"
    assert "similar workloads gained about 40%" in plan.rationale


def test_a_measured_quiet_run_queue_keeps_the_default_despite_similar_gains() -> None:
    # One busy process and the harness's shell, no rule matches; the run-queue probe says
    # nothing waits. A latency workload that gained from interactive looks alike.
    prof = P.tier1_profile([("awk", 0.66, "mixed"), ("sh", 0.16, "mixed"),
                            ("kworker/1:1", 0.04, "interactive")], runnable=2)
    quiet = dataclasses.replace(prof, characteristics={**prof.characteristics,
                                                       "runq_p99_us": 1024.0})
    similar = Evidence(recommended={arm_key("interactive", {}): 0.37})
    assert decide(prof, LIB, similar) is not None, "without the probe, similar gains count"
    d = explain(quiet, LIB, similar)
    assert d.plan is None and "nothing waits for a CPU" in d.verdict
    waiting = dataclasses.replace(prof, characteristics={**prof.characteristics,
                                                         "runq_p99_us": 8000.0})
    assert decide(waiting, LIB, similar) is not None
    here = Evidence(history=stats_from([(arm_key("interactive", {}), 0.3)] * 3))
    assert decide(quiet, LIB, here) is not None, "a gain measured on this workload wins"


def test_learned_params_the_library_no_longer_accepts_are_dropped() -> None:
    stale = arm_key("vtime", {"slice_us": 10**9})
    assert decide(P.fair_pair(), LIB, Evidence(history=stats_from([(stale, 0.5)] * 3))) is None


def test_the_same_evidence_gives_the_same_plan() -> None:
    ev = Evidence(history=stats_from([(arm_key("batch", {}), 0.1)]))
    assert decide(P.build(), LIB, ev) == decide(P.build(), LIB, ev)


def test_evidence_serves_the_goals_it_was_measured_for() -> None:
    assert serves("makespan_s", ("minimise makespan",))
    assert serves("build_s", ("maximise throughput",))  # the same work, sooner
    assert not serves("makespan_s", ("p99 wakeup latency",))
    assert not serves("p99_wakeup_us", ("minimise makespan", "energy"))
    assert serves("p99_wakeup_us", ("energy", "p99 wakeup latency"))
    assert serves("frames_per_s", ("p99 wakeup latency",))  # no known goal: it counts
    assert serves("makespan_s", ())  # no goal stated: everything counts


# --- the candidates of the measured search: priors order them, nothing is vetoed ----------

def test_the_search_races_every_library_policy_even_where_rules_keep_the_default() -> None:
    for prof in (P.idle(), P.single_task(), P.fair_pair()):
        arms = search_arms(prof, LIB, NONE)
        assert sorted(a.policy for a in arms) == sorted(LIB), prof.description
        assert all("measured to find out" in a.reason for a in arms)


def test_the_rules_favourites_come_first_with_their_settings() -> None:
    arms = search_arms(P.long_tail(), LIB, NONE)
    assert (arms[0].policy, dict(arms[0].params)) == ("ljf", LJF_NAMED)
    assert arms[1].policy == "batch"
    assert [a.policy for a in arms].count("ljf") == 1  # not explored again at defaults
    assert sorted(a.policy for a in arms) == sorted(LIB)


def test_an_antipattern_orders_last_instead_of_vetoing() -> None:
    bad = arm_key("ljf", LJF_NAMED)
    arms = search_arms(P.long_tail(), LIB, Evidence(excluded={bad: "regressed 1x"}))
    assert arms[-1].policy == "ljf" and "regressed 1x" in arms[-1].reason


def test_explored_policies_get_the_long_job_from_the_profile() -> None:
    shape = Shape.of(P.long_tail())
    assert profile_params(shape, LIB, "ljf") == {"long_comms": "longjob"}
    assert profile_params(shape, LIB, "batch") == {}
    arms = search_arms(P.long_tail(), LIB, NONE, ("sjf", "batch"))
    assert {a.policy for a in arms} == {"sjf", "batch"}  # only what was allowed


def test_with_the_episode_s_metric_history_is_compared_goal_to_goal() -> None:
    assert serves("pipe_us", (), "pipe_us")
    assert not serves("rps", (), "pipe_us")  # an unknown metric counts only for itself
    assert serves("build_s", (), "makespan_s")  # one known goal: minimise makespan
    assert not serves("p99_wakeup_us", (), "makespan_s")
