"""Every method, property and signal of org.schedcp.Daemon1, as the shipped XML lists them,
against the package's one daemon (conftest.py).

Methods are called with well-formed arguments. Approve, Reject and Rollback can only
succeed on a verified proposal or a deployment, which costs verifier boots: here they get
well-formed ids and answer with their named error, and tests/daemon/test_daemon_lab.py
drives them to success. Signals: the ones this package can cause cheaply are caught live
(PropertiesChanged, EpisodeFinished, WorkloadDetected); for the deployment signals the test
checks that the daemon emits them and that the daemon suite waits for them over D-Bus.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast import introspection as intr

from schedcpd import paths
from schedcpd.client import DaemonClient
from schedcpd.dbus_service import ERROR_PREFIX, INTERFACE, OBJECT_PATH
from schedcpd.events.cgroups import cgroup2_roots
from tests.interfaces.conftest import DBUS_DIR, raw_call
from tests.support.daemon import Signals

pytestmark = pytest.mark.lab

SHIPPED = next(i for i in intr.Node.parse(
    (DBUS_DIR / "org.schedcp.Daemon1.xml").read_text()).interfaces if i.name == INTERFACE)
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"

# Well-formed arguments for every method (in call order), and the error kind each answers with while
# nothing is proposed or deployed (None: it succeeds).
CALLS: dict[str, tuple[str, list[Any], str | None]] = {
    "Status": ("", [], None),
    "ListProposals": ("", [], None),
    "ListPolicies": ("s", ["show me edf"], None),
    "GetPolicy": ("s", ["fifo"], None),
    "CallTool": ("ss", ["get_policy", json.dumps({"name": "edf"})], None),
    "SetMode": ("s", ["observe"], None),
    "History": ("a{sv}", [{"limit": Variant("x", 50), "action": Variant("s", "set_mode")}],
                None),
    "Optimize": ("sa{sv}", ["surface test", {
        "policy": Variant("s", "no_such_policy"),
        "params": Variant("a{sv}", {"slice_us": Variant("x", 5000)})}], None),
    "Approve": ("s", ["nosuchproposal"], "NotFound"),
    "Reject": ("ss", ["nosuchproposal", "surface test"], "NotFound"),
    "Rollback": ("s", ["surface test"], "InvalidArgument"),
}
# The daemon suite drives a real deployment; these are the signals it waits for there.
DAEMON_SUITE = paths.REPO_ROOT / "tests" / "daemon"
LIVE_SIGNALS = {"EpisodeFinished", "WorkloadDetected"}


def in_signature(m: intr.Method) -> str:
    return "".join(str(a.signature) for a in m.in_args)


def out_signature(m: intr.Method) -> str:
    return "".join(str(a.signature) for a in m.out_args)


class RawSignals:
    """Every signal from the daemon's object, with its interface and signature."""

    def __init__(self, c: DaemonClient) -> None:
        self.seen: list[Message] = []
        c.bus.add_message_handler(self._on)

    def _on(self, msg: Message) -> None:
        if msg.message_type == MessageType.SIGNAL and msg.path == OBJECT_PATH:
            self.seen.append(msg)

    async def wait(self, interface: str, member: str, match: Any,
                   timeout_s: float = 30) -> Message:
        for _ in range(int(timeout_s * 20)):
            for m in self.seen:
                if (m.interface, m.member) == (interface, member) and match(m.body):
                    return m
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {member} matching: {[(m.member, m.body) for m in self.seen]}")


def test_every_shipped_method_has_a_call_here() -> None:
    methods = {m.name: m for m in SHIPPED.methods}
    assert set(CALLS) == set(methods)
    for name, (sig, _, _) in CALLS.items():
        assert sig == in_signature(methods[name]), name


