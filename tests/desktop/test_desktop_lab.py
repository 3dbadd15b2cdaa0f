"""Both desktop clients against one real daemon (vm target: the lab guest) on a real bus.

The tray runs as `schedcpctl tray` on an Xvfb display with a tray host (trayer) and a
notification server (dunst); the GNOME extension's D-Bus and state logic
(gnome-extension/daemon.js) runs under gjs. The daemon goes through idle, optimizing,
proposal waiting (one real verification: the rest of the module reuses its token),
deployed on a click on Approve in the tray's menu, rolled back from the extension's logic,
mode changes, approve and reject from the extension, then a daemon restart both follow.
Screenshots of the real display are taken at idle, proposal waiting and deployed (and of
the history window); with SCHEDCP_SCREENSHOT_DIR=docs they land in the checkout's docs/.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schedcpd.client import DaemonClient
from schedcpd.dbus_service import BUS_NAME
from schedcpd.tray.icons import COLOURS
from tests.desktop.support import ROOT, Desktop, GjsLink, Monitor, Tray
from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess, Signals, wait_for

pytestmark = pytest.mark.lab

# No canary pass and no breaker during the module: the rollbacks are the tests' own.
CONFIG = """mode = "ask"
[canary]
window_s = 3600.0
regression_threshold = 9.0
absolute_floor = 100.0
[verifier]
dynamic = "quick"
[events]
containers = false
processes = false
udev = false
drift = false
"""
INTERACTIVE = 0x4  # ALLOW_INTERACTIVE_AUTHORIZATION
MUTATING = ("Approve", "Reject", "Rollback", "SetMode")
VERIFY_S = 300


@dataclass
class Lab:
    daemon: DaemonProcess
    bus: str
    desktop: Desktop
    tray: Tray
    shots: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("desktop")
    cfg = tmp / "schedcpd.toml"
    cfg.write_text(CONFIG)
    shots = Path(os.environ.get("SCHEDCP_SCREENSHOT_DIR") or tmp / "shots")
    if not shots.is_absolute():
        shots = ROOT / shots
    with private_bus(tmp) as bus:
        daemon = DaemonProcess(bus, tmp / "state", cfg, "--target", "vm")
        daemon.start()
        desktop = Desktop(tmp).start()
        tray = Tray(desktop, bus)
        try:
            yield Lab(daemon, bus, desktop, tray, shots)
        finally:
            tray.stop()
            desktop.close()
            assert daemon.stop() == 0, daemon.tail()


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What the ordered tests hand on: the proposal ids, the clients' bus names."""
    return {}


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[tuple[DaemonClient, Signals]]:
    c = await lab.daemon.client(timeout_s=180)
    sig = Signals()
    await c.on_signals(sig)
    yield c, sig
    c.close()


@pytest.fixture
async def gjs(lab: Lab) -> AsyncIterator[GjsLink]:
    g = await GjsLink(lab.bus, lab.desktop.tmp / "gjs.log").start()
    yield g
    await g.stop()


@pytest.fixture
async def monitor(lab: Lab) -> AsyncIterator[Monitor]:
    m = await Monitor(lab.bus, BUS_NAME).start()
    yield m
    m.close()


def icon_colour(lab: Lab, shot: Path, ui: dict[str, Any]) -> tuple[int, int, int]:
    """The colour of the tray icon's disc on the screenshot: on its vertical axis, above
    the white sign (the icon is a square centred in the tray's slot)."""
    x, y, w, h = ui["icon_rect"]
    side = min(w, h)
    ox, oy = x + (w - side) / 2, y + (h - side) / 2
    return lab.desktop.pixel(shot, round(ox + side / 2), round(oy + side * 0.15))


def near(rgb: tuple[int, int, int], colour: str, tol: int = 40) -> bool:
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tol for a, b in zip(rgb, want, strict=True))


async def shoot(lab: Lab, name: str, ui: dict[str, Any], icon: str,
                keep_notifications: bool = False) -> Path:
    if not keep_notifications:
        lab.desktop.clear_notifications()
        await asyncio.sleep(0.3)
    shot = lab.desktop.screenshot(lab.shots / name)
    rgb = icon_colour(lab, shot, ui)
    assert near(rgb, COLOURS[icon]), f"{name}: the tray icon is {rgb}, not {icon}"
    return shot


async def pid_of(c: DaemonClient, unique_name: str) -> int:
    from dbus_fast import Message
    reply = await c.bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="GetConnectionUnixProcessID",
        signature="s", body=[unique_name]))
    assert reply is not None and reply.body, unique_name
    return int(reply.body[0])


