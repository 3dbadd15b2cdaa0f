"""Boot the sched_ext micro-VM for one job and always take it down again.

qemu runs under TCG (this machine's KVM cannot boot stock kernels) with the host root shared
over virtiofs. Both processes start in their own process group with a parent-death signal,
and are killed in a ``finally``: on success, failure, timeout, exception, cancellation or
Ctrl-C no qemu or virtiofsd outlives the call, and neither does one whose parent was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schedcpd.bpf import toolchain
from schedcpd.lab import image, kernel
from schedcpd.lab.job import SchedulerLoad, Step, job_archive
from schedcpd.lab.result import GuestResult, RawOutput, parse_channel, sched_exit_from

QEMU = "qemu-system-x86_64"
# Boots tried when the guest kernel panics (a lab fault; see run_steps).
LAB_ATTEMPTS = 3
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
# Boot, attach and power-off on top of the command's own limit (TCG boots in about 2 s).
BOOT_MARGIN_S = 30.0
STEP_MARGIN_S = 10.0
_PR_SET_PDEATHSIG = 1


class LabError(RuntimeError):
    """The lab could not run the job (missing set-up, qemu failure)."""


@dataclass(frozen=True)
class VMConfig:
    cpus: int = 2
    memory_mb: int = 1024
    # "max" is what LAB-NOTES measured; a qemu64-based model boots ~0.4 s faster but one
    # variant oopsed (int3 in __schedule while sched_ext patched its static keys) under TCG.
    cpu_model: str = "max"
    cmdline: str = "console=ttyS0 panic=-1 quiet loglevel=4"
    # A guest with no sign of life by then hung while booting (seen under TCG on a loaded
    # host, like the panics): a lab fault, retried like one. Alone a boot takes 2-5 s;
    # three guests on two cores, under 30 s.
    boot_timeout_s: float = 90.0


def _die_with_parent() -> None:
    # If this Python process is SIGKILLed, the kernel kills the child too.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def spawn_logged(*argv: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True, preexec_fn=_die_with_parent,
        )


async def kill_process(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Shielded: a second cancellation must not leave a zombie behind.
    await asyncio.shield(proc.wait())


async def _wait_for_socket(path: Path, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):
        if path.exists():
            return
        if proc.returncode is not None:
            raise LabError(f"virtiofsd exited: {log.read_text(errors='replace')[-2000:]}")
        await asyncio.sleep(0.01)
    raise LabError("virtiofsd did not create its socket within 2 s")


@dataclass(frozen=True)
class Share:
    """A host directory the guest mounts over virtiofs (read-only), by its tag."""

    tag: str
    source: str
    cache: str  # virtiofsd's cache mode

    def socket(self, d: Path) -> Path:
        return d / f"fs-{self.tag}.sock"


# The root revalidates what it caches (cache=auto): the host writes files a running session
# must see. /usr holds every tool and library (merged /usr) and does not change while a
# guest runs, so the guest caches it in full. Under cache=auto every open drops a file's
# cached pages and unmaps them from every process using it, and every exec opens its
# binary, ld.so and libc: a long awk beside 39 short ones slept on re-reads of its own code
# at each of their starts (116 voluntary switches, 11 s of its 37 s), and a short task's
# CPU time was mostly those faults. With /usr cached: 24 switches, short tasks 3-8x cheaper.
SHARES = (Share("hostroot", "/", "auto"), Share("hostusr", "/usr", "always"))


async def start_shares(d: Path) -> list[asyncio.subprocess.Process]:
    """One virtiofsd per share, its socket in ``d``; the caller kills them (``kill_process``)
    when the guest is done. If one fails to start, those already started are killed here."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for sh in SHARES:
            log = d / f"virtiofsd-{sh.tag}.log"
            proc = await spawn_logged(VIRTIOFSD, f"--socket-path={sh.socket(d)}", "-o",
                                      f"source={sh.source}", "-o", f"cache={sh.cache}",
                                      "-o", "sandbox=chroot", "-o", "log_level=err", log=log)
            procs.append(proc)
            await _wait_for_socket(sh.socket(d), proc, log)
    except BaseException:
        for proc in procs:
            await kill_process(proc)
        raise
    return procs


