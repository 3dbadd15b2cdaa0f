"""`org.schedcp.Daemon1` on D-Bus: a thin adapter from methods to the tool registry.

Every method resolves its caller (unique name -> uid -> privileged: root or the `schedcp`
group; anyone else may still be granted a mutating tool's action by polkit, interactively
when the message allows it) and calls the tool of the same capability; RequestError kinds
become ``org.schedcp.Error.<kind>``. Daemon notifications become signals and
PropertiesChanged.
"""

import contextvars
import grp
import json
import pwd
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageFlag, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusDict,
    DBusDouble,
    DBusSignature,
    DBusStr,
    DBusUInt32,
)
from dbus_fast.service import (
    ServiceInterface,
    dbus_method,
    dbus_property,
    dbus_signal,
)

from schedcpd import polkit
from schedcpd.daemon.service import Caller
from schedcpd.errors import RequestError
from schedcpd.tools import REGISTRY, Services

BUS_NAME = "org.schedcp.Daemon1"
OBJECT_PATH = "/org/schedcp/Daemon1"
INTERFACE = "org.schedcp.Daemon1"
ERROR_PREFIX = "org.schedcp.Error."
PRIVILEGED_GROUP = "schedcp"

DBusDictList = Annotated[list[dict[str, Variant]], DBusSignature("aa{sv}")]

# The message being handled: its sender and whether it allows interactive authorization.
_sender: contextvars.ContextVar[tuple[str, bool]] = contextvars.ContextVar(
    "dbus_sender", default=("", False))


def to_variant(value: Any) -> Variant:
    """Plain Python values as D-Bus variants; nested objects as a{sv}, lists of them aa{sv}."""
    if isinstance(value, bool):
        return Variant("b", value)
    if isinstance(value, int):
        return Variant("x", value)
    if isinstance(value, float):
        return Variant("d", value)
    if isinstance(value, str):
        return Variant("s", value)
    if value is None:
        return Variant("s", "")
    if isinstance(value, dict):
        return Variant("a{sv}", to_vardict(value))
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return Variant("as", list(value))
        if all(isinstance(v, dict) for v in value) and value:
            return Variant("aa{sv}", [to_vardict(v) for v in value])
        return Variant("s", json.dumps(value))
    return Variant("s", str(value))


def to_vardict(d: dict[str, Any]) -> dict[str, Variant]:
    return {str(k): to_variant(v) for k, v in d.items()}


