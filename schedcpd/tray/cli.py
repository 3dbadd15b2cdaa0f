"""`schedcpctl tray`: the desktop tray client (needs the `desktop` extra: PySide6)."""

from __future__ import annotations

import argparse
import sys

from schedcpd.cli_common import EXIT_FAILED, Subparsers


def _tray(args: argparse.Namespace) -> int:
    try:
        from schedcpd.tray.app import main
    except ImportError as exc:
        print(f"schedcpctl tray: the tray needs PySide6 ({exc}); install schedcp[desktop]",
              file=sys.stderr)
        return EXIT_FAILED
    return main(args.bus, args.notify_bus, args.wait_tray)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("tray", help="the system tray client: state, proposals, rollback, "
                                    "mode, history")
    p.add_argument("--bus", default="system",
                   help="the daemon's bus: system, session or a D-Bus address")
    p.add_argument("--notify-bus", default="session",
                   help="where desktop notifications go (the session bus)")
    p.add_argument("--wait-tray", type=float, default=60.0,
                   help="seconds to wait for the desktop's system tray to appear")
    p.set_defaults(func=_tray)
