"""The `local` target: this machine's own kernel, through sysfs and the schedcp loader.

The loader process holds the scheduler's struct_ops link; stopping it (SIGTERM) detaches
the scheduler, and if the daemon dies the kernel drops the link with the process, so the
machine falls back to its default scheduler on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import platform
import signal
import tempfile
import time
from pathlib import Path

from schedcpd.bpf import toolchain
from schedcpd.deploy.target import TargetError
from schedcpd.lab.job import MAX_OUTPUT_BYTES, SchedulerLoad
from schedcpd.lab.result import (
    CommandResult,
    GuestMetrics,
    SchedState,
    metrics_from_proc,
    sched_exit_from,
)

SCHED_EXT = Path("/sys/kernel/sched_ext")


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


class LocalTarget:
    name = "local"

    def __init__(self, sysfs: Path = SCHED_EXT) -> None:
        self.sysfs = sysfs
        self.kernel = platform.release()
        self._loader: asyncio.subprocess.Process | None = None
        self._loader_out = b""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._jobs: dict[str, tuple[asyncio.subprocess.Process,
                                    asyncio.Task[CommandResult]]] = {}
        self._ids = itertools.count(1)
        self._drainer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.sysfs.is_dir():
            raise TargetError(f"this kernel ({self.kernel}) has no sched_ext "
                              f"({self.sysfs} is missing): use the vm target")
        toolchain.ensure_loader()
        self._tmp = tempfile.TemporaryDirectory(prefix="schedcp-local-")

    async def close(self) -> None:
        await self.detach()
        for job in list(self._jobs):
            await self.kill(job)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _state(self) -> tuple[str, str]:
        return (_read(self.sysfs / "state").strip() or "unsupported",
                _read(self.sysfs / "root" / "ops").strip())

    def _loader_alive(self) -> bool:
        return self._loader is not None and self._loader.returncode is None

    async def sched_state(self) -> SchedState:
        state, ops = self._state()
        return SchedState(state=state, ops=ops, loader_alive=self._loader_alive(),
                          sched_exit=sched_exit_from(self._loader_out.decode(errors="replace"),
                                                     []),
                          loader_error="")

    async def attach(self, load: SchedulerLoad) -> SchedState:
        if self._loader_alive():
            raise TargetError("a scheduler is already attached")
        proc = await asyncio.create_subprocess_exec(
            str(toolchain.loader_path()), str(load.object_path), *load.loader_args(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._loader, self._loader_out = proc, b""
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + load.attach_timeout_s
        while time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(),
                                              max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            self._loader_out += line
            if not line or line.startswith(b"ATTACHED"):
                break
        if not self._loader_out.startswith(b"ATTACHED"):
            err = await self._stop_loader()
            st = await self.sched_state()
            return SchedState(st.state, st.ops, False, st.sched_exit, err)
        self._drainer = asyncio.create_task(self._drain(proc))
        return await self.sched_state()

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._loader_out = (self._loader_out + line)[-MAX_OUTPUT_BYTES:]

    async def _stop_loader(self) -> str:
        proc, self._loader = self._loader, None
        if proc is None:
            return ""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        err = await proc.stderr.read() if proc.stderr else b""
        return err.decode(errors="replace").strip()

    async def detach(self) -> SchedState:
        await self._stop_loader()
        for _ in range(100):
            if self._state()[0] != "enabled":
                break
            await asyncio.sleep(0.02)
        return await self.sched_state()

    async def metrics(self) -> GuestMetrics:
        state, ops = self._state()
        return metrics_from_proc(uptime=_read("/proc/uptime"), state=state, ops=ops,
                                 loader_alive=self._loader_alive(), stat=_read("/proc/stat"),
                                 loadavg=_read("/proc/loadavg"),
                                 psi_cpu=_read("/proc/pressure/cpu"))

    async def _shell(self, command: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, cwd=self._tmp.name if self._tmp else None)

    @staticmethod
    async def _collect(proc: asyncio.subprocess.Process, t0: float) -> CommandResult:
        out, err = await proc.communicate()
        return CommandResult(proc.returncode if proc.returncode is not None else -1,
                             out[:MAX_OUTPUT_BYTES].decode(errors="replace"),
                             err[:MAX_OUTPUT_BYTES].decode(errors="replace"),
                             time.monotonic() - t0)

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult:
        t0 = time.monotonic()
        proc = await self._shell(command)
        try:
            return await asyncio.wait_for(self._collect(proc, t0), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return CommandResult(137, "", "", time.monotonic() - t0)

    async def spawn(self, command: str) -> str:
        job = str(next(self._ids))
        proc = await self._shell(command)
        # Collected from the start, so a chatty job never blocks on a full pipe.
        self._jobs[job] = (proc, asyncio.create_task(self._collect(proc, time.monotonic())))
        return job

    async def poll(self, job: str) -> CommandResult | None:
        if job not in self._jobs:
            raise TargetError(f"no job {job}")
        _, task = self._jobs[job]
        if not task.done():
            return None
        del self._jobs[job]
        return task.result()

    async def kill(self, job: str) -> None:
        proc, task = self._jobs.pop(job, (None, None))
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if task is not None:
            await task