async def test_idle_in_the_tray_and_the_extension(
        lab: Lab, client: tuple[DaemonClient, Signals], gjs: GjsLink) -> None:
    c, _ = client
    st = await c.status()
    assert (st["state"], st["mode"], st["active_policy"]) == ("idle", "ask", "")
    ui = await lab.tray.wait_icon("idle", 60)
    assert ui["tray_available"], "the tray icon is not docked in trayer"
    assert ui["presentation"]["active"] == "kernel default scheduler"
    assert ui["presentation"]["mode"] == "ask"
    pr = await gjs.wait_icon("idle")
    assert (pr["title"], pr["active"], pr["mode"]) == (
        "schedcp: idle", "kernel default scheduler", "ask")
    ui = await lab.tray.open_menu()
    names = [i["name"] for i in ui["items"]]
    assert names[:4] == ["state", "active", "mode", "proposals"], names
    assert not lab.tray.item(ui, "rollback")["enabled"]  # nothing to roll back
    await shoot(lab, "tray-idle.png", ui, "idle")
    await lab.tray.close_menu()


async def test_a_proposal_waits_in_both_and_is_notified(
        lab: Lab, client: tuple[DaemonClient, Signals], gjs: GjsLink,
        state: dict[str, Any]) -> None:
    c, sig = client
    t0 = time.monotonic()
    await c.tool("optimize", target="desktop test", policy="fifo")
    await lab.tray.wait_icon("optimizing", 30)
    await gjs.wait_icon("optimizing", 30)
    await shoot(lab, "tray-optimizing.png", await lab.tray.open_menu(), "optimizing")
    await lab.tray.close_menu()
    prop = await sig.wait("ProposalCreated", VERIFY_S, after=t0)
    state["proposal"] = prop["id"]
    ui = await lab.tray.wait(lambda u: u["presentation"]["proposals"] == [prop["id"]], 30,
                             "the proposal")
    assert ui["presentation"]["icon"] == "proposal_waiting"
    pr = await gjs.wait(lambda p: [x["id"] for x in p["proposals"]] == [prop["id"]], 30,
                        "the proposal")
    assert pr["icon"] == "proposal_waiting" and pr["proposals"][0]["policy"] == "fifo"
    # The notification went to the session's notification server (dunst), not a fallback.
    ui = await lab.tray.wait(lambda u: any("proposes fifo" in n["summary"]
                                           for n in u["notifications"]), 15, "notification")
    assert all(n["delivered"] for n in ui["notifications"]), ui["notifications"]
    ui = await lab.tray.open_menu()
    approve = lab.tray.item(ui, f"approve:{prop['id']}")
    assert approve["enabled"] and "Approve fifo" in approve["text"]
    assert lab.tray.item(ui, f"reject:{prop['id']}")["enabled"]
    await shoot(lab, "tray-proposal-waiting.png", ui, "proposal_waiting",
                keep_notifications=True)


async def test_clicking_approve_in_the_tray_menu_deploys(
        lab: Lab, client: tuple[DaemonClient, Signals], gjs: GjsLink, monitor: Monitor,
        state: dict[str, Any]) -> None:
    c, sig = client
    pid = state["proposal"]
    t0 = time.monotonic()
    await lab.tray.click_item(f"approve:{pid}")
    deployed = await sig.wait("PolicyDeployed", 60, after=t0)
    assert deployed["policy"] == "fifo"
    st = await c.status()
    assert (st["state"], st["active_policy"], st["sched_ext_ops"]) == (
        "deployed", "fifo", "schedcp_fifo")
    # The Approve came from the tray's process, with the interactive-authorization flag.
    calls = [m for m in monitor.calls if m["member"] == "Approve"]
    assert len(calls) == 1 and calls[0]["body"] == [pid], calls
    assert calls[0]["flags"] & INTERACTIVE, calls
    assert await pid_of(c, calls[0]["sender"]) == lab.tray.proc.pid
    # State and ActivePolicy come in two PropertiesChanged signals.
    ui = await lab.tray.wait(lambda u: u["presentation"]["icon"] == "deployed" and u[
        "presentation"]["active"].startswith("fifo since "), 30, "deployed fifo")
    assert ui["actions"][-1] == {"what": f"approve {pid}", "error": ""}
    pr = await gjs.wait(lambda p: p["icon"] == "deployed"
                        and p["active"].startswith("fifo since "), 30, "deployed fifo")
    assert pr["canRollback"]
    ui = await lab.tray.open_menu()
    assert lab.tray.item(ui, "rollback")["enabled"]
    assert lab.tray.item(ui, "active")["text"].startswith("Active: fifo since ")
    await shoot(lab, "tray-deployed.png", ui, "deployed")
    # The history window: the deployment is listed; no run entries yet is said so.
    await lab.tray.click_item("history")
    ui = await lab.tray.wait(lambda u: u["history"] and u["history"]["visible"]
                             and u["history"]["deployments"], 30, "history window")
    assert ui["history"]["deployments"] >= 1
    lab.desktop.screenshot(lab.shots / "tray-history.png")
    # Escape closes it (no window manager here to click a close button on).
    lab.desktop.run("xdotool", "search", "--name", "^schedcp history$", "windowfocus")
    lab.desktop.key("Escape")
    await lab.tray.wait(lambda u: not u["history"]["visible"], 10, "history window closed")


