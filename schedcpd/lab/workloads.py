"""Named workloads for the lab guest: what to run, what to measure, how to read the result.

One place for the workloads that tests, benchmarks, the verifier and the agent share::

    from schedcpd.lab import workloads
    wl = workloads.get("longtail")
    results = await run_steps([wl.step(load), wl.step(None)])   # a policy, then EEVDF
    makespan = wl.measure(results[0])                            # float, in wl.unit
    bound = workloads.details(results[0].stdout)["lower_bound_s"]

| name     | what runs                                             | metric (lower is better) |
|----------|-------------------------------------------------------|--------------------------|
| mixed    | CPU hogs, sleepers waking 100/s, a fork storm (1.5 s) | wall_s                   |
| longtail | 39 short + 1 long CPU job (comm ``longjob``)          | makespan_s               |
| latency  | cyclictest (SCHED_OTHER) beside stress-ng CPU hogs    | p99_wakeup_us            |
| build    | ``make -j4`` of Lua 5.4's core (Debian source package) | build_s                 |
| lt-*     | the paper's eight long-tail batches of real tools (``longtail_tools``) | makespan_s |
| g-*      | servers, databases, pipelines of real programs (``general_tools``) | its own goal |

Host-side pieces (a small C driver for mixed and longtail, the Lua source tree) are built
or fetched once into ``paths.cache_dir()/workloads`` by ``Workload.command()``; the guest
sees the host's root read-only, so the command refers to them by host path.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schedcpd import paths
from schedcpd.lab import general_tools, longtail_tools
from schedcpd.lab.job import SchedulerLoad, Step
from schedcpd.lab.result import GuestResult

LONG_COMM = "longjob"
SHORT_COMM = "shortjob"
LUA_PACKAGE = "lua5.4"


class WorkloadError(RuntimeError):
    """A workload could not be prepared, or its run did not produce its metric."""


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metric: str
    unit: str
    lower_is_better: bool
    timeout_s: float
    script: Callable[[], str]  # prepares host-side pieces (cached) and returns the sh command
    parse: Callable[[str, float], float]  # (stdout, wall_s) -> metric value
    # The command does a set-up of its own first and prints run_profile.START_MARK when
    # its measured part begins (observation reads it from there).
    marks_start: bool = False

    def command(self) -> str:
        return self.script()

    def step(self, scheduler: SchedulerLoad | None = None) -> Step:
        return Step(self.command(), self.timeout_s, scheduler)

    def measure(self, result: GuestResult) -> float:
        """The metric from a finished run; WorkloadError if the run failed or timed out."""
        if not result.ok:
            raise WorkloadError(
                f"{self.name}: run failed (exit {result.exit_status}, timed out "
                f"{result.timed_out}): {result.stderr[-500:]}"
            )
        return self.parse(result.stdout, result.wall_s)


def details(stdout: str) -> dict[str, float]:
    """Every ``key=number`` on the output's last summary line (one starting with ``@``)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("@")]
    if not lines:
        return {}
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+0-9.eE]+)", lines[-1])}


def _summary_value(key: str) -> Callable[[str, float], float]:
    def parse(stdout: str, wall_s: float) -> float:
        d = details(stdout)
        if key not in d:
            raise WorkloadError(f"no {key}= in the workload's summary line: {stdout[-300:]!r}")
        return d[key]
    return parse


def metric_value(name: str) -> Callable[[str, float], float]:
    """A parser of the value a run printed as ``SCHEDCP_METRIC <name> <value>``."""
    def parse(stdout: str, wall_s: float) -> float:
        from schedcpd.analysis.feedback import parse_metrics  # numpy: only when parsing

        found = parse_metrics(stdout)
        if name not in found:
            raise WorkloadError(f"no 'SCHEDCP_METRIC {name} <value>' line in the output: "
                                f"{stdout[-300:]!r}")
        return found[name]
    return parse


def _wall(stdout: str, wall_s: float) -> float:
    return wall_s


# --- the C driver for mixed and longtail -------------------------------------------------