def qemu_argv(cfg: VMConfig, kinfo: kernel.KernelInfo, initrd: Path, shares_dir: Path,
              console: Path, channel: Path) -> list[str]:
    argv = [
        QEMU, "-accel", "tcg", "-cpu", cfg.cpu_model, "-smp", str(cfg.cpus),
        "-m", str(cfg.memory_mb),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(kinfo.boot_image), "-initrd", str(initrd), "-append", cfg.cmdline,
        "-object", f"memory-backend-memfd,id=mem,size={cfg.memory_mb}M,share=on",
        "-numa", "node,memdev=mem",
        "-serial", f"file:{console}", "-serial", f"file:{channel}",
    ]
    for n, sh in enumerate(SHARES):
        argv += ["-chardev", f"socket,id=fs{n},path={sh.socket(shares_dir)}",
                 "-device", f"vhost-user-fs-pci,chardev=fs{n},tag={sh.tag}"]
    return argv


async def run_steps(
    steps: list[Step],
    *,
    files: Mapping[str, bytes] | None = None,
    config: VMConfig | None = None,
) -> list[GuestResult]:
    """Boot the lab once and run ``steps`` in order, each under its own scheduler (or none).

    Each command runs as root in the guest, chrooted into the host's read-only root, in a
    fresh writable /tmp/job/s<N>/work; ``files`` appear under /tmp/job/files and whatever a
    command writes to /tmp/job/s<N>/out comes back in that step's ``GuestResult.files``.
    A step the guest never reached (it hung past the boot deadline) is reported as not run.
    """
    if not steps:
        raise ValueError("no steps to run")
    cfg = config or VMConfig()
    results, finished, panic = await _boot(steps, files, cfg)
    faults = [panic] if panic else []  # each distinct fault, in order: all are reported
    fruitless = 0 if finished else 1  # boots in a row that finished no step
    # The guest kernel died under us, at a kernel text-patching site (static keys,
    # flipped at boot and by sched_ext on every attach and detach): a lab fault under TCG,
    # not the step's. The unfinished steps run again in a fresh boot, marked as retried.
    # A long batch may be hit more than once, so only LAB_ATTEMPTS boots in a row that
    # finish nothing give up: a step that kills every boot is not a fault to wait out.
    # At most len(steps) + LAB_ATTEMPTS boots.
    while panic and finished < len(steps) and fruitless < LAB_ATTEMPTS:
        again, done, panic = await _boot(steps[finished:], files, cfg)
        if panic and panic not in faults:
            faults.append(panic)
        results = results[:finished] + [
            dataclasses.replace(r, lab_panic=said(faults), lab_retried=True) for r in again]
        finished += done
        fruitless = 0 if done else fruitless + 1
    if panic:
        results = [r if r.ok else dataclasses.replace(r, lab_panic=said(faults))
                   for r in results]
    return results


def said(faults: list[str]) -> str:
    """Distinct lab faults of one run, in order, as one message."""
    return "; then ".join(faults)


def hung_at_boot(cfg: VMConfig) -> str:
    return f"the guest hung while booting (no sign of life within {cfg.boot_timeout_s:g} s)"


async def _came_up(channel: Path, qemu: asyncio.subprocess.Process, cfg: VMConfig) -> bool:
    """Wait for the guest's first word on its channel; False if it hung while booting.
    A guest that exits first (a panic, or a very short job) counts as up: its console and
    channel say what happened."""
    end = time.monotonic() + cfg.boot_timeout_s
    while time.monotonic() < end:
        if qemu.returncode is not None or "release" in parse_channel(_head(channel)).boot:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(qemu.wait(), 0.2)
    return False


def kernel_panic(console: str) -> str:
    """The panic message if the guest kernel panicked, else ""."""
    for marker in ("Kernel panic - not syncing", "Oops:"):
        i = console.find(marker)
        if i >= 0:
            return console[i:i + 300].splitlines()[0]
    return ""


