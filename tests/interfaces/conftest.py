"""One real daemon for the whole package (one lab guest boot), on a private dbus-daemon
whose configuration includes the shipped bus policy (dbus/org.schedcp.Daemon1.conf), as
/etc/dbus-1/system.d would; the socket is reachable by `nobody`, so the same bus shows what
an unprivileged caller may do."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message

from schedcpd.client import DaemonClient
from schedcpd.dbus_service import BUS_NAME, INTERFACE, OBJECT_PATH
from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]
DBUS_DIR = ROOT / "dbus"


@pytest.fixture(scope="package")
def bus_address() -> Iterator[str]:
    # Not under pytest's tmp (0700): `nobody` must reach the socket.
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-bus-"))
    tmp.chmod(0o755)
    extra = ('<policy context="default"><allow user="*"/></policy>\n'
             f'<include>{DBUS_DIR / "org.schedcp.Daemon1.conf"}</include>')
    try:
        with private_bus(tmp, extra) as address:
            yield address
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="package")
def daemon(bus_address: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DaemonProcess]:
    tmp = tmp_path_factory.mktemp("daemon")
    cfg = tmp / "schedcpd.toml"
    cfg.write_text('mode = "ask"\n')
    d = DaemonProcess(bus_address, tmp / "state", cfg, "--target", "vm")
    d.start()
    try:
        yield d
    finally:
        assert d.stop() == 0, d.tail()


@pytest.fixture
async def client(daemon: DaemonProcess) -> AsyncIterator[DaemonClient]:
    c = await daemon.client(timeout_s=180)
    yield c
    c.close()


async def raw_call(c: DaemonClient, member: str, signature: str = "", *body: Any,
                   interface: str = INTERFACE) -> Message:
    """The daemon's reply as it is (a return or a named error), no translation."""
    reply = await c.bus.call(Message(destination=BUS_NAME, path=OBJECT_PATH,
                                     interface=interface, member=member,
                                     signature=signature, body=list(body)))
    assert reply is not None, member
    return reply


async def snapshot(c: DaemonClient) -> tuple[Any, ...]:
    """What a refused call must leave as it was: the status, the proposals, the audit."""
    return (await c.status(), await c.call("ListProposals"),
            await c.tool("deployment_history", limit=20))
