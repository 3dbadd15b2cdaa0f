"""SIGKILL the daemon at random points of verification and deployment; every restart must
find a consistent store, no orphan lab or loader process, and records that agree with
what the kernel runs."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.daemon.test_daemon_lab import policies_with_test_ones
from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess, Signals
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab

KILLS = 20
CONFIG = """mode = "auto"
[canary]
interval_s = 0.3
window_s = 2.0
regression_window_s = 2.0
regression_threshold = 5.0
absolute_floor = 0.9
[verifier]
dynamic = "quick"
"""
LIVE = ("attaching", "canary", "good")


def kill_and_check_children(d: DaemonProcess) -> list[str]:
    """SIGKILL the daemon; the lab processes it had started that are still alive after."""
    assert d.proc is not None
    children = [int(p.split()[0]) for p in lab_processes(parents=(d.proc.pid,))]
    d.kill()
    deadline = time.monotonic() + 5
    while True:
        alive = [str(pid) for pid in children if running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed child waits for a reaper, but it is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def store_problems(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        bad = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
        bad += [f"fk {r}" for r in con.execute("PRAGMA foreign_key_check")]
        live = con.execute("SELECT id, policy, state FROM deployments WHERE state IN "
                           "('attaching', 'canary', 'good')").fetchall()
        if len(live) > 1:
            bad.append(f"more than one live deployment: {live}")
        return bad
    finally:
        con.close()


async def consistent_after_restart(d: DaemonProcess) -> str:
    """The records after reconciliation agree with the kernel; returns the active policy."""
    c = await d.client(timeout_s=180)
    try:
        st = await c.status()
        hist = await c.tool("deployment_history", limit=200)
        live = [x for x in hist["deployments"] if x["state"] in LIVE]
        if st["active_policy"]:
            assert st["sched_ext_state"] == "enabled", st
            assert st["sched_ext_ops"] == f"schedcp_{st['active_policy']}", st
            assert [x["policy"] for x in live] == [st["active_policy"]], live
        else:
            assert st["sched_ext_state"] == "disabled" and live == [], (st, live)
        approved = await c.tool("list_proposals", status="approved")
        assert approved == [], "an approved proposal must be deployed or failed after restart"
        return str(st["active_policy"])
    finally:
        c.close()


async def test_sigkill_at_random_points_always_reconciles(tmp_path: Path) -> None:
    rng = random.Random(2509)
    cfg = tmp_path / "schedcpd.toml"
    cfg.write_text(CONFIG)
    env = {"SCHEDCP_POLICIES_DIR": str(policies_with_test_ones(tmp_path / "policies"))}
    with private_bus(tmp_path) as bus:
        d = DaemonProcess(bus, tmp_path / "state", cfg, "--target", "vm", env=env)
        try:
            # Warm-up without a kill: both objects verified once (the store remembers them).
            d.start()
            c = await d.client(timeout_s=180)
            sig = Signals()
            await c.on_signals(sig)
            for policy in ("fifo", "vtime"):
                t = time.monotonic()
                await c.tool("optimize", target="warm-up", policy=policy)
                await sig.wait("PolicyDeployed", 900, after=t)
            c.close()
            kill_points: list[float] = []
            for i in range(KILLS):
                assert kill_and_check_children(d) == [], f"kill {i}: orphans"
                assert store_problems(d.state_dir / "schedcp.db") == [], f"kill {i}"
                d.start()
                await consistent_after_restart(d)
                c = await d.client()
                await c.tool("optimize", target=f"kill {i}", policy=("fifo", "vtime")[i % 2])
                c.close()
                kill_points.append(rng.uniform(0.0, 6.0))
                await asyncio.sleep(kill_points[-1])
            assert kill_and_check_children(d) == []
            d.start()
            await consistent_after_restart(d)
            assert d.proc is not None
            pid = d.proc.pid
            assert d.stop() == 0
            assert lab_processes(parents=(pid,)) == []
        finally:
            d.kill()  # a failed run must not leave its daemon running
    log = d.log.read_text(errors="replace")
    assert log.count("schedcpd ready") == KILLS + 2, "every restart came up"
