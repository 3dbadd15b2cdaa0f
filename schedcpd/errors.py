"""The errors a request can end in, shared by the daemon, the tool registry and adapters.

Each kind maps onto one named D-Bus error (``org.schedcp.Error.<kind>``) and one MCP tool
error, so a caller sees the same reason whichever interface it used.
"""

from __future__ import annotations

KINDS = ("NotFound", "PermissionDenied", "InvalidArgument", "Busy", "Failed")


class RequestError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
