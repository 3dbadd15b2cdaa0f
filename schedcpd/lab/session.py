"""A long-lived lab guest driven over a control port: the `vm` deployment target.

One-shot runs (vm.run_steps) suit tests and verification. Deployment needs a guest that
stays up: a scheduler attached while a workload runs in the background, its metrics and
sched_ext state read live by the canary, the scheduler detached or replaced on demand.
The guest runs a small command loop on its third serial port (a unix socket on the host);
each request is one line ``ID VERB ARGS...`` and each reply one line
``@@R ID ok|err key=base64 ...``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import shlex
import tempfile
import time
from importlib import resources
from pathlib import Path
from types import TracebackType

from schedcpd.bpf import toolchain
from schedcpd.lab import image, kernel
from schedcpd.lab.cpio import Entry, archive
from schedcpd.lab.job import GUEST_PATH, MAX_OUTPUT_BYTES, SchedulerLoad
from schedcpd.lab.result import (
    CommandResult,
    GuestMetrics,
    SchedState,
    metrics_from_proc,
    sched_exit_from,
)
from schedcpd.lab.vm import (
    LAB_ATTEMPTS,
    LabError,
    VMConfig,
    hung_at_boot,
    kernel_panic,
    kill_process,
    log_tail,
    qemu_argv,
    said,
    spawn_logged,
    start_shares,
)

log = logging.getLogger("schedcpd.lab")
SESSION_SH = resources.files("schedcpd.lab").joinpath("guest/session.sh")


class SessionError(LabError):
    """The guest refused a request or stopped answering."""


class GuestPanic(SessionError):
    """The guest kernel panicked (or hung while booting): a lab fault; the session is gone
    and a fresh one is needed."""


class GuestRebooted(SessionError):
    """The guest panicked under a request and was booted again (the vm target does): the
    request's work is lost, and so is what ran there, a scheduler included; the next
    request works."""


def _decode(fields: list[str]) -> dict[str, str]:
    out = {}
    for item in fields:
        key, _, val = item.partition("=")
        out[key] = base64.b64decode(val).decode(errors="replace") if val else ""
    return out


class LabSession:
    """A booted guest. Use ``async with LabSession() as s:``; leaving always powers it off."""

    def __init__(self, config: VMConfig | None = None) -> None:
        self.config = config or VMConfig()
        self.kernel = ""
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._procs: list[asyncio.subprocess.Process] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LabSession:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Boot the guest. One that panics or hangs while booting (a lab fault under TCG,
        see vm.run_steps) is booted again, up to LAB_ATTEMPTS boots: nothing ran in it yet."""
        faults: list[str] = []
        for attempt in range(1, LAB_ATTEMPTS + 1):
            try:
                await self._boot()
                return
            except GuestPanic as exc:
                await self.close()
                if str(exc) not in faults:
                    faults.append(str(exc))
                log.warning("the lab guest failed to boot (attempt %d): %s", attempt, exc)
        raise GuestPanic(said(faults))

    async def _boot(self) -> None:
        kinfo = kernel.current()
        base, _ = image.ensure_base_image()
        loader, _ = toolchain.ensure_loader()
        self._tmp = tempfile.TemporaryDirectory(prefix="schedcp-session-", dir="/tmp")
        d = Path(self._tmp.name)
        script = (f"GUEST_PATH={GUEST_PATH}\nMAX_OUT={MAX_OUTPUT_BYTES}\n"
                  + SESSION_SH.read_text())
        job = archive([Entry("job", mode=0o040755),
                       Entry("job/session.sh", script.encode()),
                       Entry("job/schedcp-loader", loader.read_bytes(), mode=0o100755)])
        initrd, ctl = d / "initrd.cpio", d / "ctl.sock"
        initrd.write_bytes(base.read_bytes() + job)
        self._procs += await start_shares(d)
        argv = qemu_argv(self.config, kinfo, initrd, d, d / "console.log", d / "channel.txt")
        argv += ["-chardev", f"socket,id=ctl,path={ctl},server=on,wait=off",
                 "-serial", "chardev:ctl"]
        qemu = await spawn_logged(*argv, log=d / "qemu.log")
        self._procs.append(qemu)
        await self._connect_control(ctl, qemu)
        try:
            line = await asyncio.wait_for(self._read_until(b"@@READY"),
                                          self.config.boot_timeout_s)
        except TimeoutError:
            raise GuestPanic(f"{hung_at_boot(self.config)}: {self.console_tail()}") from None
        self.kernel = line.split()[1].decode()

    async def _connect_control(self, ctl: Path, qemu: asyncio.subprocess.Process) -> None:
        """Connect to qemu's control socket; it exists a moment before qemu listens on it."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(ctl), limit=1 << 26)
                return
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if qemu.returncode is not None or time.monotonic() > deadline:
                    assert self._tmp is not None
                    raise LabError(f"qemu's control socket is not available ({exc}): "
                                   + log_tail(Path(self._tmp.name) / "qemu.log", 2000)) \
                        from None
                await asyncio.sleep(0.02)

    def console_tail(self, n: int = 3000) -> str:
        return log_tail(Path(self._tmp.name) / "console.log", n) if self._tmp else ""

    async def _read_until(self, prefix: bytes) -> bytes:
        assert self._reader is not None
        while True:
            line = await self._reader.readline()
            if not line:
                raise self._lost()
            if line.startswith(prefix):
                return line.strip()

    def _lost(self) -> SessionError:
        """The error for a guest that went away: a kernel panic if the console shows one."""
        console = self.console_tail(1 << 20)
        if panic := kernel_panic(console):
            rip = next((ln.strip() for ln in console.splitlines() if "RIP:" in ln), "")
            return GuestPanic(f"the lab guest's kernel panicked: {panic}"
                              + (f" ({rip})" if rip else ""))
        return SessionError("the lab guest closed its control port: " + console[-3000:])

    async def request(self, verb: str, *args: str, timeout_s: float = 60.0) -> dict[str, str]:
        """Send one request and wait for its reply; an ``err`` reply raises SessionError."""
        if self._writer is None:
            raise SessionError("the session is not running")
        async with self._lock:
            rid = next(self._ids)
            try:
                self._writer.write(" ".join([str(rid), verb, *args]).encode() + b"\n")
                await self._writer.drain()
                line = await asyncio.wait_for(self._read_until(b"@@R %d " % rid), timeout_s)
            except TimeoutError:
                msg = f"the guest did not answer {verb} within {timeout_s} s"
                raise SessionError(msg) from None
            except ConnectionError:
                raise self._lost() from None
        parts = line.decode().split(" ")
        fields = _decode(parts[3:])
        if parts[2] != "ok":
            raise SessionError(f"{verb}: {fields.get('msg', 'refused')}")
        return fields

    @staticmethod
    def _b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult:
        """Run ``command`` (sh) in the guest and wait for it, killed at its limit."""
        f = await self.request("run", str(max(1, round(timeout_s))),
                               self._b64(command.encode()), timeout_s=timeout_s + 30)
        return CommandResult(int(f["rc"]), f["out"], f["err"], float(f["t1"]) - float(f["t0"]))

    async def spawn(self, command: str) -> str:
        """Start ``command`` in the background; returns a job id for poll / kill."""
        return (await self.request("spawn", self._b64(command.encode())))["job"]

    async def poll(self, job: str) -> CommandResult | None:
        f = await self.request("poll", job)
        if f["done"] != "1":
            return None
        return CommandResult(int(f["rc"]), f["out"], f["err"], float(f["t1"]) - float(f["t0"]))

    async def kill(self, job: str) -> None:
        await self.request("kill", job)

    def _sched(self, f: dict[str, str]) -> SchedState:
        return SchedState(state=f["state"], ops=f["ops"], loader_alive=f["alive"] == "1",
                          sched_exit=sched_exit_from(f["out"], []), loader_error=f["err"].strip())

    async def attach(self, load: SchedulerLoad) -> SchedState:
        args = " ".join(shlex.quote(a) for a in load.loader_args())
        script = f"exec /tmp/job/schedcp-loader /tmp/job/sched.bpf.o {args}\n"
        # The object travels through the host's /tmp (visible read-only in the guest), not
        # the serial port: the guest shell reads a port one byte per system call.
        assert self._tmp is not None
        name = f"obj-{next(self._ids)}.bpf.o"
        (Path(self._tmp.name) / name).write_bytes(load.object_path.read_bytes())
        rel = f"{Path(self._tmp.name).name}/{name}"
        f = await self.request("attach", rel, self._b64(script.encode()),
                               timeout_s=load.attach_timeout_s + 30)
        return self._sched(f)

    async def detach(self) -> SchedState:
        return self._sched(await self.request("detach"))

    async def sched_state(self) -> SchedState:
        return self._sched(await self.request("state"))

    async def metrics(self) -> GuestMetrics:
        f = await self.request("metrics")
        return metrics_from_proc(uptime=f["uptime"], state=f["state"],
                                 loader_alive=f["alive"] == "1", stat=f["stat"],
                                 loadavg=f["loadavg"], psi_cpu=f["psi"], ops=f["ops"])

    async def dmesg(self) -> list[str]:
        return [ln for ln in (await self.request("dmesg"))["dmesg"].splitlines() if ln]

    async def close(self) -> None:
        """Ask the guest to detach and power off; kill whatever is left either way."""
        t_end = time.monotonic() + 10
        if self._writer is not None:
            with contextlib.suppress(Exception):
                # This class's own request: an override that recovers from a lost guest
                # (VMTarget boots again) would call close() again from here, endlessly.
                await asyncio.wait_for(LabSession.request(self, "quit"), 5)
            qemu = self._procs[-1]  # started last, before the writer existed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(qemu.wait(), max(0.1, t_end - time.monotonic()))
            self._writer.close()
            self._writer = None
        for proc in reversed(self._procs):
            await kill_process(proc)
        self._procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
