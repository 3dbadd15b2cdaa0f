"""The tray's state model: what the icon and the menu show for the daemon's properties,
proposals and signals, and how the history splits (pure: no bus, no Qt)."""

from __future__ import annotations

import time
from typing import Any

from schedcpd.tray.model import (
    DaemonSnapshot,
    chart_bounds,
    history_view,
    icon_state,
    notification_for,
    present,
    when_text,
)

NOW = time.mktime((2026, 5, 4, 12, 0, 0, 0, 0, -1))


def snap(**props: Any) -> DaemonSnapshot:
    s = DaemonSnapshot(bus="system")
    s.set_properties({"State": "idle", "Mode": "ask", "ActivePolicy": "",
                      "ActiveSince": 0.0, "PendingProposals": 0, "LastError": "", **props})
    return s


def test_offline_until_the_daemon_answers() -> None:
    s = DaemonSnapshot(bus="system")
    pr = present(s, NOW)
    assert pr.icon == "offline" and not pr.can_act and not pr.can_rollback
    assert "system bus" in pr.tooltip and pr.mode == ""


def test_each_daemon_state_is_its_icon() -> None:
    for state in ("idle", "optimizing", "deployed", "rolled_back", "error"):
        assert icon_state(snap(State=state)) == state
    assert icon_state(snap(State="something new")) == "idle"


def test_a_waiting_proposal_shows_even_when_state_says_idle() -> None:
    # After a daemon restart State starts idle while a proposal still waits.
    assert icon_state(snap(State="idle", PendingProposals=1)) == "proposal_waiting"
    assert icon_state(snap(State="deployed", PendingProposals=2)) == "proposal_waiting"
    # ...but an error is shown first.
    assert icon_state(snap(State="error", PendingProposals=1)) == "error"


def test_active_policy_and_since_when() -> None:
    pr = present(snap(State="deployed", ActivePolicy="fifo", ActiveSince=NOW - 125), NOW)
    assert pr.active == "fifo since 11:57:55 (2 min ago)" and pr.can_rollback
    assert pr.title == "schedcp: deployed"
    assert "active: fifo since" in pr.tooltip
    idle = present(snap(), NOW)
    assert idle.active == "kernel default scheduler" and not idle.can_rollback
    assert when_text(NOW - 3 * 86400, NOW).startswith("2026-05-01 12:00 (3 d ago")


def test_properties_changed_and_proposals() -> None:
    s = snap()
    assert not s.apply_changed({"State": "proposal_waiting"})
    assert s.apply_changed({"PendingProposals": 1})  # the proposals are listed again
    s.set_proposals([
        {"id": "a1", "policy": "fifo", "params": {"slice_us": 5000, "a": "b"},
         "status": "pending", "rationale": "long tail", "created_at": NOW},
        {"id": "old", "policy": "vtime", "status": "deployed", "params": {}},
    ])
    pr = present(s, NOW)
    assert [p.id for p in pr.proposals] == ["a1"]
    assert pr.proposals[0].label == "fifo (a=b, slice_us=5000)"
    assert pr.icon == "proposal_waiting" and "1 proposal(s) waiting" in pr.tooltip
    s.apply_changed({"Unknown": 1, "State": "deployed", "PendingProposals": 0})
    s.set_proposals([])
    assert "Unknown" not in s.properties and present(s, NOW).icon == "deployed"


def test_error_shows_the_last_error_only_in_the_error_state() -> None:
    pr = present(snap(State="error", LastError="verifier: starvation"), NOW)
    assert pr.error == "verifier: starvation" and "error: verifier" in pr.tooltip
    assert present(snap(State="idle", LastError="old"), NOW).error == ""


def test_notifications_for_proposals_and_rollbacks_only() -> None:
    n = notification_for("ProposalCreated", {"id": "x", "policy": "fifo", "params": {},
                                             "status": "pending", "rationale": "why"})
    assert n is not None and n.summary == "schedcp proposes fifo" and "why" in n.body
    # auto mode approves at once: nothing waits for the user
    assert notification_for("ProposalCreated", {"policy": "fifo", "status": "approved"}) is None
    rb = notification_for("RolledBack", {"from": "fifo", "to": "default",
                                         "cause": "regression"})
    assert rb is not None and rb.urgency == 2 and "default scheduler" in rb.body
    asked = notification_for("RolledBack", {"from": "fifo", "to": "ljf", "cause": "requested"})
    assert asked is not None and asked.urgency == 1 and "now running ljf" in asked.body
    for quiet in ("PolicyDeployed", "CanaryPassed", "EpisodeFinished", "WorkloadDetected"):
        assert notification_for(quiet, {}) is None


def test_history_without_run_entries() -> None:
    entries = [
        {"kind": "deployment", "id": 2, "policy": "fifo", "params": {}, "state": "active",
         "cause": "", "baseline": 0.01, "started_at": NOW - 10, "ended_at": ""},
        {"kind": "deployment", "id": 1, "policy": "ljf", "params": {"long_comms": "awk"},
         "state": "rolled_back", "cause": "regression", "baseline": "",
         "started_at": NOW - 100, "ended_at": NOW - 50},
        {"kind": "audit", "id": 7, "at": NOW, "action": "approved", "actor": "uid 0"},
        {"kind": "episode", "id": "e1"},  # kinds the view does not know are left out
    ]
    v = history_view(entries)
    assert v.runs == ()
    assert [d.id for d in v.deployments] == [2, 1]
    assert v.deployments[1].params == "long_comms=awk" and v.deployments[1].baseline is None
    assert v.deployments[0].ended_at is None and len(v.audit) == 1


def test_history_run_entries_before_after_and_chart_bounds() -> None:
    runs = [
        {"kind": "run", "policy": "ljf", "metric": "makespan_s", "baseline_value": 10.0,
         "value": 8.0, "ratio": 0.8, "ci_low": 0.75, "ci_high": 0.86, "created_at": NOW},
        {"kind": "run", "policy": "fifo", "metric": "p99_wakeup_us", "baseline_value": 100,
         "value": 130, "created_at": NOW - 60},  # no ratio given: after / before
        {"kind": "run", "policy": "x", "created_at": NOW - 30},  # numbers missing
    ]
    v = history_view(runs)
    assert [r.policy for r in v.runs] == ["fifo", "x", "ljf"]  # oldest first
    assert v.runs[0].ratio == 1.3 and v.runs[1].ratio is None
    lo, hi = chart_bounds(v.runs)
    assert lo < 0.75 and hi > 1.3
    assert chart_bounds(()) == (0.95, 1.05)
