"""A long-lived lab session (the `vm` deployment target), on the real kernel: one boot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.bpf.toolchain import build_object
from schedcpd.lab import SchedulerLoad
from schedcpd.lab.session import GuestPanic, LabSession, SessionError
from schedcpd.lab.vm import LAB_ATTEMPTS
from tests.lab.test_lab import HERE
from tests.support.processes import lab_processes

pytestmark = pytest.mark.lab


async def test_session_attach_watch_eject_detach(tmp_path: Path) -> None:
    fifo = prepare_policy("fifo", {"slice_us": 3000}, tmp_path / "fifo")
    never = SchedulerLoad(build_object(HERE / "never_dispatch.bpf.c", tmp_path).path)
    # Five attaches and detaches flip sched_ext's static keys, where the lab's TCG fault
    # strikes (README, "Guest panics"): a guest that panics is a lab fault, and the whole
    # scenario runs again in a fresh boot, as run_steps reruns a step.
    for attempt in range(1, LAB_ATTEMPTS + 1):
        try:
            async with LabSession() as s:
                await attach_watch_eject_detach(s, fifo, never)
            break
        except GuestPanic:
            if attempt == LAB_ATTEMPTS:
                raise
    assert lab_processes() == []


async def attach_watch_eject_detach(s: LabSession, fifo: SchedulerLoad,
                                    never: SchedulerLoad) -> None:
    assert s.kernel
    r = await s.run("echo hello", 10)
    assert (r.exit_status, r.stdout) == (0, "hello\n")

    st = await s.attach(fifo)
    assert st.attached and st.ops == "schedcp_fifo", st
    with pytest.raises(SessionError, match="already attached"):
        await s.attach(fifo)

    job = await s.spawn("n=0; while [ $n -lt 200000 ]; do n=$((n+1)); done; echo spun")
    first = await s.metrics()
    await asyncio.sleep(1.0)
    second = await s.metrics()
    assert second.state == "enabled" and second.loader_alive
    assert second.cpu_busy_jiffies > first.cpu_busy_jiffies, "the workload burns CPU"
    while (done := await s.poll(job)) is None:
        await asyncio.sleep(0.2)
    assert done.exit_status == 0 and done.stdout == "spun\n"

    st = await s.detach()
    assert st.state == "disabled" and not st.loader_alive
    assert st.sched_exit is not None and st.sched_exit.kind_name == "UNREG"

    # A scheduler the kernel ejects: the session sees the loader gone and the reason.
    st = await s.attach(never)
    for _ in range(100):
        st = await s.sched_state()
        if not st.loader_alive:
            break
        await asyncio.sleep(0.2)
    assert not st.loader_alive and st.state == "disabled"
    assert st.sched_exit is not None and st.sched_exit.is_stall, st
    assert any("runnable task stall" in ln for ln in await s.dmesg())

    # The guest survives and the slot is free again.
    assert (await s.attach(fifo)).attached
