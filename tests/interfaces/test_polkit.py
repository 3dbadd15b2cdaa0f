"""polkit, the third way to a mutating method: a real polkitd on the package's bus, with
the shipped actions and one site rule, decides for a caller that is neither root nor in
the schedcp group. polkitd runs in its own mount namespace, where the actions and rules
directories are this test's, so the host's polkit configuration is neither read nor
changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedcpd.client import DaemonClient
from tests.interfaces.conftest import DBUS_DIR
from tests.interfaces.test_interfaces import MUTATING_CALLS, busctl_as_nobody

pytestmark = pytest.mark.lab

POLKITD = Path("/usr/lib/polkit-1/polkitd")
# The site grants `nobody` one action; everything else keeps the shipped defaults
# (auth_admin), which no agent can answer here.
RULES = """polkit.addRule(function(action, subject) {
    if (action.id == "org.schedcp.set-mode" && subject.user == "nobody")
        return polkit.Result.YES;
});
"""


@pytest.fixture(scope="module")
def polkitd(bus_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not POLKITD.exists():
        pytest.fail(f"{POLKITD} missing: make setup installs polkitd")
    tmp = tmp_path_factory.mktemp("polkit")
    for d in ("actions", "rules", "empty"):
        (tmp / d).mkdir()
    shutil.copy(DBUS_DIR / "org.schedcp.policy", tmp / "actions")
    (tmp / "rules" / "50-schedcp-test.rules").write_text(RULES)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
    binds = (f"mount --bind {tmp}/actions /usr/share/polkit-1/actions && "
             f"mount --bind {tmp}/rules /etc/polkit-1/rules.d && "
             f"mount --bind {tmp}/empty /usr/share/polkit-1/rules.d && "
             f"exec {POLKITD} --no-debug")
    log = (tmp / "polkitd.log").open("w")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             binds], env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus_address},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_name(bus_address, "org.freedesktop.PolicyKit1", proc)
        yield
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def wait_for_name(bus: str, name: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = subprocess.run(["busctl", f"--address={bus}", "status", name],
                             capture_output=True, text=True)
        if res.returncode == 0:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"polkitd exited {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not appear on the bus")


async def test_polkit_grants_what_the_rules_grant_and_nothing_else(
        polkitd: None, client: DaemonClient, bus_address: str) -> None:
    before = (await client.status())["mode"]
    other = "observe" if before != "observe" else "ask"
    try:
        res = busctl_as_nobody(bus_address, "SetMode", "s", other)
        assert res.returncode == 0, res.stderr
        assert (await client.status())["mode"] == other
        # The same capability through CallTool asks for the same action.
        res = busctl_as_nobody(bus_address, "CallTool", "ss", "set_mode",
                               json.dumps({"mode": before}))
        assert res.returncode == 0, res.stderr
        assert (await client.status())["mode"] == before
        for method, call in MUTATING_CALLS.items():
            if method == "SetMode":
                continue
            res = busctl_as_nobody(bus_address, method, *call)
            assert res.returncode != 0
            assert "needs root, the schedcp group or polkit" in res.stderr, (method, res.stderr)
        # Granted calls are recorded as the caller's, not the daemon's.
        audit = (await client.tool("deployment_history", limit=2, action="set_mode"))["audit"]
        assert [(e["subject"], e["actor"].split(" (")[0]) for e in audit] == \
            [(before, "uid 65534"), (other, "uid 65534")], audit
    finally:
        await client.tool("set_mode", mode=before)
