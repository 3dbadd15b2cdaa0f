"""The GNOME Shell extension without a Shell: its package, its files, and its state logic
(gnome-extension/daemon.js under gjs) giving the same answers as the tray's model. The
D-Bus side runs against the real daemon in test_desktop_lab.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from typing import Any

import pytest

from schedcpd.tray.model import (
    ICON_STATES,
    MODES,
    DaemonSnapshot,
    notification_for,
    present,
)
from tests.desktop.support import GJS_DRIVER, ROOT

EXT = ROOT / "gnome-extension"
NOW = time.mktime((2026, 5, 4, 12, 0, 0, 0, 0, -1))

if shutil.which("gjs") is None:  # a missing tool fails the suite rather than skipping it
    raise RuntimeError("gjs missing: scripts/setup-apt.sh installs it")


def gjs_model(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = subprocess.run(["gjs", "-m", str(GJS_DRIVER), "--model"], input=json.dumps(cases),
                         capture_output=True, text=True, timeout=60, check=True)
    res: list[dict[str, Any]] = json.loads(out.stdout)
    return res


def cases() -> list[dict[str, Any]]:
    base = {"State": "idle", "Mode": "ask", "ActivePolicy": "", "ActiveSince": 0.0,
            "PendingProposals": 0, "LastError": ""}
    prop = {"id": "p1", "policy": "ljf", "params": {"long_comms": "awk", "a": 2},
            "status": "pending", "rationale": "long tail", "created_at": NOW - 5}
    snaps: list[tuple[dict[str, Any], list[dict[str, Any]], bool]] = [
        ({}, [], False),
        (base, [], True),
        ({**base, "State": "optimizing"}, [], True),
        ({**base, "State": "proposal_waiting", "PendingProposals": 1}, [prop], True),
        ({**base, "State": "idle", "PendingProposals": 1}, [], True),
        ({**base, "State": "deployed", "ActivePolicy": "fifo", "ActiveSince": NOW - 75,
          "Mode": "auto"}, [], True),
        ({**base, "State": "deployed", "ActivePolicy": "fifo",
          "ActiveSince": NOW - 3 * 86400}, [], True),
        ({**base, "State": "rolled_back", "ActivePolicy": "ljf", "ActiveSince": NOW - 4000},
         [], True),
        ({**base, "State": "error", "LastError": "verifier: starved", "PendingProposals": 1},
         [prop], True),
        ({**base, "State": "from a newer daemon", "Mode": "observe"}, [], True),
    ]
    signals = [("ProposalCreated", prop), ("ProposalCreated", {**prop, "status": "approved"}),
               ("RolledBack", {"from": "fifo", "to": "default", "cause": "regression"}),
               ("RolledBack", {"from": "fifo", "to": "ljf", "cause": "requested"}),
               ("PolicyDeployed", {"policy": "fifo"})]
    out = []
    for i, (props, proposals, reachable) in enumerate(snaps):
        sig, payload = signals[i % len(signals)]
        out.append({"snapshot": {"reachable": reachable, "properties": props,
                                 "proposals": proposals, "target": "vm (kernel 7.3)",
                                 "bus": "system"},
                    "now": NOW, "signal": sig, "payload": payload})
    return out


def python_model(case: dict[str, Any]) -> dict[str, Any]:
    s = case["snapshot"]
    snap = DaemonSnapshot(bus=s["bus"])
    if s["reachable"]:
        snap.set_properties(s["properties"])
        snap.set_proposals(s["proposals"])
        snap.target = s["target"]
    pr = present(snap, case["now"])
    n = notification_for(case["signal"], case["payload"])
    return {"icon": pr.icon, "title": pr.title, "tooltip": pr.tooltip, "active": pr.active,
            "mode": pr.mode, "proposals": [(p.id, p.label) for p in pr.proposals],
            "can_act": pr.can_act, "can_rollback": pr.can_rollback, "error": pr.error,
            "notification": n and {"summary": n.summary, "body": n.body,
                                   "urgency": n.urgency}}


def test_the_extension_shows_what_the_tray_shows() -> None:
    cs = cases()
    for case, js in zip(cs, gjs_model(cs), strict=True):
        pr = js["presentation"]
        got = {"icon": pr["icon"], "title": pr["title"], "tooltip": pr["tooltip"],
               "active": pr["active"], "mode": pr["mode"],
               "proposals": [(p["id"], p["label"]) for p in pr["proposals"]],
               "can_act": pr["canAct"], "can_rollback": pr["canRollback"],
               "error": pr["error"], "notification": js["notification"]}
        assert got == python_model(case), case


def test_same_states_and_modes_and_an_icon_for_each() -> None:
    text = (EXT / "daemon.js").read_text()
    js_states = re.search(r"DAEMON_STATES = \[(.*?)\]", text, re.S)
    assert js_states is not None
    assert [*re.findall(r"'(\w+)'", js_states.group(1)), "offline"] == list(ICON_STATES)
    js_modes = re.search(r"MODES = \[(.*?)\]", text)
    assert js_modes is not None and re.findall(r"'(\w+)'", js_modes.group(1)) == list(MODES)
    for state in ICON_STATES:
        svg = EXT / "icons" / f"schedcp-{state.replace('_', '-')}-symbolic.svg"
        assert svg.is_file() and "<svg" in svg.read_text(), svg


def test_metadata_targets_esm_shells_and_names_the_schema() -> None:
    meta = json.loads((EXT / "metadata.json").read_text())
    assert meta["uuid"] == "schedcp@schedcp.org"
    assert all(int(v) >= 45 for v in meta["shell-version"]), meta["shell-version"]
    schema = (EXT / "schemas" / f"{meta['settings-schema']}.gschema.xml").read_text()
    assert f'id="{meta["settings-schema"]}"' in schema
    for key in ("bus", "notify", "show-policy"):
        assert f'name="{key}"' in schema
    subprocess.run(["glib-compile-schemas", "--strict", "--dry-run", str(EXT / "schemas")],
                   check=True, timeout=30)


@pytest.mark.parametrize("name", ["extension.js", "prefs.js"])
def test_shell_modules_parse_under_gjs(name: str) -> None:
    """Outside the Shell their Shell imports cannot resolve; gjs parses a module before it
    links its imports, so an ImportError (not a SyntaxError) means the file parsed."""
    res = subprocess.run(["gjs", "-m", str(EXT / name)], capture_output=True, text=True,
                         timeout=60)
    assert "SyntaxError" not in res.stderr, res.stderr
    assert "ImportError" in res.stderr and "resource:///org/gnome/" in res.stderr, res.stderr


def test_daemon_js_imports_nothing_from_the_shell() -> None:
    imports = re.findall(r"^import .* from '([^']+)';", (EXT / "daemon.js").read_text(), re.M)
    assert imports and all(i.startswith("gi://") and i[5:] in ("Gio", "GLib")
                           for i in imports), imports


def test_make_gnome_extension_packs_an_installable_zip() -> None:
    subprocess.run(["make", "-s", "gnome-extension"], cwd=ROOT, check=True, timeout=120,
                   capture_output=True)
    z = ROOT / "build" / "schedcp@schedcp.org.shell-extension.zip"
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
    assert {"metadata.json", "extension.js", "daemon.js", "prefs.js",
            "schemas/org.gnome.shell.extensions.schedcp.gschema.xml",
            "schemas/gschemas.compiled"} <= names, names
    assert meta["uuid"] == "schedcp@schedcp.org"
    assert len([n for n in names if n.startswith("icons/") and n.endswith(".svg")]) == len(
        ICON_STATES)


def test_the_autostart_desktop_file_is_valid() -> None:
    f = ROOT / "desktop" / "schedcp-tray.desktop"
    text = f.read_text()
    assert "Exec=schedcpctl tray" in text and "NotShowIn=GNOME;" in text
    if shutil.which("desktop-file-validate"):
        res = subprocess.run(["desktop-file-validate", str(f)], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr
