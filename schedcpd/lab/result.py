"""What one guest run produced, parsed from the guest's result channel (its second serial port)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

# enum scx_exit_kind, as the kernel defines it.
EXIT_KINDS = {
    0: "NONE", 1: "DONE", 0x40: "UNREG", 0x41: "UNREG_BPF", 0x42: "UNREG_KERN",
    0x43: "SYSRQ", 0x400: "ERROR", 0x401: "ERROR_BPF", 0x402: "ERROR_STALL",
}
# dmesg reasons, for objects that do not keep an exit record (not built on our headers).
_DMESG_REASONS = {
    "runnable task stall": 0x402, "scx_bpf_error": 0x401, "unregistered from user space": 0x40,
    "unregistered from BPF": 0x41, "unregistered from the main kernel": 0x42,
    "disabled by sysrq-S": 0x43, "internal error": 0x400,
}
_DISABLED_RE = re.compile(r'BPF scheduler "([^"]*)" disabled \(([^)]*)\)')


@dataclass(frozen=True)
class SchedExit:
    kind: int
    reason: str
    msg: str = ""
    exit_code: int = 0

    @property
    def kind_name(self) -> str:
        return EXIT_KINDS.get(self.kind, hex(self.kind))

    @property
    def is_error(self) -> bool:
        """The kernel ejected the scheduler (as opposed to a clean unregistration)."""
        return self.kind >= 0x400

    @property
    def is_stall(self) -> bool:
        return self.kind == 0x402


@dataclass(frozen=True)
class GuestResult:
    """A command's run in the lab guest, and what sched_ext did around it."""

    kernel: str
    exit_status: int | None  # None: the command never ran (boot or attach failed)
    timed_out: bool
    stdout: str
    stderr: str
    wall_s: float  # the command's own wall time in the guest
    total_s: float  # the whole cycle on the host: boot to power-off
    state_before: str
    state_during: str  # after attach, before the command ("" without a scheduler)
    state_after: str  # after detach
    ops_before: str
    ops_during: str
    ops_after: str
    attached: bool
    loader_error: str  # libbpf / verifier output when the scheduler did not attach
    sched_exit: SchedExit | None
    dmesg_sched_ext: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)  # what the job left in out/
    console_tail: str = ""
    attach_s: float = 0.0  # loader start to scheduler enabled (0 without a scheduler)
    detach_s: float = 0.0  # detach request to sched_ext disabled
    lab_panic: str = ""  # the guest kernel panicked during this step (a lab fault)
    lab_retried: bool = False  # ...and the step ran again in a fresh boot

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out

    @property
    def ejected(self) -> bool:
        return self.sched_exit is not None and self.sched_exit.is_error

    def summary(self) -> dict[str, object]:
        return {
            "kernel": self.kernel, "exit_status": self.exit_status, "timed_out": self.timed_out,
            "wall_s": round(self.wall_s, 3), "total_s": round(self.total_s, 3),
            "attach_s": round(self.attach_s, 3), "detach_s": round(self.detach_s, 3),
            "lab_panic": self.lab_panic, "lab_retried": self.lab_retried,
            "state_before": self.state_before, "state_during": self.state_during,
            "state_after": self.state_after, "ops": self.ops_during,
            "attached": self.attached,
            "exit_kind": self.sched_exit.kind_name if self.sched_exit else None,
            "exit_reason": self.sched_exit.reason if self.sched_exit else None,
        }


@dataclass
class RawOutput:
    kv: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Channel:
    """The guest's report: boot-wide values (``-``) and one RawOutput per step index."""

    boot: dict[str, str] = field(default_factory=dict)
    steps: dict[int, RawOutput] = field(default_factory=dict)
    done: bool = False

    def step(self, n: int) -> RawOutput:
        return self.steps.setdefault(n, RawOutput())


def parse_channel(text: str) -> Channel:
    """``@@KV step key value``, ``@@FILE step name base64`` and ``@@DONE``; the rest is noise."""
    ch = Channel()
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "@@DONE":
            ch.done = True
            continue
        if tag not in ("@@KV", "@@FILE"):
            continue
        idx, _, rest = rest.partition(" ")
        key, _, value = rest.partition(" ")
        if idx == "-":
            ch.boot[key] = value.strip()
            continue
        if not idx.isdigit():
            continue
        out = ch.step(int(idx))
        if tag == "@@KV":
            out.kv[key] = value.strip()
        else:
            try:
                out.files[key] = base64.b64decode(value.strip())
            except ValueError:
                out.files[key] = b""
    return ch


def sched_exit_from(loader_out: str, dmesg: list[str]) -> SchedExit | None:
    """The loader's exit record if it printed one, else what dmesg says."""
    for line in loader_out.splitlines():
        if line.startswith("EXIT "):
            try:
                d = json.loads(line[5:])
                return SchedExit(int(d["kind"]), str(d["reason"]), str(d["msg"]),
                                 int(d["exit_code"]))
            except (ValueError, KeyError):
                break
    for line in dmesg:
        m = _DISABLED_RE.search(line)
        if m:
            reason = m.group(2)
            kind = next((k for r, k in _DMESG_REASONS.items() if r in reason), 0x400)
            return SchedExit(kind, reason)
    return None


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    wall_s: float

    @property
    def timed_out(self) -> bool:
        return self.exit_status == 137


@dataclass(frozen=True)
class SchedState:
    state: str  # /sys/kernel/sched_ext/state
    ops: str
    loader_alive: bool
    sched_exit: SchedExit | None
    loader_error: str

    @property
    def attached(self) -> bool:
        return self.state == "enabled" and self.loader_alive


@dataclass(frozen=True)
class GuestMetrics:
    uptime_s: float
    state: str
    loader_alive: bool
    cpu_busy_jiffies: int
    cpu_total_jiffies: int
    loadavg: str
    psi_cpu: str  # /proc/pressure/cpu as read; "" where PSI is off
    ops: str = ""  # the running sched_ext ops, read with the rest

    @property
    def cpu_some_total_us(self) -> int | None:
        """Cumulative time some runnable task waited for a CPU (PSI), in microseconds."""
        for line in self.psi_cpu.splitlines():
            if line.startswith("some "):
                for item in line.split()[1:]:
                    key, _, val = item.partition("=")
                    if key == "total" and val.isdigit():
                        return int(val)
        return None


def _cpu_jiffies(stat: str) -> tuple[int, int]:
    for line in stat.splitlines():
        if line.startswith("cpu "):
            vals = [int(x) for x in line.split()[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            return sum(vals) - idle, sum(vals)
    return 0, 0


def metrics_from_proc(*, uptime: str, state: str, loader_alive: bool, stat: str, loadavg: str,
                      psi_cpu: str, ops: str = "") -> GuestMetrics:
    """One snapshot from the texts of /proc/uptime, /proc/stat, /proc/loadavg and PSI."""
    busy, total = _cpu_jiffies(stat)
    up = uptime.split()[0] if uptime.split() else "0"
    return GuestMetrics(uptime_s=float(up), state=state.strip(), loader_alive=loader_alive,
                        cpu_busy_jiffies=busy, cpu_total_jiffies=total,
                        loadavg=loadavg.strip(), psi_cpu=psi_cpu.strip(), ops=ops.strip())
