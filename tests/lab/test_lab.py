"""The lab end to end, on the real sched_ext kernel under qemu.

Boots are the expensive part (several seconds under TCG), so the scenarios share boots:
one batch boots once and runs the good policies, the stalling scheduler, the verifier
rejection and a hanging command as steps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.bpf.toolchain import BuildError, build_object
from schedcpd.lab import GuestResult, SchedulerLoad, Step, run_in_guest, run_steps, workloads
from schedcpd.lab.session import GuestPanic, LabSession
from schedcpd.lab.vm import VMConfig
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab

HERE = Path(__file__).parent / "schedulers"
# 20 CPU-bound shell processes; each reports when it finishes.
TWENTY = (
    "for i in $(seq 1 20); do "
    "(n=0; while [ $n -lt 60000 ]; do n=$((n+1)); done; echo \"job $i done\") & "
    "done; wait"
)
HANG_LIMIT_S = 3
# Major page faults a python3 takes while it starts 20 programs that use its libc. Where the
# guest revalidates a shared file at each open, every start drops libc's cached pages and
# unmaps them from this process, which faults them in again from the host.
FAULTS_PY = """
import subprocess
def majflt():
    return int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[9])
subprocess.run(["/usr/bin/true"])
before = majflt()
for _ in range(20):
    subprocess.run(["/usr/bin/true"])
print("@faults majflt=%d" % (majflt() - before))
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GuestResult]:
    out = tmp_path_factory.mktemp("objs")
    steps = {
        "fifo": Step(TWENTY, 60, prepare_policy("fifo", {"slice_us": 5000}, out / "fifo")),
        "vtime": Step(TWENTY, 60, prepare_policy("vtime", None, out / "vtime")),
        "stall": Step("sleep 8; echo alive", 40,
                      SchedulerLoad(build_object(HERE / "never_dispatch.bpf.c", out).path)),
        "reject": Step("echo should-not-run", 20,
                       SchedulerLoad(build_object(HERE / "verifier_reject.bpf.c", out).path)),
        "hang": Step("sleep 1000", HANG_LIMIT_S),
        "faults": Step(f"grep ' /usr ' /proc/mounts; /usr/bin/python3 -c '{FAULTS_PY}'", 60),
        "after": Step("echo still-alive", 20),
    }
    results = asyncio.run(run_steps(list(steps.values())))
    return dict(zip(steps, results, strict=True))


@pytest.mark.parametrize("policy", ["fifo", "vtime"])
def test_policy_runs_twenty_processes_and_detaches(batch: dict[str, GuestResult],
                                                   policy: str) -> None:
    r = batch[policy]
    assert r.attached, r.loader_error
    assert r.state_before == "disabled"
    assert r.state_during == "enabled"
    assert r.ops_during == f"schedcp_{policy}"
    assert r.exit_status == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:-1]) == sorted(f"job {i} done" for i in range(1, 21))
    assert r.sched_exit is not None and r.sched_exit.kind_name == "UNREG", r.sched_exit
    assert not r.ejected
    assert r.state_after == "disabled"
    assert any(f'"schedcp_{policy}" enabled' in ln for ln in r.dmesg_sched_ext)


def test_scheduler_that_never_dispatches_is_ejected_as_stall(
        batch: dict[str, GuestResult]) -> None:
    r = batch["stall"]
    # The job's own shell stalls too, so it may only look after the ejection: the kernel's
    # log is the witness that the scheduler was enabled.
    assert r.attached
    assert any('"schedcp_never" enabled' in ln for ln in r.dmesg_sched_ext)
    assert r.sched_exit is not None and r.sched_exit.is_stall, r.sched_exit
    assert r.sched_exit.kind_name == "ERROR_STALL"
    assert "stall" in r.sched_exit.reason
    assert any("runnable task stall" in ln for ln in r.dmesg_sched_ext)
    # The watchdog hands the tasks back to the default scheduler: the command finishes.
    assert r.exit_status == 0 and r.stdout.strip() == "alive"
    assert r.state_after == "disabled"


def test_verifier_rejection_carries_the_verifier_log(batch: dict[str, GuestResult]) -> None:
    r = batch["reject"]
    assert not r.attached
    assert r.exit_status is None, "the command must not run without its scheduler"
    assert "map_value_or_null" in r.loader_error or "invalid mem access" in r.loader_error
    assert "load failed" in r.loader_error
    assert r.state_after == "disabled"


def test_compile_error_carries_the_compiler_message(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as err:
        build_object(HERE / "does_not_compile.bpf.c", tmp_path)
    assert "slice_that_does_not_exist" in err.value.output
    assert "error" in err.value.output
    assert not list(tmp_path.glob("*.o")), "no object may be left behind"


def test_hanging_command_is_stopped_at_its_limit(batch: dict[str, GuestResult]) -> None:
    r = batch["hang"]
    assert r.timed_out
    assert HANG_LIMIT_S - 0.5 <= r.wall_s < HANG_LIMIT_S + 5
    # ...and the guest carried on with the next step.
    assert batch["after"].stdout.strip() == "still-alive"


def test_the_guest_keeps_the_hosts_programs_cached(batch: dict[str, GuestResult]) -> None:
    """/usr is shared with full caching: starting a program does not take the pages of a
    library from the processes already using it (see vm.SHARES)."""
    r = batch["faults"]
    assert r.ok, r.summary()
    assert r.stdout.startswith("hostusr /usr virtiofs ro"), r.stdout
    assert workloads.details(r.stdout)["majflt"] <= 2, r.stdout


def test_no_qemu_or_virtiofsd_left_after_a_batch(batch: dict[str, GuestResult]) -> None:
    assert batch["after"].ok
    assert lab_processes() == []


async def test_cancelled_run_leaves_no_process() -> None:
    task = asyncio.create_task(run_in_guest("sleep 600", timeout_s=600))
    for _ in range(100):  # wait until qemu is really up
        await asyncio.sleep(0.1)
        if any("qemu-system" in p for p in lab_processes()):
            break
    assert any("qemu-system" in p for p in lab_processes())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lab_processes() == []


async def test_guest_kernel_panic_is_reported_and_retried() -> None:
    # A deliberate panic (sysrq crash) panics every retry too: the retries stop at their
    # limit, the finished step keeps its result, and the panic is reported, not hidden.
    before, crash, after = await run_steps([Step("echo before", 20),
                                            Step("echo c > /proc/sysrq-trigger", 20),
                                            Step("echo after", 20)])
    assert before.ok and before.stdout == "before\n" and not before.lab_retried
    assert crash.lab_retried and "Kernel panic" in crash.lab_panic
    assert "sysrq" in crash.lab_panic.lower()
    assert not crash.ok and not after.ok and after.lab_panic
    assert lab_processes() == []


async def test_guest_that_hangs_while_booting_is_a_retried_lab_fault() -> None:
    # An init that never speaks (busybox sleep) stands in for a TCG boot hang.
    hang = VMConfig(cmdline=VMConfig().cmdline + " rdinit=/bin/busybox -- sleep 3600",
                    boot_timeout_s=5)
    [r] = await run_steps([Step("echo never", 20)], config=hang)
    assert not r.ok and r.lab_retried
    assert "hung while booting (no sign of life within 5 s)" in r.lab_panic
    with pytest.raises(GuestPanic, match="hung while booting"):
        async with LabSession(hang):
            pass
    assert lab_processes() == []
