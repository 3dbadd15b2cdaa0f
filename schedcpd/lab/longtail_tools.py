"""The paper's eight long-tail batch workloads, built from real Debian tools.

Each workload is 40 tasks of one tool started at once: 39 short ones and one long one on an
input many times larger (the SchedCP paper's batch suite). The metric is
the makespan, from the first task's start to the last one's exit::

    from schedcpd.lab import workloads
    wl = workloads.get("lt-compress")      # registered with the other lab workloads
    results = await run_steps([wl.step(None)])
    workloads.details(results[0].stdout)   # makespan_s, lower_bound_s, long_done_s, ...

| name           | tool                               | one task                        |
|----------------|------------------------------------|---------------------------------|
| lt-compress    | gzip -9                            | compress a text file            |
| lt-transcode   | ffmpeg (MJPEG -> H.264, 1 thread)  | transcode a clip                |
| lt-tests       | python3 -m unittest                | run a test module               |
| lt-gitadd      | git add -A                         | index a tree of files           |
| lt-checksum    | sha256sum                          | checksum a directory's files    |
| lt-hotkeys     | sort, uniq -c                      | count the keys of a file        |
| lt-logs        | awk                                | summarise an access log         |
| lt-analytics   | python3                            | funnel and revenue of events    |

**How the long job is named.** All 40 tasks run the same program, so a comm alone cannot
tell the long one apart. The long task runs its tool through a symlink named
``<tool>_large`` (``gzip_large``, ``python3_large``, ...): the kernel takes a task's comm
from the executed path's base name, so the long job has its own comm, as a real long job
is identifiable from its command in the paper. The short tasks keep the tool's own name.
``LONG_SUFFIX`` is that suffix; benchmarks also measure ljf without names (its
longest-runtime mode), which is what is left when the long job cannot be named.

**Sizes.** The long task does as much CPU work as the 39 short ones together, each task
measured alone in the lab guest (``benchmarks/longtail_sizes.py``; inside a batch the CPU
time of a task depends on what runs beside it): the long task is then the batch's lower
bound, and the makespan is decided by when it starts, as in the paper's long-tail batches.
In the fluid model (fair sharing, 2 CPUs) EEVDF then ends at 1.49x that bound and the best
schedule at 1.0x: 33 % is the most any scheduler can gain. (At 16 short tasks' worth, the
previous size, the most was 21 %.)

Inputs are generated on the host from fixed seeds into
``paths.cache_dir()/workloads/longtail-tools/<name>-<digest>/`` (the digest covers the
generator's parameters, so a change regenerates them). ``runner.py`` (written next to the
inputs) copies them into the job's working directory (guest RAM) before the clock starts,
as a batch reads a warm page cache, not the host through virtiofs, and prints
``run_profile.START_MARK`` (observation reads the batch from there); then it starts the
tasks with ``$IN`` set to that copy, reaps each with ``wait4`` for its CPU time (its
waited-for children included) and prints one line per task (CPU time, start, end,
voluntary and involuntary switches) and the summary line ``@longtail makespan_s=...
lower_bound_s=...`` where the lower bound is max(longest task's CPU time, total CPU time
/ CPUs). Tasks write their outputs under the job's working directory; the copy and the
outputs are removed when the batch ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schedcpd import paths
from schedcpd.analysis.run_profile import START_MARK
from schedcpd.lab.job import guest_path

SHORT_TASKS = 39
LONG_INDEX = SHORT_TASKS // 2  # the long task starts among the short ones, not first
LONG_SUFFIX = "_large"
TIMEOUT_S = 300.0
STAGED = '"$IN"'  # the inputs' directory as the tasks see it: the runner's copy in guest RAM
SEED = 20250901  # the paper's month: any fixed value keeps inputs identical across hosts


class ToolsError(RuntimeError):
    """A workload's inputs or tools could not be prepared."""


# --- the runner, run by the guest's python3 -------------------------------------------------

