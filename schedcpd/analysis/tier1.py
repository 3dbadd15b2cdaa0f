"""Tier 1: a cheap summary of what the machine (or one workload) is doing, in <= 2 KB of JSON.

Two reads of /proc and /sys a short interval apart: CPU use per CPU, load, runnable and
blocked tasks, context switches, migrations and forks per second, PSI, memory, and the
top processes and cgroups by CPU with their run/sleep pattern; then the workload's
character in words. Standard library only, on purpose: the lab guest runs this module
with the host's bare python3 (``python3 -m schedcpd.analysis.tier1``), no venv needed.

The scope is the whole machine, one process tree (``pid``) or one cgroup (``cgroup``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 2048
TOP_N = 5
MAX_TASKS = 4096  # per-thread reads are bounded: a 10k-thread JVM must not stall a sample
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    state: str
    ticks: int  # utime + stime, all threads
    threads: int
    start: int = 0  # start time in ticks since boot: tells a reused pid from the same process
    vol: int = 0  # voluntary switches, summed over threads
    invol: int = 0
    migrations: int = 0


@dataclass
class Snapshot:
    t: float
    cpus: dict[str, list[int]]  # "cpu0" -> jiffies fields
    ctxt: int
    forks: int
    running: int
    blocked: int
    loadavg: tuple[float, float, float]
    psi_total: dict[str, int]  # resource -> "some" total (us)
    procs: dict[int, Proc] = field(default_factory=dict)
    has_sched: bool = False


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def parse_stat(text: str) -> tuple[dict[str, list[int]], dict[str, int]]:
    cpus: dict[str, list[int]] = {}
    counters: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("cpu"):
            cpus[parts[0]] = [int(x) for x in parts[1:]]
        elif len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return cpus, counters


def read_psi() -> dict[str, dict[str, float]]:
    """PSI 'some' lines per resource: avg10 (%) and total (us); empty where PSI is off."""
    out: dict[str, dict[str, float]] = {}
    for res in ("cpu", "memory", "io"):
        for line in read_text(f"/proc/pressure/{res}").splitlines():
            if line.startswith("some "):
                kv = dict(item.split("=") for item in line.split()[1:])
                out[res] = {"avg10": float(kv["avg10"]), "total": float(kv["total"])}
    return out


def _parse_pid_stat(pid: int, text: str) -> Proc | None:
    lp, rp = text.find("("), text.rfind(")")
    if lp < 0 or rp < 0:
        return None
    rest = text[rp + 2:].split()
    if len(rest) < 20:
        return None
    return Proc(pid=pid, ppid=int(rest[1]), comm=text[lp + 1:rp], state=rest[0],
                ticks=int(rest[11]) + int(rest[12]), threads=int(rest[17]),
                start=int(rest[19]))


def _add_sched(proc: Proc, budget: list[int]) -> bool:
    """Sum per-thread switch and migration counters from /proc/PID/task/*/sched."""
    try:
        tids = os.listdir(f"/proc/{proc.pid}/task")
    except OSError:
        return False
    seen = False
    for tid in tids[:256]:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        for line in read_text(f"/proc/{proc.pid}/task/{tid}/sched").splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "nr_voluntary_switches":
                proc.vol += int(val)
                seen = True
            elif key == "nr_involuntary_switches":
                proc.invol += int(val)
            elif key == "se.nr_migrations":
                proc.migrations += int(val)
    return seen


def read_procs() -> tuple[dict[int, Proc], bool]:
    procs: dict[int, Proc] = {}
    budget = [MAX_TASKS]
    has_sched = False
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        p = _parse_pid_stat(int(name), read_text(f"/proc/{name}/stat"))
        if p is None:
            continue
        has_sched = _add_sched(p, budget) or has_sched
        procs[p.pid] = p
    return procs, has_sched


def snapshot() -> Snapshot:
    cpus, counters = parse_stat(read_text("/proc/stat"))
    la = read_text("/proc/loadavg").split()
    procs, has_sched = read_procs()
    return Snapshot(t=time.monotonic(), cpus=cpus, ctxt=counters.get("ctxt", 0),
                    forks=counters.get("processes", 0),
                    running=counters.get("procs_running", 0),
                    blocked=counters.get("procs_blocked", 0),
                    loadavg=(float(la[0]), float(la[1]), float(la[2])) if la else (0, 0, 0),
                    psi_total={k: int(v["total"]) for k, v in read_psi().items()},
                    procs=procs, has_sched=has_sched)


@dataclass(frozen=True)
class Scope:
    pid: int | None = None
    cgroup: str | None = None

    def describe(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.cgroup is not None:
            return f"cgroup {self.cgroup}"
        return "system"


def cgroup_of(pid: int) -> str:
    """The process's cgroup v2 path, or its v1 cpu hierarchy path."""
    v1 = ""
    for line in read_text(f"/proc/{pid}/cgroup").splitlines():
        hid, ctrls, path = line.split(":", 2)
        if hid == "0" and ctrls == "":
            return path
        if "cpu" in ctrls.split(","):
            v1 = path
    return v1


def _descendants(root: int, procs: dict[int, Proc]) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def in_scope(scope: Scope, procs: dict[int, Proc]) -> set[int]:
    if scope.pid is not None:
        return _descendants(scope.pid, procs) & procs.keys()
    if scope.cgroup is not None:
        want = "/" + scope.cgroup.strip("/")
        return {pid for pid in procs
                if (cg := cgroup_of(pid)) == want or cg.startswith(want.rstrip("/") + "/")}
    # Not the sampler itself: it would rank among the busiest on a slow machine.
    return set(procs) - {os.getpid()}


def _cpu_util(a: Snapshot, b: Snapshot) -> dict[str, float]:
    out = {}
    for name, vb in b.cpus.items():
        va = a.cpus.get(name)
        if va is None or name == "cpu":
            continue
        total = sum(vb) - sum(va)
        idle = (vb[3] + vb[4]) - (va[3] + va[4])
        out[name] = round(100 * (total - idle) / total, 1) if total > 0 else 0.0
    return out


def pattern(cpu_frac: float, vol_per_s: float, invol_per_s: float, threads: int) -> str:
    """A process's run/sleep pattern from its CPU share (in CPUs) and switch rates."""
    if cpu_frac >= 0.7 * max(1, min(threads, os.cpu_count() or 1)):
        return "cpu-bound"
    if cpu_frac >= 0.2 and invol_per_s > vol_per_s and vol_per_s < 5:
        return "cpu-bound"  # never sleeps by itself; only preemption stops it"
    if cpu_frac < 0.02:
        return "sleeping"
    if vol_per_s >= 50 and cpu_frac < 0.5:
        return "interactive"  # wakes often, runs briefly: latency-sensitive
    return "mixed"


def proc_rows(a: Snapshot, b: Snapshot, pids: set[int], dt: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for pid in pids:
        pb, pa = b.procs.get(pid), a.procs.get(pid)
        if pb is None:
            continue
        if pa is not None and pa.start != pb.start:
            pa = None  # the pid was reused between the two reads
        ticks = max(0, pb.ticks - (pa.ticks if pa else 0))
        cpu = ticks / CLK_TCK / dt
        vol = max(0, pb.vol - (pa.vol if pa else 0)) / dt
        invol = max(0, pb.invol - (pa.invol if pa else 0)) / dt
        rows.append({"pid": pid, "comm": pb.comm, "cpu": round(cpu, 2), "thr": pb.threads,
                     "pat": pattern(cpu, vol, invol, pb.threads),
                     "vcs": round(vol), "ics": round(invol)})
    rows.sort(key=lambda r: (-float(r["cpu"]), int(r["pid"])))
    return rows


def cmdline(pid: int, limit: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(limit * 2)
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:limit]


def _cgroup_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, float] = {}
    for r in rows:
        if float(r["cpu"]) > 0:
            cg = cgroup_of(int(r["pid"])) or "?"
            by[cg] = by.get(cg, 0.0) + float(r["cpu"])
    top = sorted(by.items(), key=lambda kv: -kv[1])[:3]
    return [{"path": cg[-60:], "cpu": round(cpu, 2)} for cg, cpu in top]


def _migrations(a: Snapshot, b: Snapshot, pids: set[int]) -> int | None:
    if not b.has_sched:
        return None
    return sum(max(0, b.procs[p].migrations - a.procs[p].migrations)
               for p in pids if p in a.procs and p in b.procs)


def _memory() -> dict[str, float]:
    info = {}
    for line in read_text("/proc/meminfo").splitlines():
        key, _, val = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            info[key] = int(val.split()[0])
    total = info.get("MemTotal", 0)
    avail = info.get("MemAvailable", 0)
    return {"total_mb": total // 1024,
            "avail_pct": round(100 * avail / total, 1) if total else 0.0}


def summarize(a: Snapshot, b: Snapshot, scope: Scope) -> dict[str, Any]:
    dt = max(1e-3, b.t - a.t)
    pids = in_scope(scope, b.procs) | (in_scope(scope, a.procs) if scope.pid is None else set())
    rows = proc_rows(a, b, pids, dt)
    util = _cpu_util(a, b)
    psi_now = read_psi()
    psi = {res: {"avg10": v["avg10"],
                 "pct": round((v["total"] - a.psi_total.get(res, 0)) / (dt * 1e4), 1)}
           for res, v in psi_now.items()}
    migr = _migrations(a, b, pids)
    # A scoped profile counts its own new processes (short-lived ones between the two
    # reads are missed); the whole machine has the kernel's exact counter.
    forks = b.forks - a.forks if scope.pid is None and scope.cgroup is None else len(
        pids - a.procs.keys())
    scope_cpu = round(sum(float(r["cpu"]) for r in rows), 2)
    busy = [r for r in rows if float(r["cpu"]) >= 0.05]
    for r in rows[:TOP_N]:
        r["cmd"] = cmdline(int(r["pid"]), 60)
    out: dict[str, Any] = {
        "v": 1, "scope": scope.describe(), "interval_s": round(dt, 2),
        "ncpu": len(util),
        "cpu_pct": util,
        "scope_cpu": scope_cpu,
        "load": list(b.loadavg),
        "runnable": b.running, "blocked": b.blocked,
        "ctxsw_per_s": round((b.ctxt - a.ctxt) / dt),
        "migrations_per_s": None if migr is None else round(migr / dt),
        "forks_per_s": round(forks / dt, 1),
        "nprocs": len(pids), "busy_procs": len(busy),
        "psi": psi,
        "mem": _memory(),
        "top": rows[:TOP_N],
        "cgroups": _cgroup_rows(rows),
    }
    out["character"] = character(out)
    return fit(out)


def character(s: dict[str, Any]) -> str:
    """The workload's character in a few words, from the measured numbers."""
    ncpu = max(1, int(s["ncpu"]))
    cpu = float(s["scope_cpu"])
    top: list[dict[str, Any]] = s["top"]
    psi: dict[str, dict[str, float]] = s["psi"]
    words: list[str] = []
    if cpu < 0.05 * ncpu:
        words.append("mostly idle")
    elif any(r["pat"] == "cpu-bound" for r in top) or cpu >= 0.7 * ncpu:
        words.append("CPU-bound")
    elif any(r["pat"] == "interactive" for r in top):
        words.append("latency-sensitive (frequent short wake-ups)")
    else:
        words.append("mixed CPU use")
    if int(s["busy_procs"]) >= 2 or any(int(r["thr"]) > 1 and float(r["cpu"]) > 1
                                           for r in top):
        words.append("parallel")
    if float(s["forks_per_s"]) >= 20:
        words.append("many short-lived processes")
    if psi.get("cpu", {}).get("pct", 0.0) >= 20 or int(s["runnable"]) > 1.5 * ncpu:
        words.append("CPU oversubscribed")
    if psi.get("io", {}).get("pct", 0.0) >= 10 or int(s["blocked"]) > 0:
        words.append("waiting on I/O")
    if psi.get("memory", {}).get("pct", 0.0) >= 5:
        words.append("under memory pressure")
    comms = [str(r["comm"]) for r in top[:3] if float(r["cpu"]) > 0.05]
    text = ", ".join(words)
    return text + (f" ({'/'.join(dict.fromkeys(comms))})" if comms else "")


def size_of(summary: dict[str, Any]) -> int:
    return len(json.dumps(summary, separators=(",", ":")).encode())


def fit(summary: dict[str, Any], limit: int = MAX_BYTES) -> dict[str, Any]:
    """Shrink (cmdlines, then list lengths) until the compact JSON fits in ``limit`` bytes."""
    top: list[dict[str, Any]] = summary["top"]
    for width in (60, 30, 12, 0):
        if size_of(summary) <= limit:
            return summary
        for r in top:
            r["cmd"] = str(r.get("cmd", ""))[:width]
    while size_of(summary) > limit and (top or summary["cgroups"]):
        if top:
            top.pop()
        else:
            summary["cgroups"].pop()
    if size_of(summary) > limit:  # hundreds of CPUs: keep the busiest few
        cpus: dict[str, float] = summary["cpu_pct"]
        summary["cpu_pct"] = dict(sorted(cpus.items(), key=lambda kv: -kv[1])[:16])
    return summary


def sample(interval_s: float = 1.0, scope: Scope | None = None) -> dict[str, Any]:
    """The tier-1 summary over ``interval_s`` seconds."""
    if not 0.05 <= interval_s <= 60:
        raise ValueError(f"interval {interval_s} s is outside [0.05, 60]")
    scope = scope or Scope()
    if scope.pid is not None and not os.path.exists(f"/proc/{scope.pid}"):
        raise ValueError(f"no such process: {scope.pid}")
    a = snapshot()
    time.sleep(interval_s)
    return summarize(a, snapshot(), scope)



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tier-1 workload summary (JSON)")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--cgroup")
    args = ap.parse_args(argv)
    try:
        out = sample(args.interval, Scope(pid=args.pid, cgroup=args.cgroup))
    except ValueError as exc:
        print(f"tier1: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
