"""The tray icon for each state, painted (no image files to install or lose): a coloured
disc with a white sign, readable at 16 px, told apart by shape as well as colour."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap

from schedcpd.tray.model import ICON_STATES, OFFLINE

COLOURS = {
    "idle": "#6f7680",
    "optimizing": "#2f7de1",
    "proposal_waiting": "#e89a12",
    "deployed": "#2e9e4f",
    "rolled_back": "#d9661c",
    "error": "#d0302a",
    OFFLINE: "#4a4e54",
}
SIZES = (16, 22, 24, 32, 48, 64)


def pixmap(state: str, size: int = 64) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 64.0, size / 64.0)
    colour = QColor(COLOURS.get(state, COLOURS["idle"]))
    white = QColor("#ffffff")
    if state == OFFLINE:
        p.setPen(QPen(colour, 6))
        p.setBrush(QBrush(QColor("#d7d9dc")))
        p.drawEllipse(QRectF(5, 5, 54, 54))
        p.drawLine(QPointF(17, 47), QPointF(47, 17))
        p.end()
        return pm
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(colour))
    p.drawEllipse(QRectF(2, 2, 60, 60))
    pen = QPen(white, 7, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    if state == "idle":
        # a resting CPU: a square chip
        p.setPen(QPen(white, 5))
        p.drawRoundedRect(QRectF(20, 20, 24, 24), 3, 3)
    elif state == "optimizing":
        # a spinner: three quarters of a ring
        p.drawArc(QRectF(16, 16, 32, 32), 90 * 16, 270 * 16)
    elif state == "deployed":
        path = QPainterPath(QPointF(17, 33))
        path.lineTo(28, 44)
        path.lineTo(47, 21)
        p.drawPath(path)
    elif state == "rolled_back":
        # an arrow turning back
        p.drawArc(QRectF(18, 18, 28, 28), 100 * 16, 250 * 16)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(white))
        head = QPainterPath(QPointF(14, 18))
        head.lineTo(30, 12)
        head.lineTo(28, 28)
        head.closeSubpath()
        p.drawPath(head)
    else:  # proposal_waiting "?", error "!"
        font = QFont("DejaVu Sans")
        font.setBold(True)
        font.setPixelSize(44)
        p.setFont(font)
        p.setPen(white)
        p.drawText(QRectF(0, 0, 64, 64), int(Qt.AlignmentFlag.AlignCenter),
                   "?" if state == "proposal_waiting" else "!")
    p.end()
    return pm


_cache: dict[str, QIcon] = {}


def icon(state: str) -> QIcon:
    if state not in _cache:
        ic = QIcon()
        for s in SIZES:
            ic.addPixmap(pixmap(state, s))
        _cache[state] = ic
    return _cache[state]


__all__ = ["COLOURS", "ICON_STATES", "icon", "pixmap"]
