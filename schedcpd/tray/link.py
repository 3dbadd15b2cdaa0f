"""The tray's D-Bus link to `schedcpd` (asyncio, no Qt): it keeps a ``DaemonSnapshot`` in
step with the daemon and follows it across restarts.

Only the public API is used: ``Properties.GetAll`` and ``PropertiesChanged`` for the state,
``ListProposals``, ``Status`` (once per daemon start: the target), ``History``, the signals,
and ``Approve``, ``Reject``, ``Rollback`` and ``SetMode``, which are sent with the header
flag ALLOW_INTERACTIVE_AUTHORIZATION: an unprivileged caller gets polkit's prompt instead of
a plain refusal. ``NameOwnerChanged`` for the daemon's name says when it went away or came
back; a lost bus connection is retried every ``retry_s``.

``Runner`` runs one asyncio loop in a thread for a GUI whose own loop is not asyncio's.
``Notifier`` sends freedesktop notifications on the session bus.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

from schedcpd.client import DaemonClient, DaemonUnavailable
from schedcpd.dbus_service import BUS_NAME, INTERFACE, OBJECT_PATH, connect, from_variant
from schedcpd.errors import RequestError
from schedcpd.tray.model import DaemonSnapshot

log = logging.getLogger("schedcp.tray")

INTERACTIVE = MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION
DBUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
# Tray notifications name this program.
APP_NAME = "schedcp"

ChangeHandler = Callable[[DaemonSnapshot], None]
SignalHandler = Callable[[str, dict[str, Any]], None]
T = TypeVar("T")


class DaemonLink:
    """One connection to the daemon's bus, re-made when it drops. ``on_change`` gets a copy
    of the snapshot after every change; ``on_signal`` every daemon signal but
    PropertiesChanged."""

    def __init__(self, bus_spec: str, on_change: ChangeHandler,
                 on_signal: SignalHandler | None = None, retry_s: float = 2.0) -> None:
        self.bus_spec = bus_spec
        self.on_change = on_change
        self.on_signal = on_signal
        self.retry_s = retry_s
        self.snapshot = DaemonSnapshot(bus=bus_spec)
        self.client: DaemonClient | None = None
        self._stop: asyncio.Event | None = None
        self._replay: list[dict[str, Any]] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._proposals_task: asyncio.Task[None] | None = None
        self._proposals_dirty = False
        self._refresh_again = False
        self.generation = 0  # how many times the daemon was found (tests, logs)

    # --- running ---
    async def run(self) -> None:
        """Until ``stop()``: connect, follow the daemon, reconnect after a lost bus."""
        self._stop = asyncio.Event()
        self._publish_offline()
        while not self._stop.is_set():
            try:
                bus = await connect(self.bus_spec)
            except Exception as exc:  # no bus (yet): any failure to connect is retried
                log.info("bus %s not reachable: %s", self.bus_spec, exc)
                await self._pause()
                continue
            self.client = DaemonClient(bus)
            try:
                await self._follow(bus)
            except Exception as exc:  # a bus that dropped mid-call: start over
                log.warning("lost the %s bus: %s", self.bus_spec, exc)
            finally:
                self.client = None
                if bus.connected:
                    bus.disconnect()
            self._publish_offline()
            await self._pause()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _pause(self) -> None:
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.retry_s)

    async def _follow(self, bus: MessageBus) -> None:
        assert self.client is not None and self._stop is not None
        await self._add_match(bus, f"type='signal',sender='{DBUS[0]}',interface='{DBUS[2]}',"
                                   f"member='NameOwnerChanged',arg0='{BUS_NAME}'")
        bus.add_message_handler(self._on_bus_message)
        await self.client.on_signals(self._on_daemon_signal)
        self._schedule_refresh()
        stop = asyncio.ensure_future(self._stop.wait())
        gone = asyncio.ensure_future(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not gone.done():
                gone.cancel()
            elif gone.exception() is not None:
                log.info("bus connection closed: %s", gone.exception())

    @staticmethod
    async def _add_match(bus: MessageBus, rule: str) -> None:
        await bus.call(Message(destination=DBUS[0], path=DBUS[1], interface=DBUS[2],
                               member="AddMatch", signature="s", body=[rule]))

    # --- what arrives ---
    def _on_bus_message(self, msg: Message) -> None:
        if (msg.message_type == MessageType.SIGNAL and msg.member == "NameOwnerChanged"
                and msg.interface == DBUS[2] and msg.body and msg.body[0] == BUS_NAME):
            if msg.body[2]:
                log.info("schedcpd appeared as %s", msg.body[2])
                self._schedule_refresh()
            else:
                log.info("schedcpd left the bus")
                self._publish_offline()

    def _on_daemon_signal(self, name: str, payload: dict[str, Any]) -> None:
        if name == "PropertiesChanged":
            if self._replay is not None:
                self._replay.append(payload)
            if not self.snapshot.reachable:
                return  # the refresh under way reads them all
            if self.snapshot.apply_changed(payload):
                self._schedule_proposals()
            self._publish()
            return
        if name == "ProposalCreated":
            self._schedule_proposals()
        if self.on_signal is not None:
            self.on_signal(name, payload)

    # --- reading the daemon ---
    def _schedule_refresh(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refresh_again = True  # the daemon changed hands during a refresh
            return
        self._refreshing = asyncio.ensure_future(self._refresh_until_settled())

    async def _refresh_until_settled(self) -> None:
        while True:
            self._refresh_again = False
            await self._refresh()
            if not self._refresh_again:
                return

    async def _refresh(self) -> None:
        """Everything, as when the daemon (re)appears. Property changes that arrive while
        GetAll is on its way are applied again after it, in order: the reply may be older
        than one of them, never newer than the last."""
        client = self.client
        if client is None:
            return
        self._replay = []
        try:
            props = await self._get_all(client)
            target = await self._target(client)
            proposals = await client.call("ListProposals")
        except RequestError as exc:
            if not isinstance(exc, DaemonUnavailable):
                log.warning("reading schedcpd failed: %s", exc)
            self._publish_offline()
            return
        finally:
            replay, self._replay = self._replay or [], None
        self.snapshot.set_properties(props)
        for changed in replay:
            self.snapshot.apply_changed(changed)
        self.snapshot.target = target
        self.snapshot.set_proposals(proposals)
        self.generation += 1
        self._publish()
        if replay:
            self._schedule_proposals()

    @staticmethod
    async def _get_all(client: DaemonClient) -> dict[str, Any]:
        reply = await client.bus.call(Message(
            destination=BUS_NAME, path=OBJECT_PATH, interface="org.freedesktop.DBus.Properties",
            member="GetAll", signature="s", body=[INTERFACE]))
        if reply is None or reply.message_type == MessageType.ERROR:
            text = str(reply.body[0]) if reply is not None and reply.body else "no reply"
            raise DaemonUnavailable(f"GetAll: {text}")
        props: dict[str, Any] = from_variant(reply.body[0])
        return props

    @staticmethod
    async def _target(client: DaemonClient) -> str:
        st = await client.status()
        kernel = st.get("kernel") or ""
        return f"{st.get('target', '')} (kernel {kernel})" if kernel else str(st.get("target"))

    def _schedule_proposals(self) -> None:
        """List the proposals again; calls that come while a listing runs fold into one
        more listing after it, so the last change is always read."""
        if self._proposals_task is not None and not self._proposals_task.done():
            self._proposals_dirty = True
            return
        self._proposals_task = asyncio.ensure_future(self._list_proposals())

    async def _list_proposals(self) -> None:
        while True:
            self._proposals_dirty = False
            client = self.client
            if client is None or not self.snapshot.reachable:
                return
            try:
                self.snapshot.set_proposals(await client.call("ListProposals"))
            except RequestError as exc:
                log.info("ListProposals: %s", exc)
                return
            if not self._proposals_dirty:
                break
        self._publish()

    def _publish(self) -> None:
        self.on_change(copy.deepcopy(self.snapshot))

    def _publish_offline(self) -> None:
        self.snapshot.set_offline()
        self._publish()

    # --- acting (mutating calls ask polkit interactively where it decides) ---
    def _client(self) -> DaemonClient:
        if self.client is None or not self.snapshot.reachable:
            raise DaemonUnavailable(f"no schedcpd answers on the {self.bus_spec} bus")
        return self.client

    async def approve(self, proposal_id: str) -> None:
        await self._client().call("Approve", "s", proposal_id, flags=INTERACTIVE)

    async def reject(self, proposal_id: str, reason: str) -> None:
        await self._client().call("Reject", "ss", proposal_id, reason, flags=INTERACTIVE)

    async def rollback(self, reason: str) -> str:
        return str(await self._client().call("Rollback", "s", reason, flags=INTERACTIVE))

    async def set_mode(self, mode: str) -> None:
        await self._client().call("SetMode", "s", mode, flags=INTERACTIVE)

    async def history(self, limit: int = 200) -> list[dict[str, Any]]:
        res: list[dict[str, Any]] = await self._client().call(
            "History", "a{sv}", {"limit": Variant("x", limit)})
        return res


class Notifier:
    """org.freedesktop.Notifications on the session bus; ``notify`` says whether a
    notification server took it (else the caller shows it its own way)."""

    def __init__(self, bus_spec: str = "session") -> None:
        self.bus_spec = bus_spec
        self._bus: MessageBus | None = None

    async def notify(self, summary: str, body: str, urgency: int = 1,
                     icon: str = "dialog-information") -> bool:
        try:
            if self._bus is None or not self._bus.connected:
                self._bus = await connect(self.bus_spec)
            reply = await self._bus.call(Message(
                destination="org.freedesktop.Notifications",
                path="/org/freedesktop/Notifications",
                interface="org.freedesktop.Notifications", member="Notify",
                signature="susssasa{sv}i",
                body=[APP_NAME, 0, icon, summary, body, [],
                      {"urgency": Variant("y", urgency),
                       "desktop-entry": Variant("s", "schedcp-tray")}, -1]))
        except Exception as exc:  # no session bus here: the caller falls back
            log.info("no notification service: %s", exc)
            self._bus = None
            return False
        if reply is None or reply.message_type == MessageType.ERROR:
            log.info("notification refused: %s", reply.body if reply else "no reply")
            return False
        return True

    def close(self) -> None:
        if self._bus is not None and self._bus.connected:
            self._bus.disconnect()


class Runner:
    """An asyncio loop in its own thread; ``submit`` hands it a coroutine from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="schedcp-dbus", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def stop(self, timeout_s: float = 5.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout_s)
