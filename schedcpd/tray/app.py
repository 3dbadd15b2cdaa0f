"""The tray application: the Qt view in the GUI thread, the D-Bus link in an asyncio loop
of its own thread, joined by queued Qt signals (the link never touches a widget).

``SCHEDCP_TRAY_UI_MAP=FILE`` makes the tray write what it shows as JSON after every change:
the presentation, the icon's and the open menu items' places on screen, the history
window. Tests (and automation such as screen readers' scripts) click by it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QInputDialog, QSystemTrayIcon

from schedcpd.errors import RequestError
from schedcpd.tray.history import HistoryWindow
from schedcpd.tray.link import DaemonLink, Notifier, Runner
from schedcpd.tray.model import DaemonSnapshot, Presentation, notification_for, present
from schedcpd.tray.view import TrayView

log = logging.getLogger("schedcp.tray")
UI_MAP_ENV = "SCHEDCP_TRAY_UI_MAP"
REDRAW_S = 20  # "since ... (N min ago)" stays current
HISTORY_SIGNALS = ("PolicyDeployed", "RolledBack", "CanaryPassed", "EpisodeFinished")


class Bridge(QObject):
    """Signals the link thread emits; Qt queues them into the GUI thread."""

    changed = Signal(object)            # DaemonSnapshot (a copy)
    daemon_signal = Signal(str, object)  # name, payload
    history = Signal(object)             # list of entries, or an error text
    action_done = Signal(str, str)       # what, error ("" when it worked)
    notified = Signal(str, str, int, bool)  # summary, body, urgency, delivered


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RequestError):
        return f"{exc.kind}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class TrayApp(QObject):
    def __init__(self, bus_spec: str, notify_bus: str = "session",
                 ui_map: Path | None = None) -> None:
        super().__init__()
        self.bus_spec = bus_spec
        self.ui_map = ui_map
        self.bridge = Bridge()
        self.runner = Runner()
        self.link = DaemonLink(bus_spec, self.bridge.changed.emit,
                               self.bridge.daemon_signal.emit)
        self.notifier = Notifier(notify_bus)
        self.snapshot = DaemonSnapshot(bus=bus_spec)
        self.presentation: Presentation = present(self.snapshot)
        self.view = TrayView(self)
        self.history_window: HistoryWindow | None = None
        self._running: Future[None] | None = None
        self.notifications: list[dict[str, Any]] = []
        self.done: list[dict[str, str]] = []
        self.bridge.changed.connect(self._on_change)
        self.bridge.daemon_signal.connect(self._on_signal)
        self.bridge.history.connect(self._on_history)
        self.bridge.action_done.connect(self._on_action_done)
        self.bridge.notified.connect(self._on_notified)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(REDRAW_S * 1000)
        if ui_map is not None:  # the icon's place is known only once the tray docked it
            self._map_timer = QTimer(self)
            self._map_timer.timeout.connect(self.menu_changed)
            self._map_timer.start(1000)

    def start(self) -> None:
        self.runner.start()
        self._running = self.runner.submit(self.link.run())
        self.view.render(self.presentation)
        self.view.show()

    def stop(self) -> None:
        self.runner.call_soon(self.link.stop)
        self.runner.call_soon(self.notifier.close)
        if self._running is not None:
            with contextlib.suppress(Exception):  # it ends within one retry pause
                self._running.result(timeout=5)
        self.runner.stop()

    def _tick(self) -> None:
        if not self.view.menu.isVisible():  # never rebuild a menu under the user's pointer
            self._on_change(self.snapshot)

    # --- from the daemon ---
    def _on_change(self, snap: DaemonSnapshot) -> None:
        self.snapshot = snap
        self.presentation = present(snap)
        self.view.render(self.presentation)

    def _on_signal(self, name: str, payload: dict[str, Any]) -> None:
        n = notification_for(name, payload)
        if n is not None:
            fut = self.runner.submit(self.notifier.notify(n.summary, n.body, n.urgency))
            fut.add_done_callback(lambda f: self.bridge.notified.emit(
                n.summary, n.body, n.urgency, not f.exception() and bool(f.result())))
        if name in HISTORY_SIGNALS and self.history_window is not None \
                and self.history_window.isVisible():
            self._request_history()

    def _on_notified(self, summary: str, body: str, urgency: int, delivered: bool) -> None:
        if not delivered:  # no notification server: the tray's own balloon
            icon = (QSystemTrayIcon.MessageIcon.Critical if urgency >= 2
                    else QSystemTrayIcon.MessageIcon.Information)
            self.view.tray.showMessage(summary, body, icon, 10_000)
        self.notifications.append({"summary": summary, "body": body,
                                   "delivered": delivered, "at": time.time()})
        self.menu_changed()

    # --- actions (the view calls these) ---
    def _act(self, what: str, fut: Future[Any]) -> None:
        def done(f: Future[Any]) -> None:
            exc = f.exception()
            self.bridge.action_done.emit(what, _error_text(exc) if exc else "")
        fut.add_done_callback(done)

    def _on_action_done(self, what: str, error: str) -> None:
        self.done.append({"what": what, "error": error})
        if error:
            log.warning("%s failed: %s", what, error)
            self._on_signal_error(f"schedcp: {what} failed", error)
        self.menu_changed()

    def _on_signal_error(self, summary: str, body: str) -> None:
        fut = self.runner.submit(self.notifier.notify(summary, body, 2, "dialog-error"))
        fut.add_done_callback(lambda f: self.bridge.notified.emit(
            summary, body, 2, not f.exception() and bool(f.result())))

    def approve(self, proposal_id: str) -> None:
        self._act(f"approve {proposal_id}", self.runner.submit(self.link.approve(proposal_id)))

    def reject(self, proposal_id: str) -> None:
        reason, ok = QInputDialog.getText(None, "Reject proposal",
                                          "Reason (kept in the audit log):",
                                          text="rejected from the schedcp tray")
        if ok:
            self._act(f"reject {proposal_id}",
                      self.runner.submit(self.link.reject(proposal_id, reason)))

    def rollback(self) -> None:
        self._act("rollback", self.runner.submit(
            self.link.rollback("requested from the schedcp tray")))

    def set_mode(self, mode: str) -> None:
        self._act(f"mode {mode}", self.runner.submit(self.link.set_mode(mode)))

    def show_history(self) -> None:
        if self.history_window is None:
            self.history_window = HistoryWindow(self._request_history)
            screen = QApplication.primaryScreen()
            if screen is not None:  # first shown in the middle of the screen, as dialogs are
                area = screen.availableGeometry()
                self.history_window.move(area.center() - self.history_window.rect().center())
        self.history_window.show()
        self.history_window.raise_()
        self.history_window.activateWindow()
        self.history_window.refresh()
        self.menu_changed()

    def _request_history(self) -> None:
        fut = self.runner.submit(self.link.history())

        def done(f: Future[list[dict[str, Any]]]) -> None:
            exc = f.exception()
            self.bridge.history.emit(_error_text(exc) if exc else f.result())
        fut.add_done_callback(done)

    def _on_history(self, result: list[dict[str, Any]] | str) -> None:
        if self.history_window is None:
            return
        if isinstance(result, str):
            self.history_window.show_error(result)
        else:
            self.history_window.show_history(result)
        QTimer.singleShot(50, self.menu_changed)

    def quit(self) -> None:
        QApplication.quit()

    # --- the UI map ---
    def menu_changed(self) -> None:
        if self.ui_map is None:
            return
        geo = self.view.tray.geometry()
        doc = {"pid": os.getpid(), "written_at": time.time(),
               "presentation": self.presentation.as_dict(),
               "generation": self.link.generation,
               "tray_available": QSystemTrayIcon.isSystemTrayAvailable(),
               "icon_rect": [geo.x(), geo.y(), geo.width(), geo.height()],
               "menu_visible": self.view.menu.isVisible(),
               "items": self.view.menu_items(),
               "history": self.history_window.summary() if self.history_window else None,
               "notifications": self.notifications, "actions": self.done}
        tmp = self.ui_map.with_name(self.ui_map.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.ui_map)


def main(bus_spec: str, notify_bus: str = "session", wait_tray_s: float = 60.0) -> int:
    logging.basicConfig(level=logging.INFO, format="schedcp-tray: %(message)s")
    app = QApplication(sys.argv[:1])
    app.setApplicationName("schedcp")
    app.setDesktopFileName("schedcp-tray")
    app.setQuitOnLastWindowClosed(False)
    deadline = time.monotonic() + wait_tray_s
    # A session's tray host may start after its autostart programs.
    while not QSystemTrayIcon.isSystemTrayAvailable():
        if time.monotonic() > deadline:
            print("schedcp-tray: this desktop has no system tray (none appeared within "
                  f"{wait_tray_s:g} s); on GNOME use the schedcp Shell extension",
                  file=sys.stderr)
            return 1
        app.processEvents()
        time.sleep(0.25)
    # Ctrl-C and SIGTERM end the event loop cleanly; Python only runs its signal handlers
    # between bytecodes, so a timer wakes the interpreter now and then.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: QApplication.quit())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    ui_map = os.environ.get(UI_MAP_ENV)
    tray = TrayApp(bus_spec, notify_bus, Path(ui_map) if ui_map else None)
    tray.start()
    try:
        return int(app.exec())
    finally:
        tray.stop()
