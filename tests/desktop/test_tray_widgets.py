"""The tray's Qt parts on Qt's offscreen platform: the menu built for each state, the
icons, and the history window with and without measured runs (the daemon does not record
run entries yet; their shape is the one the History API is getting)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6 import QtWidgets
from PySide6.QtGui import QColor, QImage

from schedcpd.tray import icons
from schedcpd.tray.history import HistoryWindow
from schedcpd.tray.model import ICON_STATES, DaemonSnapshot, present
from schedcpd.tray.view import TrayView

NOW = time.time()


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    a = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    yield a


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def approve(self, proposal_id: str) -> None:
        self.calls.append(("approve", proposal_id))

    def reject(self, proposal_id: str) -> None:
        self.calls.append(("reject", proposal_id))

    def rollback(self) -> None:
        self.calls.append(("rollback",))

    def set_mode(self, mode: str) -> None:
        self.calls.append(("mode", mode))

    def show_history(self) -> None:
        self.calls.append(("history",))

    def quit(self) -> None:
        self.calls.append(("quit",))

    def menu_changed(self) -> None:
        pass


def snapshot(**props: Any) -> DaemonSnapshot:
    s = DaemonSnapshot(bus="system")
    s.set_properties({"State": "idle", "Mode": "ask", "ActivePolicy": "", "ActiveSince": 0.0,
                      "PendingProposals": 0, "LastError": "", **props})
    return s


def actions(view: TrayView) -> dict[str, Any]:
    return {a.objectName(): a for a in view.menu.actions() if not a.isSeparator()}


def test_menu_offline_offers_only_history_and_quit(app: Any) -> None:
    view = TrayView(Recorder())
    view.render(present(DaemonSnapshot(bus="system"), NOW))
    acts = actions(view)
    assert list(acts) == ["state", "offline", "history", "quit"]
    assert not acts["offline"].isEnabled() and acts["quit"].isEnabled()


def test_menu_with_proposals_triggers_approve_reject_rollback_and_mode(app: Any) -> None:
    rec = Recorder()
    view = TrayView(rec)
    s = snapshot(State="deployed", ActivePolicy="ljf", ActiveSince=NOW - 30,
                 PendingProposals=2)
    s.set_proposals([{"id": f"p{i}", "policy": "fifo", "status": "pending",
                      "rationale": "x" * 100, "params": {}} for i in range(2)])
    view.render(present(s, NOW))
    acts = actions(view)
    assert acts["active"].text().startswith("Active: ljf since ")
    assert acts["proposals"].text() == "Pending proposals (2)"
    assert len(acts["proposal:p0"].text()) <= 64  # long rationales are cut
    acts["approve:p1"].trigger()
    acts["rollback"].trigger()
    mode = acts["mode"].menu()
    modes = {a.objectName(): a for a in mode.actions()}
    assert modes["mode:ask"].isChecked() and not modes["mode:auto"].isChecked()
    modes["mode:observe"].trigger()
    assert rec.calls == [("approve", "p1"), ("rollback",), ("mode", "observe")]
    assert view.tray.toolTip().startswith("schedcp: proposal waiting")


def test_menu_caps_the_proposals_it_lists(app: Any) -> None:
    view = TrayView(Recorder())
    s = snapshot(PendingProposals=7)
    s.set_proposals([{"id": f"p{i}", "policy": "fifo", "status": "pending"}
                     for i in range(7)])
    view.render(present(s, NOW))
    names = list(actions(view))
    assert sum(n.startswith("approve:") for n in names) == 5 and "more" in names


def test_each_state_has_its_own_icon_colour(app: Any) -> None:
    seen = set()
    for state in ICON_STATES:
        img = icons.pixmap(state, 64).toImage()
        c = img.pixelColor(32, 10)  # the disc, above the sign
        seen.add(c.name())
        if state != "offline":
            assert c.name() == QColor(icons.COLOURS[state]).name(), state
        assert not icons.icon(state).isNull()
    assert len(seen) == len(ICON_STATES)


RUNS = [
    {"kind": "run", "policy": "ljf", "metric": "makespan_s", "baseline_value": 12.0,
     "value": 9.6, "ratio": 0.8, "ci_low": 0.74, "ci_high": 0.86, "created_at": NOW - 60},
    {"kind": "run", "policy": "fifo", "metric": "makespan_s", "baseline_value": 12.0,
     "value": 13.2, "ratio": 1.1, "ci_low": 1.02, "ci_high": 1.19, "created_at": NOW - 30},
]
DEPLOYMENTS = [{"kind": "deployment", "id": 1, "policy": "fifo", "params": {},
                "state": "active", "cause": "", "baseline": 0.02, "started_at": NOW - 10,
                "ended_at": ""},
               {"kind": "audit", "id": 3, "at": NOW, "action": "approved", "actor": "uid 0",
                "subject": "abc", "reason": ""}]


def colours(img: QImage) -> set[str]:
    return {img.pixelColor(x, y).name() for x in range(0, img.width(), 2)
            for y in range(0, img.height(), 2)}


def test_history_window_without_runs_says_so(app: Any) -> None:
    w = HistoryWindow(lambda: None)
    w.show()
    w.show_history(DEPLOYMENTS)
    assert w.no_runs.isVisible() and not w.runs_box.isVisible()
    assert w.deployments.rowCount() == 1 and w.audit.rowCount() == 1
    assert w.deployments.item(0, 1).text() == "fifo"
    assert w.summary()["runs"] == 0 and w.summary()["deployments"] == 1
    w.show_error("Failed: no daemon")
    assert "no daemon" in w.status.text()
    w.close()


def test_history_window_charts_runs_before_and_after(app: Any) -> None:
    w = HistoryWindow(lambda: None)
    w.show()
    w.show_history(RUNS + DEPLOYMENTS)
    assert w.runs_box.isVisible() and not w.no_runs.isVisible()
    assert w.runs.rowCount() == 2
    newest = [w.runs.item(0, c).text() for c in range(w.runs.columnCount())]
    assert newest[1:6] == ["fifo", "makespan_s", "12", "13.2", "1.1"], newest
    assert newest[6] == "1.02 .. 1.19"
    assert len(w.chart.runs) == 2
    img = w.chart.grab().toImage()
    seen = colours(img)
    # a better run is drawn green, a worse one orange
    assert "#2e9e4f" in seen and "#d9661c" in seen, sorted(seen)[:20]
    w.close()
