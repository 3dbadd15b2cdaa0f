"""The history window: measured runs (before and after, with a small chart of the ratio
and its confidence interval), deployments and the audit log, from the daemon's
``History``. Run entries may not exist (older daemons record none): the window says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QKeySequence, QPainter, QPaintEvent, QPen, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from schedcpd.tray.model import HistoryView, RunRow, chart_bounds, fmt_num, history_view

CHART_RUNS = 12  # the chart shows the latest runs; the table has them all
NO_RUNS = ("No measured runs yet. Each run the daemon measures (its baseline before a "
           "deployment and the value after, with a 95 % confidence interval) shows here.")


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class RatioChart(QWidget):
    """After / before for each run, a dot with its confidence interval; the dashed line is
    1.0 (no change)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: tuple[RunRow, ...] = ()
        self.setMinimumSize(300, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_runs(self, runs: tuple[RunRow, ...]) -> None:
        self.runs = tuple(r for r in runs if r.ratio is not None)[-CHART_RUNS:]
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        font = QFont(self.font())
        font.setPixelSize(11)
        p.setFont(font)
        left, top, right, bottom = 44.0, 22.0, 10.0, 30.0
        w, h = self.width() - left - right, self.height() - top - bottom
        p.setPen(QColor("#333333"))
        p.drawText(QRectF(0, 2, self.width(), 18), int(Qt.AlignmentFlag.AlignCenter),
                   "after / before per run (95 % CI); 1.0 = unchanged")
        if not self.runs or w <= 10 or h <= 10:
            p.drawText(QRectF(left, top, w, h), int(Qt.AlignmentFlag.AlignCenter),
                       "no measured runs")
            p.end()
            return
        lo, hi = chart_bounds(self.runs)

        def y(v: float) -> float:
            return top + h - (v - lo) / (hi - lo) * h

        p.setPen(QPen(QColor("#999999"), 1))
        p.drawLine(QPointF(left, top), QPointF(left, top + h))
        p.drawLine(QPointF(left, top + h), QPointF(left + w, top + h))
        for v in (lo, 1.0, hi):
            p.drawText(QRectF(0, y(v) - 7, left - 4, 14),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                       f"{v:.2f}")
        p.setPen(QPen(QColor("#888888"), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(left, y(1.0)), QPointF(left + w, y(1.0)))
        step = w / len(self.runs)
        for i, r in enumerate(self.runs):
            assert r.ratio is not None
            x = left + step * (i + 0.5)
            colour = QColor("#2e9e4f" if r.ratio <= 1.0 else "#d9661c")
            if r.ci_low is not None and r.ci_high is not None:
                p.setPen(QPen(colour, 2))
                p.drawLine(QPointF(x, y(r.ci_low)), QPointF(x, y(r.ci_high)))
                p.drawLine(QPointF(x - 4, y(r.ci_low)), QPointF(x + 4, y(r.ci_low)))
                p.drawLine(QPointF(x - 4, y(r.ci_high)), QPointF(x + 4, y(r.ci_high)))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawEllipse(QPointF(x, y(r.ratio)), 4.5, 4.5)
            p.setPen(QColor("#333333"))
            p.drawText(QRectF(x - step / 2, top + h + 4, step, 14),
                       int(Qt.AlignmentFlag.AlignCenter), r.policy[:10])
        p.end()


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill(t: QTableWidget, rows: list[list[str]]) -> None:
    t.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            t.setItem(i, j, QTableWidgetItem(cell))


class HistoryWindow(QWidget):
    """``refresh`` asks for the history (through ``request``, which calls back
    ``show_history`` or ``show_error``, in the GUI thread)."""

    def __init__(self, request: Callable[[], None]) -> None:
        super().__init__()
        self.request = request
        self.view: HistoryView | None = None
        self.setWindowTitle("schedcp history")
        self.resize(720, 400)
        self.status = QLabel("loading...")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.refresh)
        head = QHBoxLayout()
        head.addWidget(self.status, 1)
        head.addWidget(refresh)

        self.chart = RatioChart()
        self.no_runs = QLabel(NO_RUNS)
        self.no_runs.setWordWrap(True)
        self.runs = _table(["when", "policy", "metric", "before", "after", "ratio", "95 % CI"])
        runs_box = QWidget()
        rl = QHBoxLayout(runs_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.chart, 2)
        rl.addWidget(self.runs, 3)

        self.deployments = _table(["id", "policy", "params", "state", "started", "ended",
                                   "baseline", "cause"])
        self.audit = _table(["when", "action", "actor", "subject", "reason"])
        tabs = QTabWidget()
        tabs.addTab(self.deployments, "Deployments")
        tabs.addTab(self.audit, "Audit log")
        self.tabs = tabs

        lay = QVBoxLayout(self)
        lay.addLayout(head)
        title = QLabel("<b>Measured runs: before and after</b>")
        lay.addWidget(title)
        lay.addWidget(self.no_runs)
        lay.addWidget(runs_box, 2)
        self.runs_box = runs_box
        lay.addWidget(tabs, 3)

    def refresh(self) -> None:
        self.status.setText("loading...")
        self.request()

    def show_error(self, message: str) -> None:
        self.status.setText(f"history not available: {message}")

    def show_history(self, entries: list[dict[str, Any]]) -> None:
        v = self.view = history_view(entries)
        self.status.setText(f"{len(v.deployments)} deployment(s), {len(v.runs)} measured "
                            f"run(s), {len(v.audit)} audit entries; "
                            f"read {time.strftime('%H:%M:%S')}")
        self.no_runs.setVisible(not v.runs)
        self.runs_box.setVisible(bool(v.runs))
        self.chart.set_runs(v.runs)
        _fill(self.runs, [[_when(r.created_at), r.policy, r.metric, fmt_num(r.before),
                           fmt_num(r.after), fmt_num(r.ratio),
                           f"{fmt_num(r.ci_low)} .. {fmt_num(r.ci_high)}"]
                          for r in reversed(v.runs)])
        _fill(self.deployments, [[str(d.id), d.policy, d.params, d.state, _when(d.started_at),
                                  _when(d.ended_at), fmt_num(d.baseline), d.cause]
                                 for d in v.deployments])
        _fill(self.audit, [[_when(float(e.get("at") or 0)), str(e.get("action", "")),
                            str(e.get("actor", "")), str(e.get("subject", "")),
                            str(e.get("reason", ""))] for e in v.audit])

    def summary(self) -> dict[str, Any]:
        """For the UI map: what the window shows."""
        v = self.view
        return {"visible": self.isVisible(),
                "rect": [self.x(), self.y(), self.width(), self.height()],
                "runs": len(v.runs) if v else None,
                "deployments": len(v.deployments) if v else None,
                "chart_points": len(self.chart.runs),
                "status": self.status.text()}
