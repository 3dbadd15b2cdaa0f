"""A client of `org.schedcp.Daemon1`, for schedcpctl, the MCP server and tests.

Tools are called through ``CallTool`` (one method for the whole registry); named D-Bus
errors come back as RequestError with the same kind the daemon raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from schedcpd.dbus_service import BUS_NAME, ERROR_PREFIX, INTERFACE, OBJECT_PATH, connect
from schedcpd.dbus_service import from_variant as _plain
from schedcpd.errors import KINDS, RequestError

SignalHandler = Callable[[str, dict[str, Any]], None]

# Bus errors that mean nobody answers for the daemon's name (not running, or gone).
_UNREACHABLE = ("org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply",
                "org.freedesktop.DBus.Error.Disconnected")
# The bus's own policy refused the call: the same reason the daemon would give.
_BUS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"


class DaemonUnavailable(RequestError, ConnectionError):
    """No daemon answers on this bus (or the bus itself is not there). A ConnectionError
    too, so callers that retry a connection on OSError keep doing so."""

    def __init__(self, message: str) -> None:
        super().__init__("Failed", message)


class DaemonClient:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, bus_spec: str = "system") -> DaemonClient:
        try:
            return cls(await connect(bus_spec))
        except (OSError, ValueError) as exc:
            raise DaemonUnavailable(f"cannot connect to the {bus_spec} bus: {exc}") from None

    def close(self) -> None:
        self.bus.disconnect()

    async def call(self, member: str, signature: str = "", *body: Any,
                   flags: MessageFlag = MessageFlag.NONE) -> Any:
        """Call a method; ``flags`` go into the message header (the desktop clients send
        mutating calls with ALLOW_INTERACTIVE_AUTHORIZATION, so polkit may ask the user)."""
        reply = await self.bus.call(Message(destination=BUS_NAME, path=OBJECT_PATH,
                                            interface=INTERFACE, member=member,
                                            signature=signature, body=list(body),
                                            flags=flags))
        if reply is None:
            raise DaemonUnavailable(f"no reply to {member}")
        if reply.message_type == MessageType.ERROR:
            name = reply.error_name or ""
            text = str(reply.body[0]) if reply.body else name
            if name in _UNREACHABLE:
                raise DaemonUnavailable(text)
            if name == _BUS_DENIED:
                raise RequestError("PermissionDenied", text)
            kind = name.removeprefix(ERROR_PREFIX)
            raise RequestError(kind if kind in KINDS else "Failed", text)
        return _plain(reply.body[0]) if reply.body else None

    async def tool(self, name: str, /, **args: Any) -> Any:
        return json.loads(await self.call("CallTool", "ss", name, json.dumps(args)))

    async def status(self) -> dict[str, Any]:
        res: dict[str, Any] = await self.call("Status")
        return res

    async def on_signals(self, handler: SignalHandler) -> None:
        """Call ``handler(name, payload)`` for every signal the daemon emits."""
        rule = f"type='signal',sender='{BUS_NAME}',path='{OBJECT_PATH}'"
        await self.bus.call(Message(destination="org.freedesktop.DBus",
                                    path="/org/freedesktop/DBus",
                                    interface="org.freedesktop.DBus", member="AddMatch",
                                    signature="s", body=[rule]))

        def on_message(msg: Message) -> None:
            if msg.message_type != MessageType.SIGNAL or msg.path != OBJECT_PATH:
                return
            if msg.interface == INTERFACE:
                handler(msg.member or "", _plain(msg.body[0]) if msg.body else {})
            elif msg.member == "PropertiesChanged" and msg.body:
                handler("PropertiesChanged", _plain(msg.body[1]))

        self.bus.add_message_handler(on_message)