def from_variant(value: Any) -> Any:
    if isinstance(value, Variant):
        return from_variant(value.value)
    if isinstance(value, dict):
        return {k: from_variant(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_variant(v) for v in value]
    return value


class DaemonInterface(ServiceInterface):
    def __init__(self, services: Services, bus: MessageBus) -> None:
        super().__init__(INTERFACE)
        self.services = services
        self.bus = bus
        services.daemon.listeners.append(self._on_event)

    # --- callers ---
    async def _caller(self) -> Caller:
        sender, interactive = _sender.get()
        reply = await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="GetConnectionUnixUser",
            signature="s", body=[sender]))
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            return Caller(None, sender, False)
        uid = int(reply.body[0])

        async def ask_polkit(action: str) -> bool:
            return await polkit.is_authorized(self.bus, sender, action, interactive)
        return Caller(uid, sender, uid == 0 or _in_group(uid, PRIVILEGED_GROUP), ask_polkit)

    async def _call(self, tool: str, args: dict[str, Any]) -> Any:
        caller = await self._caller()
        try:
            return await REGISTRY.call(tool, args, self.services, caller)
        except RequestError as exc:
            raise DBusError(ERROR_PREFIX + exc.kind, exc.message) from None

    # --- methods ---
    @dbus_method(name="Status")
    async def status(self) -> DBusDict:
        return to_vardict(await self._call("status", {}))

    @dbus_method(name="ListProposals")
    async def list_proposals(self) -> DBusDictList:
        return [to_vardict(p) for p in await self._call("list_proposals", {})]

    @dbus_method(name="Optimize")
    async def optimize(self, target: DBusStr, options: DBusDict) -> DBusStr:
        args = {"target": target, **from_variant(options)}
        return str((await self._call("optimize", args))["episode_id"])

    @dbus_method(name="Approve")
    async def approve(self, proposal_id: DBusStr) -> None:
        await self._call("approve", {"proposal_id": proposal_id})

    @dbus_method(name="Reject")
    async def reject(self, proposal_id: DBusStr, reason: DBusStr) -> None:
        await self._call("reject", {"proposal_id": proposal_id, "reason": reason})

    @dbus_method(name="Rollback")
    async def rollback(self, reason: DBusStr) -> DBusStr:
        return str((await self._call("rollback", {"reason": reason}))["now_running"])

    @dbus_method(name="SetMode")
    async def set_mode(self, mode: DBusStr) -> None:
        await self._call("set_mode", {"mode": mode})

    @dbus_method(name="History")
    async def history(self, filter: DBusDict) -> DBusDictList:
        res = await self._call("deployment_history", from_variant(filter))
        return [to_vardict({"kind": "deployment", **d}) for d in res["deployments"]] + \
               [to_vardict({"kind": "audit", **e}) for e in res["audit"]]

    @dbus_method(name="ListPolicies")
    async def list_policies(self, query: DBusStr) -> DBusDictList:
        args = {"query": query} if query else {}
        return [to_vardict(p) for p in await self._call("list_policies", args)]

    @dbus_method(name="GetPolicy")
    async def get_policy(self, name: DBusStr) -> DBusDict:
        return to_vardict(await self._call("get_policy", {"name": name}))

    @dbus_method(name="CallTool")
    async def call_tool(self, name: DBusStr, args_json: DBusStr) -> DBusStr:
        try:
            args = json.loads(args_json or "{}")
        except ValueError as exc:
            raise DBusError(ERROR_PREFIX + "InvalidArgument", f"arguments: {exc}") from None
        if not isinstance(args, dict):
            raise DBusError(ERROR_PREFIX + "InvalidArgument", "arguments must be an object")
        return json.dumps(await self._call(name, args))

    # --- properties ---
    @dbus_property(access=PropertyAccess.READ, name="State")
    def state(self) -> DBusStr:
        return self.services.daemon.state

    @dbus_property(access=PropertyAccess.READ, name="Mode")
    def mode(self) -> DBusStr:
        return self.services.daemon.mode

    @dbus_property(access=PropertyAccess.READ, name="ActivePolicy")
    def active_policy(self) -> DBusStr:
        return self.services.daemon.active_policy()

    @dbus_property(access=PropertyAccess.READ, name="ActiveSince")
    def active_since(self) -> DBusDouble:
        return self.services.daemon.active_since

    @dbus_property(access=PropertyAccess.READ, name="PendingProposals")
    def pending_proposals(self) -> DBusUInt32:
        return self._pending

    @dbus_property(access=PropertyAccess.READ, name="LastError")
    def last_error(self) -> DBusStr:
        return self.services.daemon.last_error

    _pending = 0

    # --- signals ---
    @dbus_signal(name="WorkloadDetected")
    def workload_detected(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="ProposalCreated")
    def proposal_created(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="PolicyDeployed")
    def policy_deployed(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="RolledBack")
    def rolled_back(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="CanaryPassed")
    def canary_passed(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="EpisodeFinished")
    def episode_finished(self, info: DBusDict) -> DBusDict:
        return info

    @dbus_signal(name="EpisodeProgress")
    def episode_progress(self, info: DBusDict) -> DBusDict:
        return info

    def _on_event(self, name: str, payload: dict[str, Any]) -> None:
        if name == "PropertiesChanged":
            if "PendingProposals" in payload:
                self._pending = int(payload["PendingProposals"])
            self.emit_properties_changed(payload)
            return
        emitter = {"WorkloadDetected": self.workload_detected,
                   "ProposalCreated": self.proposal_created,
                   "PolicyDeployed": self.policy_deployed, "RolledBack": self.rolled_back,
                   "CanaryPassed": self.canary_passed,
                   "EpisodeFinished": self.episode_finished,
                   "EpisodeProgress": self.episode_progress}.get(name)
        if emitter is not None:
            emitter(to_vardict(payload))


def _in_group(uid: int, group: str) -> bool:
    try:
        g = grp.getgrnam(group)
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_name in g.gr_mem or user.pw_gid == g.gr_gid


def _remember_sender(msg: Message) -> None:
    # Runs before the method handler, in the same call: the handler's task copies this.
    if msg.message_type == MessageType.METHOD_CALL:
        _sender.set((msg.sender or "",
                     bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)))


async def connect(bus_spec: str) -> MessageBus:
    if bus_spec == "system":
        return await MessageBus(bus_type=BusType.SYSTEM).connect()
    if bus_spec == "session":
        return await MessageBus(bus_type=BusType.SESSION).connect()
    return await MessageBus(bus_address=bus_spec).connect()


async def serve(services: Services, bus: MessageBus) -> DaemonInterface:
    """Export the interface and own the name; the name is taken last, when all is ready."""
    iface = DaemonInterface(services, bus)
    iface._pending = len(await services.daemon.records.proposals("pending"))
    bus.add_message_handler(_remember_sender)
    bus.export(OBJECT_PATH, iface)
    await bus.request_name(BUS_NAME)
    return iface
