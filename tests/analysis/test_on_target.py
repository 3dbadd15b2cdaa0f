"""Tier 1 taken on a deployment target through its shell (here the local target's, on
this host; the vm target's is exercised by the daemon's lab tests)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from schedcpd import paths
from schedcpd.analysis.on_target import command, probe_target, profile_target
from schedcpd.analysis.profile import ProfileError
from schedcpd.analysis.run_profile import START_MARK
from schedcpd.deploy.local import LocalTarget
from schedcpd.lab.job import guest_path


def test_the_vm_sees_the_package_where_the_guest_mounts_host_tmp() -> None:
    vm = command("vm", 1.0)
    assert vm.startswith(f"PYTHONPATH={guest_path(paths.REPO_ROOT)} "), vm
    assert command("local", 0.5).endswith("-m schedcpd.analysis.tier1 --interval 0.5")


async def test_profile_of_a_busy_local_target() -> None:
    spin = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        prof = await profile_target(LocalTarget(), 0.5, goals=("minimise makespan",))
    finally:
        spin.kill()
        spin.wait()
    assert prof.fingerprint and prof.goals == ("minimise makespan",)
    assert prof.characteristics["scope_cpu"] >= 0.5, prof
    # Among the busiest (other work on this machine may be busier still).
    top = [v for k, v in prof.characteristics.items() if k.endswith("_comm")]
    assert "sh" in top, prof


class BrokenPython(LocalTarget):
    def __init__(self, replacement: str) -> None:
        super().__init__()
        self.replacement = replacement

    async def run(self, command: str, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
        return await super().run(self.replacement, timeout_s)


@pytest.mark.parametrize("shell, words", [
    ("echo nope >&2; exit 3", "exit 3): nope"),
    ("echo '{\"ncpu\": 2}'", "unreadable summary"),
    ("true", "exit 0"),
])
async def test_a_failed_or_garbled_sample_is_a_clear_error(shell: str, words: str) -> None:
    with pytest.raises(ProfileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        await profile_target(BrokenPython(shell), 0.1)


def test_nothing_is_left_running() -> None:
    # profile_target runs to completion: no tier1 process outlives it.
    asyncio.run(profile_target(LocalTarget(), 0.1))
    out = subprocess.run(["pgrep", "-f", "schedcpd.analysis.tier1"], capture_output=True)
    assert out.stdout.strip() == b""


# Three spinners for 3 s (on this 2-core machine they compete), after a line that looks
# like a probe's output: the probe's answer must be its own, not the workload's.
SPINNERS = ("echo '{\"nprocs\": 999, \"processes\": []}'; "
            "for k in 1 2 3; do timeout 3 sh -c 'while :; do :; done; : schedcp-beside' & "
            "done; wait")


async def test_a_probe_beside_a_workload_sees_it_and_outlives_it() -> None:
    found = await probe_target(LocalTarget(), "top", 0.5, during=SPINNERS,
                               during_timeout_s=30)
    assert found["top_busy"] >= 3 and found["top_nprocs"] != 999, found
    # The probe came back after the workload ended, not while it still ran.
    left = subprocess.run(["pgrep", "-f", "schedcp-beside"], capture_output=True)
    assert left.stdout.strip() == b"", left.stdout


async def test_a_probe_beside_a_marked_workload_waits_for_its_mark() -> None:
    # 2 s of set-up (idle), then the mark and three spinners for 3 s: a probe 0.5 s after
    # the start would find nothing busy.
    marked = (f"sleep 2; echo {START_MARK}; "
              "for k in 1 2 3; do timeout 3 sh -c 'while :; do :; done' & done; wait")
    found = await probe_target(LocalTarget(), "top", 0.5, during=marked, during_timeout_s=30,
                               after_mark=True)
    assert found["top_busy"] >= 3, found


async def test_an_unknown_probe_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="unknown probe 'perf'"):
        await probe_target(LocalTarget(), "perf", 0.1, during="sleep 5")