# Jobs are measured in CPU time, not loop counts, so the work is the same under TCG and on
# real hardware and the lower bound comes from what each job really consumed.
DRIVER_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double now(clockid_t c) {
    struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec / 1e9;
}
static void spin_cpu(double seconds) {
    volatile unsigned long x = 0;
    while (now(CLOCK_PROCESS_CPUTIME_ID) < seconds)
        for (int i = 0; i < 20000; i++) x += i;
}
static void spin_until(double end) {
    volatile unsigned long x = 0;
    while (now(CLOCK_MONOTONIC) < end)
        for (int i = 0; i < 20000; i++) x += i;
}
static int cmp(const void *a, const void *b) {
    double d = *(const double *)a - *(const double *)b; return (d > 0) - (d < 0);
}

/* longtail NSHORT SHORT_MS LONG_MS: the long job is forked in the middle of the shorts. */
static int longtail(int nshort, double short_s, double long_s) {
    int n = nshort + 1, mid = nshort / 2, ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double t0 = now(CLOCK_MONOTONIC), total = 0, longest = 0, end = 0;
    pid_t pids[1024]; int is_long[1024];
    for (int i = 0; i < n && i < 1024; i++) {
        is_long[i] = i == mid;
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_NAME, is_long[i] ? "LONG_COMM" : "SHORT_COMM");
            spin_cpu(is_long[i] ? long_s : short_s);
            _exit(0);
        }
    }
    for (int k = 0; k < n; k++) {
        struct rusage ru; int st;
        pid_t pid = wait4(-1, &st, 0, &ru);
        double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
               + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        double done = now(CLOCK_MONOTONIC) - t0;
        int lg = 0;
        for (int i = 0; i < n; i++) if (pids[i] == pid) lg = is_long[i];
        printf("task %s cpu_s=%.4f done_s=%.4f\n", lg ? "LONG_COMM" : "SHORT_COMM", cpu, done);
        total += cpu; if (cpu > longest) longest = cpu; end = done;
    }
    double lb = total / ncpu > longest ? total / ncpu : longest;
    printf("@longtail makespan_s=%.4f lower_bound_s=%.4f total_cpu_s=%.4f longest_cpu_s=%.4f "
           "cpus=%d tasks=%d\n", end, lb, total, longest, ncpu, n);
    return 0;
}

/* mixed HOGS SLEEPERS FORKERS SECONDS: everything stops by wall time. */
static int mixed(int hogs, int sleepers, int forkers, double secs) {
    int per = (int)(secs * 100) + 10, n = hogs + sleepers + forkers;
    double *lat = mmap(0, sizeof(double) * per * (sleepers + 1), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    long *forks = mmap(0, sizeof(long) * (forkers + 1), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double end = now(CLOCK_MONOTONIC) + secs;
    for (int i = 0; i < n; i++) {
        if (fork()) continue;
        if (i < hogs) { spin_until(end); _exit(0); }
        if (i < hogs + sleepers) {
            int s = i - hogs;
            for (int k = 0; k < per && now(CLOCK_MONOTONIC) < end; k++) {
                struct timespec ts = {0, 10000000};
                double a = now(CLOCK_MONOTONIC);
                nanosleep(&ts, 0);
                lat[s * per + k] = (now(CLOCK_MONOTONIC) - a - 0.01) * 1e6 + 1;
            }
            _exit(0);
        }
        while (now(CLOCK_MONOTONIC) < end) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            if (c > 0) { waitpid(c, 0, 0); forks[i - hogs - sleepers]++; }
        }
        _exit(0);
    }
    while (wait(0) > 0) ;
    double *all = malloc(sizeof(double) * per * (sleepers + 1));
    long m = 0, f = 0;
    for (int i = 0; i < per * sleepers; i++) if (lat[i] > 0) all[m++] = lat[i] - 1;
    for (int i = 0; i < forkers; i++) f += forks[i];
    qsort(all, m, sizeof(double), cmp);
    printf("@mixed hogs=%d sleepers=%d wakeups=%ld forks=%ld p99_wake_us=%.1f\n",
           hogs, sleepers, m, f, m ? all[(m * 99) / 100] : -1.0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "longtail"))
        return longtail(atoi(argv[2]), atof(argv[3]) / 1000, atof(argv[4]) / 1000);
    if (argc == 6 && !strcmp(argv[1], "mixed"))
        return mixed(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: %s longtail NSHORT SHORT_MS LONG_MS | "
            "mixed HOGS SLEEPERS FORKERS SECONDS\n", argv[0]);
    return 2;
}
""".replace("LONG_COMM", LONG_COMM).replace("SHORT_COMM", SHORT_COMM)


def workloads_dir() -> Path:
    return paths.cache_dir() / "workloads"


def driver() -> Path:
    """The compiled C driver, rebuilt when its source changes (atomically renamed in place)."""
    digest = hashlib.sha256(DRIVER_C.encode()).hexdigest()[:16]
    out = workloads_dir() / "bin" / f"schedcp-work-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src, tmp_out = Path(tmp) / "work.c", Path(tmp) / "work"
        src.write_text(DRIVER_C)
        res = subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-o", str(tmp_out), str(src)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise WorkloadError(f"the workload driver does not compile:\n{res.stderr}")
        tmp_out.replace(out)
    return out


# --- the Lua source tree for build -------------------------------------------------------

def _apt_source_env(root: Path) -> dict[str, str]:
    """A private apt configuration with bookworm's deb-src, leaving the host's apt alone."""
    from schedcpd.lab import kernel  # the same private-apt layout the kernel fetch uses

    mirror = kernel.debian_mirror()
    env = kernel._apt_env(root, mirror)
    (root / "etc/sources.list").write_text(
        f"deb-src [signed-by={kernel.KEYRING}] {mirror} bookworm main\n"
    )
    return env


def lua_tree() -> Path:
    """Debian's Lua 5.4 upstream source, fetched once with `apt-get source` and cached."""
    base = workloads_dir()
    found = sorted(base.glob("lua-5.4.*/src/lua.c"))
    if found:
        return found[-1].parent.parent
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        t = Path(tmp)
        env = _apt_source_env(t / "apt")
        for cmd in (["apt-get", "-q", "update"],
                    ["apt-get", "-q", "source", "--download-only", LUA_PACKAGE]):
            res = subprocess.run(cmd, env=env, cwd=t, capture_output=True, text=True)
            if res.returncode != 0:
                raise WorkloadError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
        orig = next(t.glob("lua5.4_*.orig.tar.gz"), None)
        if orig is None:
            raise WorkloadError("apt-get source lua5.4 gave no .orig.tar.gz")
        with tarfile.open(orig) as tar:
            tar.extractall(t / "x", filter="data")
        tree = next((t / "x").glob("lua-5.4.*"))
        os.replace(tree, base / tree.name)
    return lua_tree()


