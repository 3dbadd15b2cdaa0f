"""The benchmark's maths and bookkeeping, without a lab: choices taken from an episode
record, the interleaving order, ratios and verdicts, the suite summary, table and charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schedcpd.bench import report, suites
from schedcpd.bench.episodes import EEVDF, Choice, costs, final_choice, first_choice
from schedcpd.bench.measure import distinct, rotated_order
from schedcpd.lab import longtail_tools


def _it(n: int, policy: str, outcome: str, ratio: float | None,
        params: dict[str, Any] | None = None) -> dict[str, Any]:
    fb = None if ratio is None else {"ratio": ratio, "lower_is_better": True}
    return {"n": n, "plan": {"action": "configure", "policy": policy, "params": params or {}},
            "deployed": policy, "params": params or {}, "outcome": outcome, "feedback": fb,
            "seconds": 10.0 * n, "workload_s": 30.0,
            "attempts": [{"seconds": 4.0}, {"seconds": 1.5}]}


def test_first_choice_is_iteration_one_and_final_the_best_improvement() -> None:
    rec = {"iterations": [_it(1, "batch", "no_gain", 0.97),
                          _it(2, "ljf", "improved", 0.74, {"long_comms": "gzip_large"}),
                          _it(3, "ljf", "improved", 0.81, {"long_comms": "gzip"})]}
    assert first_choice(rec) == Choice("batch")
    assert final_choice(rec) == Choice("ljf", {"long_comms": "gzip_large"})


def test_no_improvement_means_eevdf_and_a_refused_first_plan_too() -> None:
    refused = _it(1, "fifo", "rejected", None)
    refused["deployed"] = ""
    rec = {"iterations": [refused, _it(2, "batch", "regressed", 1.2)]}
    assert first_choice(rec) == Choice(EEVDF)
    assert final_choice(rec) == Choice(EEVDF)
    assert first_choice({"iterations": []}) == Choice(EEVDF)


def test_costs_sum_control_plane_time_and_verifier_time_per_iteration() -> None:
    full = {"state": "deployed", "record": {
        "stop_reason": "iteration limit (2)",
        "iterations": [_it(1, "ljf", "improved", 0.8), _it(2, "batch", "no_gain", 1.0)],
        "usage": {"wall_s": 200.0, "llm_calls": 4, "prompt_tokens": 1000,
                  "completion_tokens": 250}}}
    c = costs(full)
    assert [it["control_plane_s"] for it in c["iterations"]] == [10.0, 20.0]
    assert c["iterations"][0]["verify_s"] == 5.5
    assert c["control_plane_s"] == 30.0
    assert (c["llm_calls"], c["tokens"], c["wall_s"]) == (4, 1250, 200.0)


def test_a_failed_episode_reports_why_it_failed() -> None:
    full = {"state": "failed", "detail": "LabError: the workload timed out after 300 s",
            "record": {"stop_reason": "", "iterations": []}}
    assert costs(full)["stop_reason"] == "LabError: the workload timed out after 300 s"
    assert costs({"state": "failed", "detail": "x", "record": {"stop_reason": "limit"}})[
        "stop_reason"] == "limit"


def test_rotated_order_runs_each_once_per_round_in_a_new_order() -> None:
    order = rotated_order(["a", "b", "c"], 4)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert all(order.count(x) == 4 for x in "abc")


def test_identical_choices_are_measured_once() -> None:
    same = Choice("ljf", {"long_comms": "gzip_large"})
    got = distinct({"first": same, "final": Choice("ljf", {"long_comms": "gzip_large"}),
                    "other": Choice(EEVDF)})
    assert list(got) == [EEVDF, same.label()]


def test_analyse_ratios_verdicts_and_the_lower_bound() -> None:
    ljf = Choice("ljf", {"long_comms": "gzip_large"})
    bad = Choice("fifo")
    values = {EEVDF: [20.0, 21.0, 19.5, 20.5], ljf.label(): [15.0, 15.2, 14.9, 15.1],
              bad.label(): [26.0, 27.0, 25.5, 26.5]}
    w = report.analyse("makespan_s", True, values, {"first": bad, "final": ljf},
                       lower_bounds={EEVDF: [14.0, 14.2, 13.8], ljf.label(): [12.0]})
    assert w["final"]["verdict"] == "better" and w["final"]["ratio"] == pytest.approx(
        15.05 / 20.25)
    assert w["final"]["gain"] == pytest.approx(1 - 15.05 / 20.25)
    assert w["first"]["verdict"] == "REGRESSION" and w["first"]["ratio"] > 1.2
    assert w["vs_lower_bound"]["final"] == pytest.approx(15.05 / 14.0)
    assert w["vs_lower_bound"]["eevdf"] == pytest.approx(20.25 / 14.0)
    assert w["lower_bound_by_scheduler"][ljf.label()] == 12.0


def test_a_choice_without_samples_is_reported_not_measured() -> None:
    w = report.analyse("makespan_s", True, {EEVDF: [1.0, 1.1]}, {"first": Choice("ljf")})
    assert w["first"]["verdict"].startswith("not measured")
    assert "ratio" not in w["first"]


def _suite_result() -> dict[str, Any]:
    ljf = Choice("ljf", {"long_comms": "x_large"})
    wls = {}
    for name, cand in (("lt-a", [7.0, 7.1, 6.9]), ("lt-b", [10.4, 10.0, 9.8]),
                       ("lt-c", [12.5, 12.8, 12.6])):
        w = report.analyse("makespan_s", True, {EEVDF: [10.0, 10.2, 9.9], ljf.label(): cand},
                           {"first": ljf, "final": ljf}, {EEVDF: [6.5, 6.6]})
        w["episode"] = {"iterations": [{"control_plane_s": 30.0}, {"control_plane_s": 12.0}],
                        "llm_calls": 0, "tokens": 0}
        wls[name] = w
    return {"suite": "batch", "paper": "p", "workloads": wls,
            "summary": report.summarize(wls, 0.20)}


def test_summary_averages_gains_and_names_regressions() -> None:
    s = _suite_result()["summary"]["final"]
    # gains: 1 - 7/10, 1 - 10/10, 1 - 12.6/10 (medians)
    assert s["mean_gain"] == pytest.approx((0.3 + 0.0 - 0.26) / 3, abs=1e-9)
    assert s["better"] == ["lt-a"] and s["regressions"] == ["lt-c"]
    assert s["target_met"] is False


def test_markdown_has_a_row_per_workload_and_shows_regressions(tmp_path: Path) -> None:
    res = _suite_result()
    md = report.markdown(res)
    rows = [ln for ln in md.splitlines() if ln.startswith("| lt-")]
    assert len(rows) == 3
    assert "**worse**" in rows[2] and " better" in rows[0]
    assert "NOT met" in md and "regressions: lt-c" in md
    pngs = report.charts(res, tmp_path)
    assert [p.name for p in pngs] == ["bench-batch.png", "bench-batch-cost.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_the_batch_suite_is_the_papers_eight_workloads() -> None:
    batch = suites.get("batch")
    assert len(batch.workloads) == 8 and batch.target_gain == 0.20
    assert set(batch.workloads) == set(longtail_tools.BY_NAME)
    assert suites.get("latency").workloads == ("latency",)
    with pytest.raises(ValueError, match="known: batch"):
        suites.get("nope")


def test_resume_keeps_measured_workloads_and_runs_none_of_them(tmp_path: Path) -> None:
    import asyncio
    import json

    from schedcpd.bench.run import BenchSettings, run_suite

    old = _suite_result()
    old["wall_s"] = 100.0
    (tmp_path / "bench-batch.json").write_text(json.dumps(old))
    said: list[str] = []
    res = asyncio.run(run_suite(suites.get("batch"), ["lt-a", "lt-c"], BenchSettings(),
                                tmp_path, said.append, resume=True))
    assert list(res["workloads"]) == ["lt-a", "lt-c"]  # lt-b is not asked for
    assert res["summary"]["final"]["regressions"] == ["lt-c"]
    assert res["wall_s"] >= 100.0 and "resuming" in said[0]