async def test_every_method_answers_with_its_shipped_signature(client: DaemonClient) -> None:
    await client.on_signals(Signals())  # AddMatch for the daemon's signals
    raw = RawSignals(client)
    methods = {m.name: m for m in SHIPPED.methods}
    replies: dict[str, Any] = {}
    for name, (sig, body, error) in CALLS.items():
        reply = await raw_call(client, name, sig, *body)
        if error is not None:
            assert reply.message_type == MessageType.ERROR, (name, reply.body)
            assert reply.error_name == ERROR_PREFIX + error, (name, reply.body)
            continue
        assert reply.message_type == MessageType.METHOD_RETURN, (name, reply.body)
        assert reply.signature == out_signature(methods[name]), name
        replies[name] = reply.body[0] if reply.body else None

    assert replies["Status"]["target"].value == "vm"
    assert isinstance(replies["ListProposals"], list)
    assert replies["ListPolicies"][0]["name"].value == "edf"
    fifo = replies["GetPolicy"]
    assert fifo["tunables"].signature == "aa{sv}"
    assert fifo["tunables"].value[0]["default"].value == 20000
    assert fifo["history"].value["runs"].value == 0
    assert json.loads(replies["CallTool"])["name"] == "edf"
    assert ("audit", "observe") in [(e["kind"].value, e["subject"].value)
                                    for e in replies["History"]]

    # The side effects arrive as signals: SetMode's PropertiesChanged, and the episode
    # Optimize started (its policy does not exist: it fails) with its EpisodeFinished.
    changed = await raw.wait(PROPERTIES_IFACE, "PropertiesChanged",
                             lambda b: b[0] == INTERFACE and "Mode" in b[1])
    assert changed.signature == "sa{sv}as" and changed.body[1]["Mode"].value == "observe"
    ep_id = replies["Optimize"]
    done = await raw.wait(INTERFACE, "EpisodeFinished", lambda b: b[0]["id"].value == ep_id)
    signals = {s.name: s for s in SHIPPED.signals}
    assert done.signature == "".join(str(a.signature) for a in signals["EpisodeFinished"].args)
    assert done.body[0]["state"].value == "failed"
    assert "no_such_policy" in done.body[0]["detail"].value
    errored = await raw.wait(PROPERTIES_IFACE, "PropertiesChanged",
                             lambda b: "no_such_policy" in str(b[1].get("LastError", "")))
    assert errored.body[1]["State"].value == "error"
    assert (await client.call("SetMode", "s", "ask")) is None


async def test_get_all_gives_every_shipped_property_in_its_type(client: DaemonClient) -> None:
    reply = await raw_call(client, "GetAll", "s", INTERFACE, interface=PROPERTIES_IFACE)
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    props: dict[str, Variant] = reply.body[0]
    assert {p.name: p.signature for p in SHIPPED.properties} == \
        {k: v.signature for k, v in props.items()}
    st = await client.status()
    assert props["Mode"].value == st["mode"] and props["State"].value == st["state"]
    assert props["ActivePolicy"].value == st["active_policy"]
    assert props["PendingProposals"].value == st["pending_proposals"]
    assert props["LastError"].value == st["last_error"]
    assert props["ActiveSince"].value == st["active_since"]
    for p in SHIPPED.properties:  # one by one too, as busctl get-property does
        one = await raw_call(client, "Get", "ss", INTERFACE, p.name,
                             interface=PROPERTIES_IFACE)
        assert one.body[0].signature == p.signature, p.name
    # Read-only: Set is refused (and the bus policy denies it to everyone but root).
    refused = await raw_call(client, "Set", "ssv", INTERFACE, "Mode", Variant("s", "auto"),
                             interface=PROPERTIES_IFACE)
    assert refused.message_type == MessageType.ERROR
    assert (await client.status())["mode"] == st["mode"]


async def test_a_new_cgroup_is_a_workload_detected(client: DaemonClient) -> None:
    # The daemon's own event sources (cgroup inotify here) report a container-like start.
    await client.on_signals(Signals())
    raw = RawSignals(client)
    cg = cgroup2_roots()[0] / f"schedcp-test-{uuid.uuid4().hex[:8]}"
    cg.mkdir()
    try:
        got = await raw.wait(INTERFACE, "WorkloadDetected",
                             lambda b: b[0]["cgroup"].value == f"/{cg.name}")
    finally:
        cg.rmdir()
    signals = {s.name: s for s in SHIPPED.signals}
    assert got.signature == "".join(str(a.signature) for a in signals["WorkloadDetected"].args)
    assert got.body[0]["kind"].value == "cgroup" and got.body[0]["name"].value


@pytest.mark.parametrize("signal", [s.name for s in SHIPPED.signals
                                    if s.name not in LIVE_SIGNALS])
def test_deployment_signals_are_emitted_and_awaited_by_the_daemon_suite(signal: str) -> None:
    sources = "\n".join(p.read_text() for p in (paths.REPO_ROOT / "schedcpd").rglob("*.py")
                        if p.name != "dbus_service.py")
    assert re.search(rf'emit\(\s*"{signal}"', sources), f"nothing in schedcpd emits {signal}"
    suite = "\n".join(p.read_text() for p in DAEMON_SUITE.glob("test_*.py"))
    assert re.search(rf'(wait\(|name == )"{signal}"', suite), \
        f"no test in {DAEMON_SUITE} waits for {signal} over D-Bus"