async def test_the_extension_logic_rolls_back_switches_mode_approves_and_rejects(
        lab: Lab, client: tuple[DaemonClient, Signals], gjs: GjsLink,
        monitor: Monitor) -> None:
    c, sig = client
    await gjs.wait_icon("deployed", 30)
    t0 = time.monotonic()
    reply = await gjs.call("rollback", "from the gjs test")
    assert reply["ok"] and reply["value"] == "default", reply
    rb = await gjs.signal("RolledBack", t0, 30)
    assert rb["from"] == "fifo" and rb["cause"].startswith("requested"), rb
    await gjs.wait_icon("rolled_back", 30)
    ui = await lab.tray.wait_icon("rolled_back", 30)
    ui = await lab.tray.wait(lambda u: any("rolled back fifo" in n["summary"]
                                           for n in u["notifications"]), 15,
                             "rollback notification")
    await lab.tray.close_menu()
    ui = await lab.tray.open_menu()
    assert not lab.tray.item(ui, "rollback")["enabled"]  # the kernel's default runs
    await shoot(lab, "tray-rolled-back.png", ui, "rolled_back", keep_notifications=True)
    await lab.tray.close_menu()
    # The mode, from the extension's logic; the tray follows.
    assert (await gjs.call("setMode", "observe"))["ok"]
    await lab.tray.wait(lambda u: u["presentation"]["mode"] == "observe", 15, "observe")
    assert (await gjs.call("setMode", "ask"))["ok"]
    await gjs.wait(lambda p: p["mode"] == "ask", 15, "ask mode")
    bad = await gjs.call("setMode", "sometimes")
    assert not bad["ok"] and bad["kind"] == "InvalidArgument", bad
    # The verified object is remembered: these proposals come without a verification.
    for decide in ("reject", "approve"):
        t1 = time.monotonic()
        await c.tool("optimize", target=f"desktop test: {decide}", policy="fifo")
        prop = await sig.wait("ProposalCreated", 120, after=t1)
        await gjs.wait(lambda p, i=prop["id"]: [x["id"] for x in p["proposals"]] == [i], 30,
                       "the proposal")
        args = [prop["id"], "not now"] if decide == "reject" else [prop["id"]]
        reply = await gjs.call(decide, *args)
        assert reply["ok"], reply
        want = "idle" if decide == "reject" else "deployed"
        pr = await gjs.wait(lambda p, w=want: p["icon"] == w and not p["proposals"], 60, want)
        assert pr["mode"] == "ask"
    assert (await c.status())["active_policy"] == "fifo"
    assert (await gjs.call("approve", "no-such-proposal"))["kind"] == "NotFound"
    calls = [m for m in monitor.calls if m["member"] in MUTATING]
    assert {m["member"] for m in calls} == set(MUTATING), calls
    assert all(m["flags"] & INTERACTIVE for m in calls), calls
    hist = await gjs.call("history", 50)
    kinds = {e["kind"] for e in hist["value"]}
    assert "deployment" in kinds and "audit" in kinds, kinds


async def test_both_clients_follow_a_daemon_restart(
        lab: Lab, gjs: GjsLink) -> None:
    await gjs.wait(lambda p: p["canAct"], 30, "the daemon")
    gen, tray_gen = gjs.generation, lab.tray.ui()["generation"]
    assert lab.daemon.stop() == 0, lab.daemon.tail()
    await lab.tray.wait_icon("offline", 30)
    await gjs.wait_icon("offline", 30)
    lab.daemon.start()
    c = await lab.daemon.client(timeout_s=180)
    try:
        st = await c.status()
        ui = await lab.tray.wait(lambda u: u["generation"] > tray_gen
                                 and u["presentation"]["can_act"], 60, "reconnect")
        assert ui["presentation"]["mode"] == st["mode"] == "ask"
        await gjs.wait(lambda p: p["canAct"] and gjs.generation > gen, 60, "reconnect")
        # After the restart the daemon put the last known good back (on_stop last_good);
        # whatever it runs, both clients show the same.
        await wait_for(lambda: _same(lab, gjs, c), 30, 0.5)
    finally:
        c.close()


async def _same(lab: Lab, gjs: GjsLink, c: DaemonClient) -> bool:
    st = await c.status()
    ui = lab.tray.ui()["presentation"]
    pr = gjs.presentation
    want = st["active_policy"] or ""
    return bool(ui["icon"] == pr["icon"] and ui["active"].split(" since")[0]
                == pr["active"].split(" since")[0]
                and (ui["active"].startswith(want) if want else
                     ui["active"] == "kernel default scheduler"))
