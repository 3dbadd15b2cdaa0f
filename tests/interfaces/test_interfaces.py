"""The daemon's interfaces against the package's one real daemon (conftest.py).

Through it: the MCP server over stdio (spawned by the SDK's own client), the schedcpctl
commands, the introspection XML against the live service, and the bus policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import introspection as intr
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, TextContent

from schedcpd import cli
from schedcpd.client import DaemonClient
from schedcpd.dbus_service import BUS_NAME, INTERFACE, OBJECT_PATH
from schedcpd.tools import REGISTRY
from tests.interfaces.conftest import DBUS_DIR, ROOT
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.lab

# The methods that change the system, and the tool each one calls.
MUTATING_METHODS = {"Optimize": "optimize", "Approve": "approve", "Reject": "reject",
                    "Rollback": "rollback", "SetMode": "set_mode"}
# Valid arguments for each (busctl's notation), so only the privilege check can refuse.
MUTATING_CALLS = {"Optimize": ("sa{sv}", "x", "0"), "Approve": ("s", "x"),
                  "Reject": ("ss", "x", "no"), "Rollback": ("s", "x"),
                  "SetMode": ("s", "auto")}
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def schedcpctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run a command in this process: exit code, the JSON last line (or None), stderr."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if "--json" in argv and lines else None, err


# --- MCP ---

def mcp_params(bus: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "schedcpd.cli", "mcp", "--bus", bus],
                                 cwd=str(ROOT))


def text_of(res: CallToolResult) -> str:
    block = res.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def result_json(res: CallToolResult) -> Any:
    assert not res.is_error, res.content
    return json.loads(text_of(res))


async def test_mcp_lists_every_tool_of_the_registry(client: DaemonClient,
                                                     bus_address: str) -> None:
    async with Client(mcp_params(bus_address), read_timeout_seconds=60) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(tools) == {t.name for t in REGISTRY.tools()}
    for t in REGISTRY.tools():
        assert tools[t.name].input_schema == t.schema
        assert tools[t.name].description == t.description
        notes = tools[t.name].annotations
        assert notes is not None and notes.read_only_hint is (not t.mutating)


async def test_mcp_tools_reach_the_daemon(client: DaemonClient, bus_address: str) -> None:
    async with Client(mcp_params(bus_address), read_timeout_seconds=60) as mcp:
        st = result_json(await mcp.call_tool("status", {}))
        assert st["target"] == "vm" and st["mode"] in ("ask", "auto", "observe")
        assert isinstance(result_json(await mcp.call_tool("list_proposals", {"limit": 5})),
                          list)
        assert result_json(await mcp.call_tool("set_mode", {"mode": "observe"})) == \
            {"mode": "observe"}
        assert (await client.status())["mode"] == "observe"
        hist = result_json(await mcp.call_tool("deployment_history",
                                               {"action": "set_mode", "limit": 5}))
        assert hist["audit"][0]["subject"] == "observe"
        assert hist["audit"][0]["actor"].startswith("uid 0")

        # The daemon's refusal comes back as a tool error naming the kind.
        res = await mcp.call_tool("episode", {"episode_id": "nosuch"})
        assert res.is_error and text_of(res).startswith("NotFound: ")
        assert res.structured_content == {"error": "NotFound",
                                          "message": "no episode 'nosuch'"}

        # A policy name the repository does not hold: the episode starts, then fails.
        ep = result_json(await mcp.call_tool("optimize", {"target": "t",
                                                          "policy": "no_such_policy"}))
        ep_id = ep["episode_id"]
        for _ in range(100):
            got = result_json(await mcp.call_tool("episode", {"episode_id": ep_id}))
            if got["state"] != "running":
                break
            await asyncio.sleep(0.1)
        assert got["state"] == "failed" and "no_such_policy" in got["detail"]


async def test_mcp_repository_and_profile_tools(client: DaemonClient,
                                                bus_address: str) -> None:
    # The first repository read syncs the library into the daemon's fresh store (the
    # model loads in the daemon then): a longer timeout than the other calls need.
    async with Client(mcp_params(bus_address), read_timeout_seconds=180) as mcp:
        listed = result_json(await mcp.call_tool("list_policies", {}))
        names = [p["name"] for p in listed]
        assert names == sorted(names) and {"fifo", "edf"} <= set(names)
        assert all(p["status"] != "retired" and p["provenance"] == "library" for p in listed)
        hits = result_json(await mcp.call_tool("list_policies",
                                               {"query": "show me edf", "limit": 3}))
        assert hits[0]["name"] == "edf" and len(hits) == 3
        assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
        fifo = result_json(await mcp.call_tool("get_policy", {"name": "fifo"}))
        assert fifo["tunables"][0] | {"description": ""} == {
            "name": "slice_us", "type": "u64", "default": 20000, "min": 500, "max": 100000,
            "description": ""}
        assert fifo["use_when"] and fifo["avoid_when"] and fifo["history"]["runs"] == 0
        prof = result_json(await mcp.call_tool("profile", {"interval_s": 0.5,
                                                           "goals": ["fairness"]}))
    assert prof["target"] == "vm" and prof["interval_s"] == 0.5
    assert prof["goals"] == ["fairness"] and prof["fingerprint"] and prof["description"]
    assert prof["characteristics"]["ncpu"] >= 1


@pytest.mark.parametrize("name,args,kind", [
    ("get_policy", {"name": "no_such_policy"}, "NotFound"),
    ("list_policies", {"status": ["gone"]}, "InvalidArgument"),
    ("list_policies", {"query": "x" * 1001}, "InvalidArgument"),
    ("profile", {"interval_s": 11}, "InvalidArgument"),
    ("optimize", {"target": "t", "policy": "Not-A-Name"}, "InvalidArgument"),
    ("set_mode", {"mode": "turbo"}, "InvalidArgument"),
    ("list_proposals", {"limit": 0}, "InvalidArgument"),
    ("status", {"unexpected": 1}, "InvalidArgument"),
    ("approve", {}, "InvalidArgument"),
    ("no_such_tool", {}, "NotFound"),
])
async def test_mcp_bad_input_is_a_named_error_and_changes_nothing(
        client: DaemonClient, bus_address: str, name: str, args: dict[str, Any],
        kind: str) -> None:
    before = await client.status()
    async with Client(mcp_params(bus_address), read_timeout_seconds=60) as mcp:
        res = await mcp.call_tool(name, args)
    assert res.is_error and text_of(res).startswith(f"{kind}: "), res.content
    after = await client.status()
    assert (after["mode"], after["state"], after["episodes_running"]) == \
        (before["mode"], before["state"], 0)


async def test_mcp_without_a_daemon_says_so(tmp_path: Path) -> None:
    async with Client(mcp_params(f"unix:path={tmp_path}/none"), read_timeout_seconds=60) \
            as mcp:
        res = await mcp.call_tool("status", {})
    assert res.is_error and "is schedcpd running" in text_of(res)


async def test_mcp_over_streamable_http_on_loopback(client: DaemonClient,
                                                    bus_address: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "schedcpd.cli", "mcp", "--http",
                               "--port", str(port), "--bus", bus_address], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", port))
                break
            await asyncio.sleep(0.05)
        async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} == \
                {t.name for t in REGISTRY.tools()}
            st = result_json(await mcp.call_tool("status", {}))
            assert st["target"] == "vm"
    finally:
        server.terminate()
        server.wait(10)


# --- schedcpctl ---

def test_cli_status_mode_and_history(daemon: DaemonProcess, bus_address: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    b = ("--bus", bus_address)
    code, st, _ = schedcpctl(capsys, "status", *b, "--json")
    assert code == 0 and st["target"] == "vm"
    assert schedcpctl(capsys, "mode", "ask", *b)[0] == 0
    code, st, _ = schedcpctl(capsys, "status", *b, "--json")
    assert st["mode"] == "ask"
    capsys.readouterr()
    assert cli.main(["status", *b]) == 0
    assert "mode:        ask" in capsys.readouterr().out
    code, hist, _ = schedcpctl(capsys, "history", *b, "--json", "--limit", "50")
    assert code == 0 and ("set_mode", "ask") in [(e["action"], e["subject"])
                                                 for e in hist["audit"]]
    code, props, _ = schedcpctl(capsys, "proposals", *b, "--json")
    assert code == 0 and isinstance(props, list)


def test_cli_refusals_exit_1_with_the_kind(daemon: DaemonProcess, bus_address: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    b = ("--bus", bus_address)
    code, res, err = schedcpctl(capsys, "approve", "nosuch", *b, "--json")
    assert code == 1 and "NotFound" in err and res["error"] == "NotFound"
    code, _, err = schedcpctl(capsys, "reject", "nosuch", "--reason", "no", *b)
    assert code == 1 and "NotFound: no proposal 'nosuch'" in err
    code, _, err = schedcpctl(capsys, "rollback", *b)
    assert code == 1 and "InvalidArgument: nothing is deployed" in err
    code, ep, _ = schedcpctl(capsys, "optimize", "cli test", "--policy", "no_such_policy",
                             "--param", "slice_us=5", "--wait", *b, "--json")
    assert code == 1 and ep["state"] == "failed" and "no_such_policy" in ep["detail"]


def test_cli_usage_and_unreachable_exit_codes(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["mode", "turbo"])
    assert e.value.code == 2
    assert schedcpctl(capsys, "optimize", "x", "--param", "novalue")[0] == 2
    code, _, err = schedcpctl(capsys, "status", "--bus", f"unix:path={tmp_path}/none")
    assert code == 3 and "is schedcpd running" in err


def test_cli_watch_prints_signals_as_they_come(daemon: DaemonProcess, bus_address: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    watch = subprocess.Popen([sys.executable, "-m", "schedcpd.cli", "watch", "--json",
                              "--bus", bus_address], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watch.stderr is not None and watch.stdout is not None
        assert "watching" in watch.stderr.readline()  # subscribed
        assert schedcpctl(capsys, "mode", "observe", "--bus", bus_address)[0] == 0
        seen = read_lines_until(watch.stdout, '"Mode": "observe"', timeout_s=30)
    finally:
        watch.terminate()
        watch.wait(10)
    got = [json.loads(line) for line in seen]
    assert {"signal": "PropertiesChanged", "payload": {"Mode": "observe"}} in \
        [{k: g[k] for k in ("signal", "payload")} for g in got]


def read_lines_until(stream: Any, marker: str, timeout_s: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                line = stream.readline()
                if not line:
                    break
                lines.append(line)
                if marker in line:
                    return lines
    raise AssertionError(f"no line with {marker!r}: {lines}")


# --- D-Bus: introspection and the bus policy ---

def _shape(iface: intr.Interface) -> dict[str, Any]:
    """What a caller depends on: names, argument types and directions, access."""
    return {
        "methods": {m.name: ([a.signature for a in m.in_args],
                             [a.signature for a in m.out_args]) for m in iface.methods},
        "signals": {s.name: [a.signature for a in s.args] for s in iface.signals},
        "properties": {p.name: (p.signature, p.access.value) for p in iface.properties},
    }


async def test_shipped_introspection_matches_the_live_service(client: DaemonClient) -> None:
    live = await client.bus.introspect(BUS_NAME, OBJECT_PATH)
    shipped = intr.Node.parse((DBUS_DIR / "org.schedcp.Daemon1.xml").read_text())
    pick = {i.name: i for i in shipped.interfaces}
    live_iface = next(i for i in live.interfaces if i.name == INTERFACE)
    assert _shape(pick[INTERFACE]) == _shape(live_iface)


def dbus_send_as_nobody(bus: str, member: str, *args: str,
                        interface: str = INTERFACE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, "dbus-send", f"--bus={bus}", "--print-reply",
                           f"--dest={BUS_NAME}", OBJECT_PATH, f"{interface}.{member}", *args],
                          capture_output=True, text=True, timeout=30)


def busctl_as_nobody(bus: str, member: str, signature: str = "", *args: str
                     ) -> subprocess.CompletedProcess[str]:
    """busctl (which also sets ALLOW_INTERACTIVE_AUTHORIZATION) as uid 65534."""
    return subprocess.run([*NOBODY, "busctl", f"--address={bus}", "call", BUS_NAME,
                           OBJECT_PATH, INTERFACE, member, *([signature, *args] if signature
                                                             else [])],
                          capture_output=True, text=True, timeout=60)


async def test_unprivileged_caller_reads_but_cannot_change(client: DaemonClient,
                                                            bus_address: str) -> None:
    before = await client.status()
    # The bus lets every method through; the daemon refuses (no polkit grants anything).
    for method, call in MUTATING_CALLS.items():
        res = busctl_as_nobody(bus_address, method, *call)
        assert res.returncode != 0
        # busctl prints the error's message, not its name
        assert "needs root, the schedcp group or polkit" in res.stderr, (method, res.stderr)
    for tool in MUTATING_METHODS.values():
        res = dbus_send_as_nobody(bus_address, "CallTool", f"string:{tool}", "string:{}")
        assert res.returncode != 0
        # Schema errors come first for tools with required arguments; give them valid ones.
        if "InvalidArgument" in res.stderr:
            args = {"optimize": {"target": "x"}, "approve": {"proposal_id": "x"},
                    "reject": {"proposal_id": "x"}, "set_mode": {"mode": "auto"}}[tool]
            res = dbus_send_as_nobody(bus_address, "CallTool", f"string:{tool}",
                                      f"string:{json.dumps(args)}")
        assert "org.schedcp.Error.PermissionDenied" in res.stderr, (tool, res.stderr)

    ok = dbus_send_as_nobody(bus_address, "Status")
    assert ok.returncode == 0 and '"mode"' in ok.stdout, ok.stderr
    ok = dbus_send_as_nobody(bus_address, "CallTool", "string:status", "string:{}")
    assert ok.returncode == 0 and "sched_ext_state" in ok.stdout, ok.stderr
    ok = dbus_send_as_nobody(bus_address, "GetPolicy", "string:fifo")
    assert ok.returncode == 0 and "slice_us" in ok.stdout, ok.stderr
    ok = dbus_send_as_nobody(bus_address, "ListPolicies", "string:")
    assert ok.returncode == 0 and '"edf"' in ok.stdout, ok.stderr
    ok = dbus_send_as_nobody(bus_address, "Get", f"string:{INTERFACE}", "string:Mode",
                             interface="org.freedesktop.DBus.Properties")
    assert ok.returncode == 0 and before["mode"] in ok.stdout, ok.stderr

    after = await client.status()
    assert (after["mode"], after["state"], after["episodes_running"]) == \
        (before["mode"], before["state"], 0)


def test_polkit_and_bus_policy_cover_every_mutating_method() -> None:
    assert set(MUTATING_CALLS) == set(MUTATING_METHODS)
    for method, tool in MUTATING_METHODS.items():
        assert REGISTRY.get(tool).mutating, method
    policy = ET.parse(DBUS_DIR / "org.schedcp.policy").getroot()
    actions = {a.get("id") for a in policy.iter("action")}
    # Every mutating tool's action is shipped, and nothing else is.
    assert actions == {t.action for t in REGISTRY.tools() if t.mutating}
    assert REGISTRY.get("set_mode").action == "org.schedcp.set-mode"
    conf = ET.parse(DBUS_DIR / "org.schedcp.Daemon1.conf").getroot()
    # The bus lets every method of the interface through to the daemon, which decides
    # (root, the group or polkit): a bus-level deny would leave polkit no say.
    assert not [d.attrib for d in conf.iter("deny") if d.get("send_interface") == INTERFACE]
    assert any(a.get("send_interface") == INTERFACE and a.get("send_member") is None
               for a in conf.iter("allow"))


def test_activation_file_names_the_bus_name_and_the_unit() -> None:
    lines = dict(line.split("=", 1) for line in
                 (DBUS_DIR / "org.schedcp.Daemon1.service").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert lines["Name"] == BUS_NAME and lines["SystemdService"] == "schedcpd.service"


# --- systemd ---

UNIT = ROOT / "systemd" / "schedcpd.service"


def unit_settings() -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            k, v = line.split("=", 1)
            got.setdefault(k.strip(), []).append(v.strip())
    return got


def test_unit_is_a_hardened_dbus_service() -> None:
    s = unit_settings()
    assert s["Type"] == ["dbus"] and s["BusName"] == [BUS_NAME]
    assert s["ProtectSystem"] == ["strict"] and s["ProtectHome"] == ["yes"]
    assert s["PrivateTmp"] == ["yes"] and s["NoNewPrivileges"] == ["yes"]
    assert set(s["ReadWritePaths"][0].split()) == {"/var/lib/schedcp", "/var/cache/schedcp"}
    caps = set(s["CapabilityBoundingSet"][0].split())
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"} <= caps
    assert not caps & {"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SETUID", "CAP_NET_RAW",
                       "CAP_SYS_BOOT", "CAP_MAC_ADMIN"}


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's schedcpd.
    exe = Path(sys.executable).parent / "schedcpd"
    unit = tmp_path / "schedcpd.service"
    unit.write_text(UNIT.read_text().replace("ExecStart=/usr/bin/schedcpd",
                                             f"ExecStart={exe}"))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    assert res.returncode == 0 and "schedcpd.service" not in res.stderr, res.stderr
