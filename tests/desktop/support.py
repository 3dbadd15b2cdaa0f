"""A real X desktop for the desktop clients' tests: Xvfb, a system tray host (trayer), a
notification server (dunst) on a private session bus, screenshots (ImageMagick's import),
clicks and keys (xdotool); the tray as a process (`schedcpctl tray`), the GNOME extension's
logic under gjs, and a bus monitor that sees the clients' calls with their header flags."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tests.support.bus import private_bus

ROOT = Path(__file__).resolve().parents[2]
GJS_DRIVER = ROOT / "tests" / "desktop" / "gjs" / "driver.js"
SCREEN = (800, 480)
BACKGROUND = "#2b3a4a"
DUNSTRC = """[global]
origin = top-left
offset = 12x12
width = 330
font = DejaVu Sans 9
frame_width = 1
[urgency_low]
timeout = 60
[urgency_normal]
timeout = 60
[urgency_critical]
timeout = 60
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Desktop:
    """An X display with a tray host and a notification server, torn down by ``close``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stack = ExitStack()
        self.display = ""
        self.session_bus = ""

    def start(self) -> Desktop:
        r, w = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
             "-nolisten", "tcp", "-noreset"], pass_fds=(w,),
            stdout=subprocess.DEVNULL, stderr=(self.tmp / "xvfb.log").open("wb"))
        os.close(w)
        self.procs.append(xvfb)
        with os.fdopen(r) as f:
            self.display = ":" + f.readline().strip()
        sdir = self.tmp / "session"
        sdir.mkdir()
        self.session_bus = self.stack.enter_context(private_bus(sdir))
        self.run("xsetroot", "-solid", BACKGROUND)
        rc = self.tmp / "dunstrc"
        rc.write_text(DUNSTRC)
        self.spawn("dunst", "-config", str(rc))
        self.spawn("trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                   "--width", "96", "--heighttype", "pixel", "--height", "30",
                   "--SetDockType", "true", "--expand", "false", "--transparent", "false",
                   "--padding", "4", "--iconspacing", "4")
        self.wait_for(self.has_tray, 20, "a system tray host")
        return self

    def env(self) -> dict[str, str]:
        return _env(DISPLAY=self.display, DBUS_SESSION_BUS_ADDRESS=self.session_bus,
                    QT_QPA_PLATFORM="xcb")

    def spawn(self, *cmd: str, log: str = "") -> subprocess.Popen[bytes]:
        out = (self.tmp / (log or f"{Path(cmd[0]).name}.log")).open("ab")
        p = subprocess.Popen(list(cmd), env=self.env(), stdout=out, stderr=out)
        self.procs.append(p)
        return p

    def run(self, *cmd: str) -> str:
        return subprocess.run(list(cmd), env=self.env(), check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def has_tray(self) -> bool:
        """trayer's window is up (it takes the _NET_SYSTEM_TRAY_S0 selection first)."""
        out = subprocess.run(["xdotool", "search", "--class", "trayer"], env=self.env(),
                             capture_output=True, text=True).stdout.split()
        return bool(out)

    @staticmethod
    def wait_for(pred: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if v := pred():
                return v
            time.sleep(0.1)
        raise TimeoutError(f"no {what} within {timeout_s} s")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run("import", "-window", "root", str(path))
        return path

    def clear_notifications(self) -> None:
        subprocess.run(["dunstctl", "close-all"], env=self.env(), timeout=30,
                       capture_output=True)

    def pixel(self, path: Path, x: int, y: int) -> tuple[int, int, int]:
        out = self.run("convert", str(path), "-format", f"%[pixel:p{{{x},{y}}}]", "info:")
        # "srgb(46,158,79)" or "rgb(...)"
        nums = out[out.index("(") + 1:out.index(")")].split(",")
        return int(nums[0]), int(nums[1]), int(nums[2])

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.run("xdotool", "mousemove", str(x), str(y), "sleep", "0.15", "click", str(button))

    def key(self, name: str) -> None:
        self.run("xdotool", "key", name)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.stack.close()


class Tray:
    """`schedcpctl tray` as a process on the desktop; ``ui()`` reads what it shows."""

    def __init__(self, desktop: Desktop, bus: str) -> None:
        self.desktop = desktop
        self.bus = bus
        self.map = desktop.tmp / "tray-ui.json"
        env = {**desktop.env(), "SCHEDCP_TRAY_UI_MAP": str(self.map)}
        self.log = desktop.tmp / "tray.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "schedcpd.cli", "tray", "--bus", bus, "--notify-bus",
             desktop.session_bus, "--wait-tray", "20"], env=env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def ui(self) -> dict[str, Any]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the tray exited {self.proc.returncode}: {self.tail()}")
        try:
            doc: dict[str, Any] = json.loads(self.map.read_text())
            return doc
        except (OSError, ValueError):
            return {}

    def tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    async def wait(self, pred: Callable[[dict[str, Any]], Any], timeout_s: float,
                   what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        ui: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ui = self.ui()
            if ui and pred(ui):
                return ui
            await asyncio.sleep(0.1)
        raise TimeoutError(f"tray: no {what} within {timeout_s} s; it shows "
                           f"{ui.get('presentation')}; log: {self.tail()}")

    async def wait_icon(self, icon: str, timeout_s: float = 30) -> dict[str, Any]:
        return await self.wait(lambda u: u["presentation"]["icon"] == icon
                               and u["icon_rect"][2] > 0, timeout_s, f"{icon} icon")

    async def open_menu(self) -> dict[str, Any]:
        ui = self.ui()
        if ui.get("menu_visible"):
            return ui
        x, y, w, h = ui["icon_rect"]
        self.desktop.click(x + w // 2, y + h // 2)
        return await self.wait(lambda u: u["menu_visible"] and u["items"], 10, "open menu")

    async def close_menu(self) -> None:
        if self.ui().get("menu_visible"):
            self.desktop.key("Escape")
            await self.wait(lambda u: not u["menu_visible"], 10, "closed menu")

    def item(self, ui: dict[str, Any], name: str) -> dict[str, Any]:
        for it in ui["items"]:
            if it["name"] == name:
                return it
        raise KeyError(f"no menu item {name!r} in {[i['name'] for i in ui['items']]}")

    async def click_item(self, name: str) -> None:
        ui = await self.open_menu()
        it = self.item(ui, name)
        assert it["enabled"], it
        x, y, w, h = it["rect"]
        self.desktop.click(x + w // 2, y + h // 2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class GjsLink:
    """gnome-extension/daemon.js under gjs, following the daemon on ``bus``."""

    def __init__(self, bus: str, log: Path) -> None:
        self.log = log
        self.events: list[dict[str, Any]] = []
        self._id = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.bus = bus
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> GjsLink:
        self.proc = await asyncio.create_subprocess_exec(
            "gjs", "-m", str(GJS_DRIVER), self.bus, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=self.log.open("ab"))
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            ev = json.loads(line)
            ev["t"] = time.monotonic()
            self.events.append(ev)

    @property
    def presentation(self) -> dict[str, Any]:
        changes = [e for e in self.events if e["ev"] == "change"]
        return changes[-1]["presentation"] if changes else {}

    @property
    def generation(self) -> int:
        changes = [e for e in self.events if e["ev"] == "change"]
        return int(changes[-1]["gen"]) if changes else 0

    async def wait(self, pred: Callable[[dict[str, Any]], Any], timeout_s: float,
                   what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.presentation and pred(self.presentation):
                return self.presentation
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise TimeoutError(f"gjs: no {what} within {timeout_s} s; it shows "
                           f"{self.presentation}; log: {self.log.read_text()[-2000:]}")

    async def wait_icon(self, icon: str, timeout_s: float = 30) -> dict[str, Any]:
        return await self.wait(lambda p: p["icon"] == icon, timeout_s, f"{icon} state")

    async def signal(self, name: str, after: float, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in self.events:
                if e["ev"] == "signal" and e["name"] == name and e["t"] >= after:
                    return dict(e["payload"])
            await asyncio.sleep(0.1)
        raise TimeoutError(f"gjs: no {name} signal within {timeout_s} s")

    async def call(self, op: str, *args: Any, timeout_s: float = 120) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self._id += 1
        cid = self._id
        self.proc.stdin.write((json.dumps({"id": cid, "op": op, "args": list(args)}) + "\n")
                              .encode())
        await self.proc.stdin.drain()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in self.events:
                if e["ev"] == "reply" and e["id"] == cid:
                    return e
            await asyncio.sleep(0.05)
        raise TimeoutError(f"gjs: no reply to {op} within {timeout_s} s")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with suppress(OSError, ConnectionError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"op": "quit"}\n')
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


class Monitor:
    """A bus monitor (org.freedesktop.DBus.Monitoring): every method call to ``dest``, with
    its sender and header flags, as the daemon receives it."""

    def __init__(self, address: str, dest: str) -> None:
        self.address, self.dest = address, dest
        self.calls: list[dict[str, Any]] = []
        self.bus: MessageBus | None = None

    async def start(self) -> Monitor:
        self.bus = await MessageBus(bus_address=self.address).connect()
        rule = f"type='method_call',destination='{self.dest}'"
        reply = await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus.Monitoring", member="BecomeMonitor",
            signature="asu", body=[[rule], 0]))
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN, reply

        def on(msg: Message) -> bool:
            if msg.message_type == MessageType.METHOD_CALL and msg.destination == self.dest:
                self.calls.append({"member": msg.member, "interface": msg.interface,
                                   "sender": msg.sender, "flags": int(msg.flags.value),
                                   "body": msg.body, "t": time.monotonic()})
            return True  # a monitor must never answer
        self.bus.add_message_handler(on)
        return self

    def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