RUNNER_PY = r'''
import os, shutil, signal, sys, time

ENDED = []  # (kind, cpu_s, start_s, done_s, exit code) per task, in the order they ended

def stage(src):
    """The inputs copied into this (tmpfs) directory before the clock starts: the batch
    then reads memory, as from a warm page cache, not the host through virtiofs. Copied by
    this process, not a child: observation leaves the driver's own work out."""
    dst = os.path.abspath("longtail-in")
    t = time.monotonic()
    shutil.copytree(src, dst, symlinks=True)
    return dst, time.monotonic() - t

def reap(pid, kinds, t0):
    """Wait for the task ``pid`` (-1: any), record it and print how it ran."""
    pid, status, ru = os.wait4(pid, 0)
    kind, start = kinds[pid]
    cpu, end = ru.ru_utime + ru.ru_stime, time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    ENDED.append((kind, cpu, start, end, rc))
    # Voluntary switches are sleeps (I/O, pipes, page faults on a shared file system).
    print("task %s cpu_s=%.4f start_s=%.4f done_s=%.4f rc=%d vcsw=%d ivcsw=%d" % (
          kind, cpu, start, end, rc, ru.ru_nvcsw, ru.ru_nivcsw))

def main(taskfile, alone=False):
    """With ``alone`` each task runs by itself, one after another: what each costs with
    nothing beside it (how the batch is sized), not a batch."""
    tasks = [ln.rstrip("\n").split("\t", 1) for ln in open(taskfile) if ln.strip()]
    out = os.path.abspath("longtail-out")
    os.makedirs(out, exist_ok=True)
    staged, stage_s = stage(os.path.dirname(os.path.abspath(taskfile)))
    env = dict(os.environ, OUT=out, IN=staged, LC_ALL="C")
    print("@@START_MARK@@", flush=True)
    t0 = time.monotonic()
    kinds = {}
    for i, (kind, cmd) in enumerate(tasks):
        os.makedirs(os.path.join(out, "%02d" % i), exist_ok=True)  # the task's own output
        # Python ignores SIGPIPE and children inherit that: a pipeline into head would
        # then end in write errors instead of the usual quiet SIGPIPE.
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", cmd.replace("@N", "%02d" % i)], env,
                             setsigdef=[signal.SIGPIPE])
        kinds[pid] = (kind, time.monotonic() - t0)
        if alone:
            reap(pid, kinds, t0)
    while len(ENDED) < len(tasks):
        reap(-1, kinds, t0)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(staged, ignore_errors=True)
    cpus = [cpu for _, cpu, _, _, _ in ENDED]
    long_start, long_done = next((s, e) for k, _, s, e, _ in ENDED if k == "long")
    failed = sum(1 for *_, rc in ENDED if rc != 0)
    ncpu = os.cpu_count() or 1
    print("@longtail makespan_s=%.4f lower_bound_s=%.4f total_cpu_s=%.4f longest_cpu_s=%.4f "
          "long_start_s=%.4f long_done_s=%.4f cpus=%d tasks=%d failed=%d stage_s=%.3f" % (
          max(e for _, _, _, e, _ in ENDED), max(max(cpus), sum(cpus) / ncpu), sum(cpus),
          max(cpus), long_start, long_done, ncpu, len(tasks), failed, stage_s))
    return 1 if failed else 0

sys.exit(main(sys.argv[1], "--alone" in sys.argv[2:]))
'''


# --- input generators (fixed seeds, plain stdlib) -------------------------------------------

def _words(rng: random.Random, n: int) -> list[str]:
    """A vocabulary with a Zipf-like use: text and keys that compress and sort like real ones."""
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def _zipf(rng: random.Random, items: list[str], k: int) -> list[str]:
    weights = [1.0 / (i + 1) for i in range(len(items))]
    return rng.choices(items, weights=weights, k=k)


