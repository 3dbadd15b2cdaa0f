"""The desktop tray client of `schedcpd` (`schedcpctl tray`).

``model`` (pure: what to show for the daemon's properties and signals), ``link`` (the
D-Bus side, asyncio, with reconnect), ``view``, ``icons`` and ``history`` (Qt), ``app``
(joins them), ``cli`` (the subcommand). Only ``cli`` and ``model`` import without PySide6.
"""