async def _boot(steps: list[Step], files: Mapping[str, bytes] | None,
                cfg: VMConfig) -> tuple[list[GuestResult], int, str]:
    """One boot: every step's result, how many steps finished, and a kernel panic if any."""
    kinfo = kernel.current()
    base, _ = image.ensure_base_image()
    needs_loader = any(st.scheduler for st in steps)
    loader = toolchain.ensure_loader()[0] if needs_loader else None
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schedcp-lab-") as tmp:
        d = Path(tmp)
        initrd = d / "initrd.cpio"
        console, channel = d / "console.log", d / "channel.txt"
        initrd.write_bytes(base.read_bytes() + job_archive(steps, loader, files))
        deadline = BOOT_MARGIN_S + sum(
            st.timeout_s + STEP_MARGIN_S + (st.scheduler.attach_timeout_s if st.scheduler else 0)
            for st in steps
        )
        fsds: list[asyncio.subprocess.Process] = []
        qemu = None
        try:
            fsds = await start_shares(d)
            qemu = await spawn_logged(*qemu_argv(cfg, kinfo, initrd, d, console, channel),
                                      log=d / "qemu.log")
            booted = await _came_up(channel, qemu, cfg)
            if booted:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(qemu.wait(), deadline - (time.monotonic() - t0))
        finally:
            await kill_process(qemu)
            for fsd in fsds:
                await kill_process(fsd)
        ch = parse_channel(log_tail(channel, 1 << 30))
        con = log_tail(console, 1 << 20)
        panic = kernel_panic(con) or ("" if booted else hung_at_boot(cfg))
        if "release" not in ch.boot and not panic:
            raise LabError(
                "the guest produced no result (boot failure?)\nqemu: "
                + log_tail(d / "qemu.log", 2000) + "\nconsole: " + log_tail(console)
            )
        total = time.monotonic() - t0
        release = ch.boot.get("release", kinfo.release)
        finished = 0
        while finished < len(steps) and "done" in ch.step(finished).kv:
            finished += 1
        results = [_result(release, ch.steps.get(n), total, con[-4000:])
                   for n in range(len(steps))]
        return results, finished, panic


async def run_in_guest(
    command: str,
    *,
    timeout_s: float = 60.0,
    scheduler: SchedulerLoad | None = None,
    files: Mapping[str, bytes] | None = None,
    config: VMConfig | None = None,
) -> GuestResult:
    """Boot the lab, optionally attach ``scheduler``, run ``command`` (sh) with a time limit."""
    step = Step(command=command, timeout_s=timeout_s, scheduler=scheduler)
    return (await run_steps([step], files=files, config=config))[0]


def _head(path: Path, n: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            return f.read(n).decode(errors="replace")
    except OSError:
        return ""


def log_tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _result(release: str, raw: RawOutput | None, total_s: float, console: str) -> GuestResult:
    raw = raw or RawOutput()
    kv, files = raw.kv, raw.files
    text = {k: v.decode(errors="replace") for k, v in files.items() if not k.startswith("out/")}
    dmesg = [ln for ln in text.get("dmesg.txt", "").splitlines() if "sched_ext" in ln]
    rc = int(kv["rc"]) if kv.get("rc", "").lstrip("-").isdigit() else None
    wall = _span(kv, "t0", "t1")
    # busybox timeout reports its SIGKILL as 128+9; a step that never finished hung too.
    timed_out = rc == 137 or ("t0" in kv and "done" not in kv)
    return GuestResult(
        kernel=release, exit_status=rc, timed_out=timed_out,
        stdout=text.get("cmd.out", ""), stderr=text.get("cmd.err", ""), wall_s=wall,
        total_s=total_s, state_before=kv.get("state_before", ""),
        state_during=kv.get("state_during", ""), state_after=kv.get("state_after", ""),
        ops_before=kv.get("ops_before", ""), ops_during=kv.get("ops_during", ""),
        ops_after=kv.get("ops_after", ""),
        attached="ATTACHED" in text.get("loader.out", ""),
        loader_error=text.get("loader.err", "").strip(),
        sched_exit=sched_exit_from(text.get("loader.out", ""), dmesg),
        dmesg_sched_ext=tuple(dmesg),
        files={k.removeprefix("out/"): v for k, v in files.items() if k.startswith("out/")},
        console_tail=console, attach_s=_span(kv, "ta0", "ta1"), detach_s=_span(kv, "td0", "td1"),
    )


def _span(kv: dict[str, str], start: str, end: str) -> float:
    """Seconds between two guest uptime stamps; 0 when either is missing."""
    try:
        return max(0.0, float(kv[end]) - float(kv[start]))
    except (KeyError, ValueError):
        return 0.0