def _text(rng: random.Random, vocab: list[str], nbytes: int) -> str:
    words = _zipf(rng, vocab, nbytes // 5 + 1)
    lines, line, size = [], [], 0
    for w in words:
        line.append(w)
        if len(line) >= 12:
            s = " ".join(line) + "\n"
            lines.append(s)
            size += len(s)
            line = []
            if size >= nbytes:
                break
    return "".join(lines)


def gen_compress(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED)
    vocab = _words(rng, 3000)
    for i, n in enumerate(sizes):
        (d / f"in{i:02d}.txt").write_text(_text(rng, vocab, n))


def gen_checksum(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED + 1)
    for i, n in enumerate(sizes):
        sub = d / f"in{i:02d}"
        sub.mkdir()
        for k in range(max(1, n // (256 << 10))):  # files of 256 KiB
            (sub / f"f{k:04d}.bin").write_bytes(rng.randbytes(256 << 10))


def gen_gitadd(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED + 2)
    vocab = _words(rng, 2000)
    for i, nfiles in enumerate(sizes):
        sub = d / f"in{i:02d}"
        for k in range(nfiles):  # a source-tree-like spread: 16 files a directory
            p = sub / f"dir{k // 16:03d}" / f"file{k:05d}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(_text(rng, vocab, rng.randint(2000, 12000)))
    res = subprocess.run(["git", "init", "-q", "--bare", str(d / "skel")], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise ToolsError(f"git init --bare failed: {res.stderr[-300:]}")


def gen_hotkeys(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED + 3)
    keys = [f"user:{k:06d}" for k in range(50000)]
    rng.shuffle(keys)
    for i, n in enumerate(sizes):
        (d / f"in{i:02d}.txt").write_text("\n".join(_zipf(rng, keys, n)) + "\n")


PATHS = ["/", "/login", "/cart", "/checkout", "/search", "/api/items", "/api/user",
         "/static/app.js", "/static/app.css", "/product"]
STATUS = [200] * 40 + [301, 302, 304, 404, 404, 500, 502]


def gen_logs(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED + 4)
    for i, n in enumerate(sizes):
        rows = []
        for k in range(n):
            path = rng.choice(PATHS) + (f"/{rng.randint(1, 5000)}" if rng.random() < .3 else "")
            rows.append(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} "
                        f"- - [02/Sep/2025:{k // 3600 % 24:02d}:{k // 60 % 60:02d}:{k % 60:02d}"
                        f" +0000] \"GET {path} HTTP/1.1\" {rng.choice(STATUS)} "
                        f"{rng.randint(200, 90000)} {rng.expovariate(1 / 0.08):.3f}\n")
        (d / f"in{i:02d}.log").write_text("".join(rows))


LOGS_AWK = r"""
# Per-endpoint requests, bytes, error rate and slow share; status classes; top clients.
{
  split($7, p, "/"); ep = "/" p[2]; st = $9; b = $10; rt = $11
  n[ep]++; bytes[ep] += b; if (st >= 500) err[ep]++; if (rt > 0.25) slow[ep]++
  cls[int(st / 100)]++; ip[$1]++; sum += rt; sq += rt * rt
}
END {
  for (e in n) printf "%s %d %d %.4f %.4f\n", e, n[e], bytes[e], err[e] / n[e], slow[e] / n[e]
  for (c in cls) printf "class %dxx %d\n", c, cls[c]
  top = 0; for (a in ip) if (ip[a] > top) { top = ip[a]; who = a }
  printf "top %s %d mean_rt %.4f var_rt %.5f\n", who, top, sum / NR, sq / NR - (sum / NR) ^ 2
}
"""


def gen_analytics(d: Path, sizes: list[int]) -> None:
    rng = random.Random(SEED + 5)
    events = ["view", "view", "view", "view", "search", "add_to_cart", "checkout", "purchase"]
    for i, n in enumerate(sizes):
        rows = ["user,ts,event,product,price"]
        for k in range(n):
            rows.append(f"u{rng.randint(1, max(50, n // 20))},{1756800000 + k * 7},"
                        f"{rng.choice(events)},p{rng.randint(1, 400)},"
                        f"{rng.randint(199, 19999) / 100:.2f}")
        (d / f"in{i:02d}.csv").write_text("\n".join(rows) + "\n")


ANALYTICS_PY = r'''
import csv, json, sys
from collections import Counter, defaultdict
STEPS = ["view", "add_to_cart", "checkout", "purchase"]
users = defaultdict(list)
revenue, views = Counter(), Counter()
with open(sys.argv[1], newline="") as f:
    for r in csv.DictReader(f):
        users[r["user"]].append((int(r["ts"]), r["event"], r["product"]))
        if r["event"] == "purchase":
            revenue[r["product"]] += float(r["price"])
        elif r["event"] == "view":
            views[r["product"]] += 1
funnel = Counter()
sessions = []
for evs in users.values():
    evs.sort()
    reached, start, last = 0, evs[0][0], evs[0][0]
    for ts, ev, _ in evs:
        if ts - last > 1800:
            sessions.append(last - start)
            start = ts
        last = ts
        if reached < len(STEPS) and ev == STEPS[reached]:
            reached += 1
    sessions.append(last - start)
    for s in STEPS[:reached]:
        funnel[s] += 1
sessions.sort()
conv = {p: revenue[p] / views[p] for p in views if views[p]}
print(json.dumps({"users": len(users), "funnel": funnel,
                  "top_revenue": revenue.most_common(10),
                  "best_conversion": sorted(conv.items(), key=lambda kv: -kv[1])[:10],
                  "median_session_s": sessions[len(sessions) // 2]}))
'''


def gen_tests(d: Path, sizes: list[int]) -> None:
    """Test modules of deterministic CPU work: sorting, primes, hashing, string building."""
    for i, ntests in enumerate(sizes):
        body = ["import hashlib, random, unittest", "", "class T(unittest.TestCase):"]
        for k in range(ntests):
            body += [f"    def test_{k:05d}(self):",
                     f"        rng = random.Random({SEED + i * 100000 + k})",
                     "        xs = [rng.random() for _ in range(6000)]",
                     "        self.assertEqual(sorted(xs), sorted(sorted(xs, reverse=True)))",
                     "        ps = [n for n in range(2, 4000) if all(n % q for q in range(2, "
                     "int(n ** .5) + 1))]",
                     "        self.assertEqual(len(ps), 550)",
                     "        h = hashlib.sha256(''.join(map(str, xs[:300])).encode())",
                     "        self.assertEqual(len(h.hexdigest()), 64)"]
        (d / f"test_m{i:02d}.py").write_text("\n".join(body) + "\n")


def gen_transcode(d: Path, sizes: list[int]) -> None:
    """Clips of the given numbers of frames, MJPEG in AVI, from ffmpeg's own
    synthetic sources: deterministic, with motion and noise so the encoder has work."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ToolsError("lt-transcode needs ffmpeg on the host (apt-get install ffmpeg)")
    for n in sorted(set(sizes)):
        src = (f"testsrc2=size=320x240:rate=25,noise=alls=12:allf=t+u:all_seed={SEED % 65536}")
        res = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", src,
                              "-frames:v", str(n), "-c:v", "mjpeg", "-q:v", "4",
                              str(d / f"clip{n}.avi")], capture_output=True, text=True)
        if res.returncode != 0:
            raise ToolsError(f"ffmpeg could not make the input clip: {res.stderr[-500:]}")
    for i, n in enumerate(sizes):
        os.symlink(f"clip{n}.avi", d / f"in{i:02d}.avi")


# --- the eight workloads ---------------------------------------------------------------------

@dataclass(frozen=True)
class ToolWorkload:
    name: str
    tool: str  # the program every task runs; the long task runs it as <tool>_large
    description: str
    unit: int  # a short task's input size, in the generator's unit
    factor: int  # the long task's input is this many units: sized so that, in the lab
    # guest, the long task does as much CPU work as the 39 short ones together, each task
    # measured alone (benchmarks/longtail_sizes.py: within 16 % of that)
    generate: Callable[[Path, list[int]], None]  # (directory, input size of each task)
    task: Callable[[str, str], str]  # (program path, input dir as a shell word) -> one
    # task's shell command; the runner replaces @N with the task's index, sets $IN to its
    # copy of the inputs and $OUT to the task's output directory
    extra: tuple[tuple[str, str], ...] = ()  # (file name, text) written next to the inputs

    def sizes(self) -> list[int]:
        return [self.unit * self.factor if i == LONG_INDEX else self.unit
                for i in range(SHORT_TASKS + 1)]

    @property
    def long_comm(self) -> str:
        return (self.tool + LONG_SUFFIX)[:15]


def _q(s: str) -> str:
    return shlex.quote(s)


SUITE: tuple[ToolWorkload, ...] = (
    ToolWorkload("lt-compress", "gzip", "gzip -9 of 39 text files and one large one",
                 100_000, 198, gen_compress,
                 lambda prog, d: f"{_q(prog)} -9 -c {d}/in@N.txt >\"$OUT/@N.gz\""),
    ToolWorkload("lt-transcode", "ffmpeg",
                 "ffmpeg MJPEG to H.264 (1 thread) of 39 clips and one long one",
                 5, 296, gen_transcode,
                 lambda prog, d: (f"{_q(prog)} -nostdin -loglevel error -threads 1 -i "
                                  f"{d}/in@N.avi -c:v libx264 -preset veryfast "
                                  "-threads 1 -y \"$OUT/@N.mp4\"")),
    ToolWorkload("lt-tests", "python3",
                 "python3 -m unittest of 39 test modules and one large one",
                 1, 488, gen_tests,
                 lambda prog, d: (f"cd {d} && {_q(prog)} -B -m unittest -q test_m@N "
                                  ">\"$OUT/@N.log\" 2>&1")),
    ToolWorkload("lt-gitadd", "git", "git add -A of 39 trees of files and one large one",
                 8, 314, gen_gitadd,
                 # One exec per task, like the others: a read-only bare skeleton with the
                 # index and the objects in the task's own output directory.
                 lambda prog, d: ("GIT_INDEX_FILE=\"$OUT/@N/index\" "
                                  "GIT_OBJECT_DIRECTORY=\"$OUT/@N\" "
                                  f"{_q(prog)} --git-dir={d}/skel "
                                  f"--work-tree={d}/in@N add -A")),
    ToolWorkload("lt-checksum", "sha256sum",
                 "sha256sum of 39 directories of files and one large one",
                 256 << 10, 625, gen_checksum,
                 lambda prog, d: f"{_q(prog)} {d}/in@N/* >\"$OUT/@N.sum\""),
    ToolWorkload("lt-hotkeys", "sort",
                 "sort | uniq -c: per-key counts of 39 key files and one large one",
                 10_000, 195, gen_hotkeys,
                 lambda prog, d: (f"{_q(prog)} --parallel=1 -S 400M {d}/in@N.txt | "
                                  "uniq -c >\"$OUT/@N.counts\"")),
    ToolWorkload("lt-logs", "awk", "awk summary of 39 access logs and one large one",
                 3_000, 104, gen_logs,
                 lambda prog, d: (f"{_q(prog)} -f {d}/logs.awk {d}/in@N.log "
                                  ">\"$OUT/@N.txt\""),
                 (("logs.awk", LOGS_AWK),)),
    ToolWorkload("lt-analytics", "python3",
                 "python3 funnel and revenue analytics of 39 event files and one large one",
                 2_000, 278, gen_analytics,
                 lambda prog, d: (f"{_q(prog)} -B {d}/analytics.py {d}/in@N.csv "
                                  ">\"$OUT/@N.json\""),
                 (("analytics.py", ANALYTICS_PY),)),
)

BY_NAME = {w.name: w for w in SUITE}


def base_dir() -> Path:
    return paths.cache_dir() / "workloads" / "longtail-tools"


def _digest(w: ToolWorkload) -> str:
    """What the inputs depend on: the generator's code, the sizes, the seed."""
    import inspect

    h = hashlib.sha256(json.dumps([w.name, w.unit, w.factor, SHORT_TASKS, LONG_INDEX,
                                   SEED]).encode())
    h.update(inspect.getsource(w.generate).encode())
    return h.hexdigest()[:12]


def tool_path(tool: str) -> Path:
    found = shutil.which(tool, path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise ToolsError(f"{tool} is not installed on the host")
    return Path(found).resolve()


def long_alias(w: ToolWorkload) -> Path:
    """``<tool>_large``: a symlink to the tool, so the long task has a comm of its own."""
    alias = base_dir() / "bin" / w.long_comm
    target = tool_path(w.tool)
    if not (alias.is_symlink() and Path(os.readlink(alias)) == target):
        alias.parent.mkdir(parents=True, exist_ok=True)
        tmp = alias.with_name(alias.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(alias)
    return alias


def inputs(w: ToolWorkload) -> Path:
    """The workload's input directory, generated once (atomically renamed into place)."""
    out = base_dir() / f"{w.name}-{_digest(w)}"
    if not (out / "done").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            d = Path(tmp) / "in"
            d.mkdir()
            w.generate(d, w.sizes())
            (d / "done").write_text("")
            if out.exists():  # a half-made directory from an interrupted run
                shutil.rmtree(out)
            os.replace(d, out)
        for old in out.parent.glob(f"{w.name}-*"):  # inputs of earlier sizes or generators
            if old != out and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    # The runner and the task list are small and follow the code: written again when they
    # differ, so a change to them never needs new inputs.
    short, long_ = str(tool_path(w.tool)), guest_path(long_alias(w))
    rows = [f"{'long' if i == LONG_INDEX else 'short'}\t"
            f"{w.task(long_ if i == LONG_INDEX else short, STAGED)}"
            for i in range(SHORT_TASKS + 1)]
    runner = RUNNER_PY.replace("@@START_MARK@@", START_MARK)
    for name, text in (*w.extra, ("runner.py", runner),
                       ("tasks.tsv", "\n".join(rows) + "\n")):
        _write_if_changed(out / name, text)
    return out


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def command(w: ToolWorkload, alone: bool = False) -> str:
    """The shell command the lab runs for ``w`` (inputs and the alias prepared first); with
    ``alone``, its tasks one after another (``benchmarks/longtail_sizes.py``)."""
    d = guest_path(inputs(w))
    long_alias(w)
    return (f"/usr/bin/python3 -I {_q(d)}/runner.py {_q(d)}/tasks.tsv"
            + (" --alone" if alone else ""))