# --- the workloads -------------------------------------------------------------------------

def _mixed_script() -> str:
    return f"{driver()} mixed 2 4 2 1.5"


# 39 jobs of 100 ms and one of 3 s of CPU: on 2 CPUs the bound is 3.45 s; fair sharing
# lets the long job start its real work only after the short ones, about 4.9 s.
LONGTAIL_ARGS = (39, 100, 3000)


def _longtail_script() -> str:
    n, short_ms, long_ms = LONGTAIL_ARGS
    return f"{driver()} longtail {n} {short_ms} {long_ms}"


def _latency_script() -> str:
    # SCHED_OTHER: real-time threads would bypass sched_ext entirely. cyclictest needs a
    # writable /dev/shm, which the chroot's /dev lacks: a guest tmpfs there. The histogram
    # spans 100 ms; its empty rows are dropped to keep the output small.
    return (
        "mkdir -p /dev/shm && { mountpoint -q /dev/shm || mount -t tmpfs shm /dev/shm; } && "
        "{ stress-ng --cpu 4 --timeout 30s >/dev/null 2>&1 & HOGS=$!; sleep 1; "
        "cyclictest -q -m -t 2 -i 1000 -D 4 -h 100000 --policy=other >ct.out; rc=$?; "
        "kill $HOGS; wait; "
        "awk '/^#/ {print; next} {s=0; for (i=2; i<=NF; i++) s+=$i; if (s) print}' ct.out; "
        "exit $rc; }"
    )


def p99_from_histogram(stdout: str) -> float:
    """p99 wakeup latency (us) over all threads of a cyclictest ``-h`` histogram."""
    counts: dict[int, int] = {}
    overflow = 0
    for line in stdout.splitlines():
        if line.startswith("# Histogram Overflows:"):
            overflow = sum(int(x) for x in line.split(":")[1].split())
            continue
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            counts[int(parts[0])] = sum(int(x) for x in parts[1:])
    total = sum(counts.values()) + overflow
    if not counts or total == 0:
        raise WorkloadError(f"no cyclictest histogram in the output: {stdout[-300:]!r}")
    seen = 0
    for us in sorted(counts):
        seen += counts[us]
        if seen >= 0.99 * total:
            return float(us)
    return float(max(counts) + 1)  # p99 fell among the overflows: report the range's end


