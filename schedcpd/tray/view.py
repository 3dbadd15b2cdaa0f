"""The tray icon and its menu, drawn from a ``Presentation`` (Qt, no D-Bus).

The menu: the state; the active policy and since when; the mode (auto, ask, observe); each
pending proposal with Approve and Reject; Rollback; History; Quit. Actions go to an
``Actions`` object (the app sends them to the daemon).
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import QObject, QPoint, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCursor
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from schedcpd.tray import icons
from schedcpd.tray.model import MODES, Presentation

MAX_PROPOSALS = 5  # more than this wait in the history window (and schedcpctl proposals)


class Actions(Protocol):
    def approve(self, proposal_id: str) -> None: ...
    def reject(self, proposal_id: str) -> None: ...
    def rollback(self) -> None: ...
    def set_mode(self, mode: str) -> None: ...
    def show_history(self) -> None: ...
    def quit(self) -> None: ...
    def menu_changed(self) -> None: ...


class TrayView(QObject):
    def __init__(self, actions: Actions) -> None:
        super().__init__()
        self.actions = actions
        self.presentation: Presentation | None = None
        self.tray = QSystemTrayIcon(icons.icon("offline"))
        self.menu = QMenu()
        self.menu.setObjectName("schedcp-tray-menu")
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(self._activated)
        # Item geometry is only known once the menu is on screen.
        self.menu.aboutToShow.connect(lambda: QTimer.singleShot(60, actions.menu_changed))
        self.menu.aboutToHide.connect(lambda: QTimer.singleShot(0, actions.menu_changed))
        self.status_action: QAction | None = None

    def show(self) -> None:
        self.tray.show()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:  # a left click
            geo = self.tray.geometry()
            at = geo.bottomLeft() if geo.isValid() else QCursor.pos()
            self.menu.popup(at if at.y() < 200 else QPoint(at.x(), geo.top()))

    def render(self, pr: Presentation) -> None:
        self.presentation = pr
        self.tray.setIcon(icons.icon(pr.icon))
        self.tray.setToolTip(pr.tooltip)
        self._build_menu(pr)
        self.actions.menu_changed()

    def _item(self, text: str, slot: Any = None, enabled: bool = True,
              name: str = "") -> QAction:
        a = self.menu.addAction(text)
        if slot is not None:
            a.triggered.connect(slot)
        a.setEnabled(enabled and slot is not None)
        a.setObjectName(name or text)
        return a

    def _build_menu(self, pr: Presentation) -> None:
        m = self.menu
        m.clear()
        head = self._item(pr.title, name="state")
        head.setIcon(icons.icon(pr.icon))
        if not pr.can_act:
            self._item(pr.tooltip.split("; ", 1)[-1], name="offline")
        else:
            self._item(f"Active: {pr.active}", name="active")
            if pr.error:
                self._item(f"Error: {pr.error[:120]}", name="error")
            mode_menu = m.addMenu(f"Mode: {pr.mode}")
            mode_menu.menuAction().setObjectName("mode")
            group = QActionGroup(mode_menu)
            for mode in MODES:
                a = mode_menu.addAction(mode)
                a.setObjectName(f"mode:{mode}")
                a.setCheckable(True)
                a.setChecked(mode == pr.mode)
                group.addAction(a)
                a.triggered.connect(lambda _=False, mode=mode: self.actions.set_mode(mode))
            m.addSeparator()
            if pr.proposals:
                shown = pr.proposals[:MAX_PROPOSALS]
                self._item(f"Pending proposals ({len(pr.proposals)})", name="proposals")
                for p in shown:
                    why = f": {p.rationale}" if p.rationale else ""
                    text = f"  {p.label}{why}"
                    info = self._item(text if len(text) <= 64 else text[:61] + "...",
                                      name=f"proposal:{p.id}")
                    info.setToolTip(p.rationale)
                    self._item(f"      Approve {p.policy}",
                               lambda _=False, pid=p.id: self.actions.approve(pid),
                               name=f"approve:{p.id}")
                    self._item(f"      Reject {p.policy}...",
                               lambda _=False, pid=p.id: self.actions.reject(pid),
                               name=f"reject:{p.id}")
                if len(pr.proposals) > len(shown):
                    self._item(f"  ... and {len(pr.proposals) - len(shown)} more",
                               name="more")
            else:
                self._item("No proposals waiting", name="proposals")
            m.addSeparator()
            self._item("Rollback", self.actions.rollback, pr.can_rollback, name="rollback")
        self._item("History...", self.actions.show_history, name="history")
        m.addSeparator()
        self._item("Quit", self.actions.quit, name="quit")

    def menu_items(self) -> list[dict[str, Any]]:
        """Every item of the open menus with its place on screen (global coordinates)."""
        out: list[dict[str, Any]] = []
        menus = [self.menu]
        for a in self.menu.actions():
            if a.menu() is not None:
                menus.append(a.menu())  # type: ignore[arg-type]
        for menu in menus:
            if not menu.isVisible():
                continue
            for a in menu.actions():
                if a.isSeparator():
                    continue
                r = menu.actionGeometry(a)
                tl = menu.mapToGlobal(r.topLeft())
                out.append({"name": a.objectName(), "text": a.text(),
                            "enabled": a.isEnabled(), "checked": a.isChecked(),
                            "menu": menu.objectName() or "mode",
                            "rect": [tl.x(), tl.y(), r.width(), r.height()]})
        return out
