"""The CPU time of every process a workload ran, from the kernel's process accounting.

Tier 1 reads /proc twice and never sees a process that started and ended between the
reads: the 39 short jobs of a long-tail batch are invisible to it, the long job looks like
a program running alone. BSD process accounting (``acct(2)``, CONFIG_BSD_PROCESS_ACCT_V3)
writes one record per exited process with its command name and CPU time, so the shape of
the work (one long job among many short ones, or equal workers) is measured, not guessed.

Standard library only: the lab guest runs ``python3 -m schedcpd.analysis.tier2.exits
-- CMD`` with the host's bare interpreter. Accounting is machine-wide while it is on:
records of processes that are not the command's descendants are left out by pid.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

AHZ = 100  # acct_v3 times are in 1/100 s on every architecture Linux builds it for
RECORD = struct.Struct("<ccHIIIIIIIHHHHHHHH16s")  # struct acct_v3, 64 bytes
ACCT_V3 = 3
TOP = 5
# A job that kept more CPUs than this busy on average ran in parallel: not one long job.
PARALLEL_CPUS = 1.5


class ExitsError(RuntimeError):
    """Accounting could not be switched on here (no root, no CONFIG_BSD_PROCESS_ACCT)."""


@dataclass(frozen=True)
class Exit:
    pid: int
    ppid: int
    comm: str
    cpu_s: float
    elapsed_s: float


def comp_t(v: int) -> float:
    """comp_t: 13-bit mantissa, 3-bit base-8 exponent."""
    return float((v & 0x1FFF) << (3 * ((v >> 13) & 0x7)))


def _float_bits(v: int) -> float:
    # acct_v3's ac_etime is an IEEE single-precision float in a u32.
    return float(struct.unpack("<f", struct.pack("<I", v))[0])


def parse(data: bytes) -> list[Exit]:
    out = []
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        f = RECORD.unpack_from(data, off)
        if f[1][0] != ACCT_V3:
            continue
        utime, stime = comp_t(f[10]), comp_t(f[11])
        comm = f[18].split(b"\0", 1)[0].decode(errors="replace")
        out.append(Exit(pid=f[6], ppid=f[7], comm=comm, cpu_s=(utime + stime) / AHZ,
                        elapsed_s=_float_bits(f[9]) / AHZ))
    return out


def descendants(exits: list[Exit], root: int) -> list[Exit]:
    """The records of ``root``'s descendants (records come in exit order, children first,
    so parents are learnt from every record before choosing)."""
    parent = {e.pid: e.ppid for e in exits}
    mine: list[Exit] = []
    for e in exits:
        p, seen = e.ppid, 0
        while p not in (root, 0, 1) and p in parent and seen < 64:
            p, seen = parent[p], seen + 1
        if p == root or e.pid == root:
            mine.append(e)
    return mine


def jobs(exits: list[Exit]) -> list[list[Exit]]:
    """The records grouped by job: one job per child of the process that started the most
    (a batch driver's tasks, each with whatever it ran: ``sh -c 'sort | uniq -c'`` is one
    job of three processes); a record outside that tree is a job of its own. The driver's
    own record is left out: starting and reaping the jobs is not one of them (a Python
    batch runner under TCG does a tenth of the batch's CPU work)."""
    children: dict[int, int] = {}
    for e in exits:
        children[e.ppid] = children.get(e.ppid, 0) + 1
    parent = {e.pid: e.ppid for e in exits}
    driver = max(children, key=lambda p: children[p], default=0)
    groups: dict[int, list[Exit]] = {}
    for e in exits:
        if e.pid == driver:
            continue
        head, seen = e.pid, 0
        while parent.get(head) not in (driver, None) and seen < 64:
            head, seen = parent[head], seen + 1
        groups.setdefault(head if parent.get(head) == driver else e.pid, []).append(e)
    return list(groups.values())


def summarize(exits: list[Exit]) -> dict[str, Any]:
    """The work's shape in a few numbers: how many processes, how their CPU time spreads,
    and whether one long job stands out (``long_comm``: its busiest process's name;
    ``parallel_comm`` when the job that stands out ran on several CPUs at once)."""
    busy = sorted((e for e in exits if e.cpu_s > 0), key=lambda e: -e.cpu_s)
    total = sum(e.cpu_s for e in busy)
    cpus = sorted(e.cpu_s for e in busy)
    out: dict[str, Any] = {"probe": "exits", "processes": len(exits), "busy": len(busy),
                           "cpu_total_s": round(total, 2),
                           "cpu_max_s": round(cpus[-1], 2) if cpus else 0.0,
                           "cpu_p50_s": round(cpus[len(cpus) // 2], 3) if cpus else 0.0,
                           "top": [{"comm": e.comm, "cpu_s": round(e.cpu_s, 2),
                                    "elapsed_s": round(e.elapsed_s, 2)} for e in busy[:TOP]]}
    work = sorted(((sum(e.cpu_s for e in j), j) for j in jobs(exits)
                   if any(e.cpu_s > 0 for e in j)), key=lambda w: -w[0])
    out["jobs"] = len(work)
    jobs_cpu = sum(w[0] for w in work)
    # One long job: it did a quarter of the jobs' work, at least twice the next one, among
    # at least five other jobs that did some. Jobs, not processes: a task that is a
    # pipeline spreads its work over several.
    if len(work) >= 6 and work[0][0] >= 0.25 * jobs_cpu and work[0][0] >= 2 * work[1][0]:
        cpu, job = work[0]
        comm = max(job, key=lambda e: e.cpu_s).comm
        # Its wall time: the job's first process outlives the ones it started.
        wall = max(e.elapsed_s for e in job)
        if cpu > PARALLEL_CPUS * wall:
            # Parallel workers (stress-ng's hogs beside a few shell commands) are no long
            # tail: nothing waits on one CPU for them, and favouring them takes every CPU.
            out["parallel_comm"] = comm
        else:
            out["long_comm"] = comm
            out["long_share"] = round(cpu / jobs_cpu, 3)
    return out


def _acct(path: str | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    arg = None if path is None else path.encode()
    if libc.acct(arg) != 0:
        err = ctypes.get_errno()
        raise ExitsError(f"acct({path!r}) failed: {os.strerror(err)}")


def run(argv: list[str]) -> tuple[int, dict[str, Any]]:
    """Run ``argv`` with accounting on; its exit status and the summary of its processes."""
    with tempfile.NamedTemporaryFile(prefix="schedcp-acct-") as f:
        _acct(f.name)
        try:
            proc = subprocess.Popen(argv, stdout=sys.stderr)
            rc = proc.wait()
        finally:
            _acct(None)
        return rc, summarize(descendants(parse(f.read()), proc.pid))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python3 -m schedcpd.analysis.tier2.exits -- CMD...", file=sys.stderr)
        return 2
    try:
        rc, summary = run(args)
    except (ExitsError, OSError) as exc:
        print(f"exits: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({**summary, "exit": rc}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