# The first twelve objects of Lua's core (its Makefile's CORE_O): under TCG every compiler
# run costs ~3 s of exec and page-fault overhead, so the whole tree (35 runs) would take
# about two minutes per build; twelve keep a build near 20 s with make -j4 still choosing
# the order and the parallelism.
BUILD_OBJECTS = ("lapi.o", "lcode.o", "lctype.o", "ldebug.o", "ldo.o", "ldump.o", "lfunc.o",
                 "lgc.o", "llex.o", "lmem.o", "lobject.o", "lopcodes.o")


def _build_script() -> str:
    # cc1 and as run from the guest's tmpfs: paging a 30 MB cc1 in over virtiofs costs
    # ~10 s per compiler run under TCG and would swamp the scheduling. -O0 for the same
    # reason. Timed by the guest's clock around make alone.
    cc1 = subprocess.run(["gcc", "-print-prog-name=cc1"], capture_output=True, text=True,
                         check=True).stdout.strip()
    asm = shutil.which("as") or "/usr/bin/as"
    return (
        f"mkdir -p /tmp/tc && {{ [ -x /tmp/tc/as ] || {{ cp {cc1} /tmp/tc/cc1 && "
        f"cp {Path(asm).resolve()} /tmp/tc/as; }}; }} && "
        f"cp -r {lua_tree()}/. . && read a _ </proc/uptime && "
        "make -j4 -C src CC='gcc -std=gnu99 -B/tmp/tc/' "
        "CFLAGS='-O0 -Wall -DLUA_COMPAT_5_3 -DLUA_USE_LINUX' "
        f"{' '.join(BUILD_OBJECTS)} >/dev/null && "
        f'read b _ </proc/uptime && test -f src/{BUILD_OBJECTS[-1]} && '
        'echo "@build start=$a end=$b"'
    )


def _build_seconds(stdout: str, wall_s: float) -> float:
    d = details(stdout)
    if "start" not in d or "end" not in d:
        raise WorkloadError(f"no build timing in the output: {stdout[-300:]!r}")
    return d["end"] - d["start"]


WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (
        Workload("mixed", "2 CPU hogs, 4 sleepers waking every 10 ms, 2 fork loops, 1.5 s",
                 "wall_s", "s", True, 60, _mixed_script, _wall),
        Workload("longtail", f"39 short (100 ms) + 1 long (3 s, comm {LONG_COMM}) CPU jobs",
                 "makespan_s", "s", True, 120, _longtail_script,
                 _summary_value("makespan_s")),
        Workload("latency", "cyclictest p99 wakeup latency beside 4 stress-ng CPU hogs",
                 "p99_wakeup_us", "us", True, 60, _latency_script,
                 lambda out, wall: p99_from_histogram(out)),
        Workload("build", "make -j4 (-O0) of 12 core objects of Lua 5.4, Debian's source package",
                 "build_s", "s", True, 300, _build_script, _build_seconds),
    )
}


def _prepared(name: str, command: Callable[[], str],
              errors: tuple[type[Exception], ...]) -> Callable[[], str]:
    """``command`` with its preparation errors as this workload's WorkloadError."""
    def script() -> str:
        try:
            return command()
        except errors as exc:
            raise WorkloadError(f"{name}: {exc}") from None
    return script


WORKLOADS.update({
    w.name: Workload(w.name, f"{w.description} (long job's comm {w.long_comm})", "makespan_s",
                     "s", True, longtail_tools.TIMEOUT_S,
                     _prepared(w.name, functools.partial(longtail_tools.command, w),
                               (longtail_tools.ToolsError, OSError)),
                     _summary_value("makespan_s"), marks_start=True)
    for w in longtail_tools.SUITE
})
WORKLOADS.update({
    w.name: Workload(w.name, w.description, w.metric, w.unit, w.lower_is_better, w.timeout_s,
                     _prepared(w.name, functools.partial(general_tools.command, w),
                               (general_tools.GeneralError, OSError)),
                     metric_value(w.metric), marks_start=True)
    for w in general_tools.SUITE
})


def get(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise WorkloadError(f"no workload {name!r} (known: {', '.join(WORKLOADS)})") from None
