"""The "general" suite: lab workloads of real programs that the planner's rules never name.

Each is a program a user runs, from Debian bookworm's packages, under the load a user
would give it: servers with their own benchmark clients, message passing, compression and
media pipelines, a parallel test runner, databases, an interactive user beside a batch
job, bursts of work. The bench holds half of them out (``suites.HELD_OUT``) to see whether
what the agent learnt on some workloads carries over to workloads it has never seen
(issue 21)::

    from schedcpd.lab import workloads
    wl = workloads.get("g-nginx")           # registered with the other lab workloads
    [r] = await run_steps([wl.step(None)])
    wl.measure(r)                           # p99 request latency, ms
    goal.declared(r.stdout)                 # the workload's own goal (schedcpd.agent.goal)

| name          | real program                  | what is measured       | SCHEDCP_GOAL            |
|---------------|-------------------------------|------------------------|-------------------------|
| g-nginx       | nginx (2 workers), wrk        | one page, 16 conns     | p99_ms lower            |
| g-redis       | redis-server, redis-benchmark | SET, GET, 16 clients   | p99_ms lower            |
| g-pipe        | perf bench sched pipe         | 2 processes ping-pong  | usec_per_op lower       |
| g-hackbench   | hackbench (rt-tests)          | 4 groups of 40 threads | hackbench_s lower       |
| g-xz          | xz -T2 -6                     | compress 5 MB of text  | mb_per_s higher         |
| g-ffmpeg      | ffmpeg decode, x264 encode    | a 2-process pipeline   | frames_per_s higher     |
| g-tests       | xargs -P 2, unittest          | 10 CPython test files  | suite_s lower           |
| g-sqlite      | SQLite (python3), WAL         | 2 readers, 1 writer    | read_p99_ms lower       |
| g-pgbench     | PostgreSQL 15, pgbench        | TPC-B-like, 8 clients  | tx_per_s higher         |
| g-interactive | lighttpd, ffmpeg export       | an HTTP user's latency | p99_ms lower            |
| g-bursty      | gzip bursts, bzip2 batch      | jobs' completion time  | completion_p99_ms lower |
| g-openssl     | openssl speed -multi 3        | SHA-256, AES-128-CBC   | mb_per_s higher         |
| g-sort        | sort --parallel=2             | a 750 000-line CSV     | sort_s lower            |
| g-sysbench    | sysbench threads              | 8 threads, 4 mutexes   | events_per_s higher     |

Guards (``SCHEDCP_GUARD``, may be at most that much worse): g-nginx and g-redis
requests_per_s higher 0.05, g-sqlite commits_per_s higher 0.10, g-pgbench latency_ms
lower 0.10, g-interactive bg_frames_per_s (the export's) higher 0.10, g-sysbench p99_ms
lower 0.10.

**Output.** Every command prints ``SCHEDCP_GOAL <metric> <lower|higher>`` once before it
starts, optionally ``SCHEDCP_GUARD <metric> <lower|higher> <max_regression>`` (a fraction:
0.05, at most 5 % worse), ``run_profile.START_MARK`` when its measured part begins (after
servers are up and inputs are staged), and its numbers as ``SCHEDCP_METRIC <name>
<value>`` lines (``feedback.parse_metrics``). The registered metric and direction are the
goal line's (the host-side tests check both).

**Scripts.** The commands are the POSIX sh scripts (and three small standard-library
python3 helpers) in ``general/``, next to this module, run by the guest from their host
path; ``general/common.sh`` holds the conventions. Servers are started by the script
itself in a session of their own, bound to 127.0.0.1 on ports of their own (18080,
18081, 18379, 18432), and killed with everything they started when the script exits, for
any reason: nothing outlives the command. They bring the loopback interface up first
(the lab image's init does too; a guest without it could not serve on 127.0.0.1). Each
measured command also runs under a time limit of its own (60 s) below the lab step's
(90 s), so that a runaway fails with its servers stopped rather than being killed from
outside with its servers left running.

**Inputs** (text corpora, web pages, a video clip, a CSV, a PostgreSQL cluster) are made on
the host from fixed seeds into ``paths.cache_dir()/workloads/general/<name>-<digest>``,
where the digest covers the generator's code and its parameters; a script copies what it
reads into the job's working directory (guest memory) before it measures.

**Sizes** keep each run's measured part about 3-25 s in the lab guest (TCG, 2 vCPUs) and
its total under about 35 s: all fourteen in one boot took 211-290 s on a host busy with
other lab guests (``tests/bench/test_general_workloads.py``). What crosses CPUs to wake a task
(g-pipe, g-hackbench, the servers) depends on how the host schedules the vCPU threads: on
a loaded host g-pipe took 2200-3300 us a round trip, on a quieter one 190 us. Compare runs
interleaved in one session, never across sessions.
"""

from __future__ import annotations

import hashlib
import inspect
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
from schedcpd.lab.job import guest_path

SCRIPTS = Path(__file__).parent / "general"
SEED = 20260121  # any fixed value: the same inputs on every host
TIMEOUT_S = 90.0
GOAL, GUARD = "SCHEDCP_GOAL", "SCHEDCP_GUARD"


class GeneralError(RuntimeError):
    """A workload's inputs or tools could not be prepared."""


@dataclass(frozen=True)
class GeneralWorkload:
    name: str
    program: str  # the real program(s) it runs
    description: str
    script: str  # its file in general/
    metric: str  # as its SCHEDCP_GOAL line declares
    unit: str
    lower_is_better: bool
    args: Callable[[], list[str]]  # prepares the host-side inputs (cached) and returns the
    # script's arguments, host paths already as the guest sees them
    timeout_s: float = TIMEOUT_S

    def script_path(self) -> Path:
        return SCRIPTS / self.script


# --- goal and guard lines -----------------------------------------------------------------

def declared_lines(w: GeneralWorkload) -> str:
    """The SCHEDCP_GOAL / SCHEDCP_GUARD lines ``w``'s script prints, read from its source
    (its ``goal`` and ``guard`` calls): what a run will declare, known without running it.
    (schedcpd.agent.goal.declared parses them, as it parses a run's output.)"""
    out = []
    for line in w.script_path().read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "goal":
            out.append(f"{GOAL} {parts[1]} {parts[2]}")
        elif len(parts) == 4 and parts[0] == "guard":
            out.append(f"{GUARD} {parts[1]} {parts[2]} {parts[3]}")
    return "\n".join(out)


# --- host-side inputs (fixed seeds, plain stdlib) ---------------------------------------------

def base_dir() -> Path:
    return paths.cache_dir() / "workloads" / "general"


def _cached(name: str, generate: Callable[[Path], None], *params: object) -> Path:
    """``generate``'s output directory, made once per (code, parameters) and renamed into
    place atomically; older versions of the same input are removed."""
    h = hashlib.sha256(repr((name, params, SEED)).encode())
    for f in (generate, _text):
        h.update(inspect.getsource(f).encode())
    out = base_dir() / f"{name}-{h.hexdigest()[:12]}"
    if (out / "done").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        d = Path(tmp) / "in"
        d.mkdir()
        generate(d)
        (d / "done").write_text("")
        if out.exists():  # a half-made directory from an interrupted run
            shutil.rmtree(out)
        os.replace(d, out)
    for old in out.parent.glob(f"{name}-*"):
        if old != out and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return out


def _text(rng: random.Random, nbytes: int) -> str:
    """Words of a Zipf-like vocabulary, 12 a line: compresses and sorts like prose."""
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    lines, size = [], 0
    while size < nbytes:
        line = " ".join(rng.choices(vocab, weights=weights, k=12)) + "\n"
        lines.append(line)
        size += len(line)
    return "".join(lines)


def corpus(nbytes: int) -> Path:
    """A text file of about ``nbytes``."""
    def generate(d: Path) -> None:
        (d / "corpus.txt").write_text(_text(random.Random(SEED + nbytes), nbytes))
    return _cached(f"corpus{nbytes}", generate, nbytes) / "corpus.txt"


def website() -> Path:
    """A small static site: an index and 8 pages of 2-24 KiB."""
    def generate(d: Path) -> None:
        rng = random.Random(SEED + 1)
        (d / "www" / "docs").mkdir(parents=True)
        pages = [f"docs/page{k}.html" for k in range(8)]
        links = "".join(f'<li><a href="/{p}">{p}</a></li>\n' for p in pages)
        (d / "www" / "index.html").write_text(
            f"<!doctype html><html><head><title>index</title></head><body><ul>\n{links}"
            f"</ul><p>{_text(rng, 4000)}</p></body></html>\n")
        for k, p in enumerate(pages):
            (d / "www" / p).write_text(
                f"<!doctype html><html><head><title>page {k}</title></head><body><p>"
                f"{_text(rng, rng.randint(2, 24) << 10)}</p></body></html>\n")
    return _cached("www", generate) / "www"


CLIP_SIZE, CLIP_FRAMES = "320x240", 80


def clip(frames: int) -> Path:
    """An MJPEG clip of ``frames`` frames from ffmpeg's own synthetic source, with motion
    and noise so the encoder has work."""
    def generate(d: Path) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise GeneralError("the video workloads need ffmpeg on the host")
        src = f"testsrc2=size={CLIP_SIZE}:rate=25,noise=alls=12:allf=t+u:all_seed={SEED % 65536}"
        res = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi",
                              "-i", src, "-frames:v", str(frames), "-c:v", "mjpeg",
                              "-q:v", "4", str(d / "clip.avi")], capture_output=True, text=True)
        if res.returncode != 0:
            raise GeneralError(f"ffmpeg could not make the clip: {res.stderr[-500:]}")
    return _cached(f"clip{frames}", generate, frames, CLIP_SIZE) / "clip.avi"


def records(n: int) -> Path:
    """A CSV of ``n`` orders: id, amount, customer, city, day."""
    def generate(d: Path) -> None:
        rng = random.Random(SEED + 2)
        customers = [f"cust{rng.randrange(10**6):06d}" for _ in range(20000)]
        cities = ["berlin", "lisbon", "osaka", "lima", "oslo", "quito", "perth", "cairo"]
        rows = (f"{rng.randrange(10**9)},{rng.randint(100, 99999) / 100:.2f},"
                f"{rng.choice(customers)},{rng.choice(cities)},2025-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}\n" for _ in range(n))
        (d / "orders.csv").write_text("".join(rows))
    return _cached(f"orders{n}", generate, n) / "orders.csv"


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_cluster() -> Path:
    """An empty PostgreSQL cluster made by initdb (trust authentication, C locale), owned by
    the host's postgres user, as a tar.zst: the guest unpacks it and runs the server as
    that user."""
    def generate(d: Path) -> None:
        import pwd

        if not (PG_BIN / "initdb").is_file():
            raise GeneralError(f"g-pgbench needs PostgreSQL 15 on the host ({PG_BIN})")
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            raise GeneralError("g-pgbench needs the host's postgres user") from None
        if os.geteuid() != 0:
            raise GeneralError("g-pgbench's cluster is made as root (initdb runs as postgres)")
        for p in (d.parent, d):  # the temporary directory it is made in is 0700
            os.chmod(p, 0o755)
        os.chown(d, pg.pw_uid, pg.pw_gid)
        res = subprocess.run(["setpriv", f"--reuid={pg.pw_uid}", f"--regid={pg.pw_gid}",
                              "--init-groups", str(PG_BIN / "initdb"), "-D", str(d / "data"),
                              "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                              "--locale=C"], capture_output=True, text=True)
        if res.returncode != 0:
            raise GeneralError(f"initdb failed: {res.stderr[-500:]}")
        # One compressed archive: the guest reads 2 MB over virtiofs, not 40 MB of files.
        res = subprocess.run(["tar", "--zstd", "-cf", str(d / "cluster.tar.zst"), "-C", str(d),
                              "data"], capture_output=True, text=True)
        if res.returncode != 0:
            raise GeneralError(f"tar of the cluster failed: {res.stderr[-500:]}")
        shutil.rmtree(d / "data")
    return _cached("pgcluster", generate) / "cluster.tar.zst"


STDLIB_TESTS = Path("/usr/lib/python3.11/test")
# Modules of CPython's own test suite that pass as root on a read-only root: 1-3 s each in
# the lab guest (most of it the interpreter's start), test_heapq about 5 s.
TEST_MODULES = ("test_textwrap", "test_fractions", "test_bisect", "test_shlex", "test_string",
                "test_heapq", "test_colorsys", "test_binascii", "test_operator", "test_sort")


def stdlib_tests() -> list[str]:
    missing = [m for m in TEST_MODULES if not (STDLIB_TESTS / f"{m}.py").is_file()]
    if missing:
        raise GeneralError(f"g-tests needs CPython's test suite (libpython3.11-testsuite): "
                           f"{', '.join(missing)} missing")
    return list(TEST_MODULES)


# --- the workloads ----------------------------------------------------------------------------

def _g(p: Path) -> str:
    return guest_path(p)


SUITE: tuple[GeneralWorkload, ...] = (
    GeneralWorkload("g-nginx", "nginx, wrk",
                    "nginx (2 workers) serving a static page to wrk (2 threads, 16 "
                    "connections) for 8 s: p99 request latency",
                    "nginx.sh", "p99_ms", "ms", True, lambda: [_g(website()), "8", "16"]),
    GeneralWorkload("g-redis", "redis-server, redis-benchmark",
                    "redis-server driven by redis-benchmark (SET and GET, 16 clients): p99 "
                    "latency of the worse command",
                    "redis.sh", "p99_ms", "ms", True, lambda: ["8000", "16"]),
    GeneralWorkload("g-pipe", "perf bench sched pipe",
                    "perf bench sched pipe: two processes ping-pong over pipes",
                    "pipe.sh", "usec_per_op", "us", True, lambda: ["4000"]),
    GeneralWorkload("g-hackbench", "hackbench (rt-tests)",
                    "hackbench: 4 groups of 20 sender and 20 receiver threads over pipes",
                    "hackbench.sh", "hackbench_s", "s", True, lambda: ["4", "450"]),
    GeneralWorkload("g-xz", "xz",
                    "xz -T2 -6 (512 KiB blocks) of a text corpus: MB compressed per second",
                    "xz.sh", "mb_per_s", "MB/s", False, lambda: [_g(corpus(5_000_000))]),
    GeneralWorkload("g-ffmpeg", "ffmpeg, libx264",
                    "ffmpeg MJPEG decode piped into an ffmpeg libx264 encode (2 threads)",
                    "ffmpeg.sh", "frames_per_s", "frames/s", False,
                    lambda: [_g(clip(CLIP_FRAMES)), str(CLIP_FRAMES), CLIP_SIZE]),
    GeneralWorkload("g-tests", "xargs -P 2, python3 -m unittest",
                    "xargs -P 2 runs python3 -m unittest on 10 modules of CPython's test "
                    "suite, a process each: the suite's wall time",
                    "tests.sh", "suite_s", "s", True, lambda: ["2", *stdlib_tests()]),
    GeneralWorkload("g-sqlite", "SQLite (python3 sqlite3)",
                    "2 SQLite readers beside a writer on one WAL database for 8 s: the "
                    "readers' p99 query latency",
                    "sqlite.sh", "read_p99_ms", "ms", True, lambda: ["8", "2"]),
    GeneralWorkload("g-pgbench", "PostgreSQL 15, pgbench",
                    "PostgreSQL with pgbench's TPC-B-like load (scale 1, 8 clients, 8 s): "
                    "transactions per second",
                    "pgbench.sh", "tx_per_s", "tx/s", False,
                    lambda: [_g(pg_cluster()), "1", "8", "8"]),
    GeneralWorkload("g-interactive", "lighttpd, python3 http.client, ffmpeg",
                    "an HTTP user (20 ms think time) of lighttpd beside an ffmpeg video "
                    "export for 6 s: the user's p99 request latency",
                    "interactive.sh", "p99_ms", "ms", True,
                    lambda: [_g(website()), _g(clip(CLIP_FRAMES)), "6", "20"]),
    GeneralWorkload("g-bursty", "gzip, bzip2",
                    "bursts of 4 gzip -6 jobs every second beside a bzip2 -9 batch job: "
                    "p99 job completion time from its burst's release",
                    "bursty.sh", "completion_p99_ms", "ms", True,
                    lambda: [_g(corpus(1_000_000)), "1000", "10", "4"]),
    GeneralWorkload("g-openssl", "openssl speed",
                    "openssl speed -multi 3 of SHA-256 and AES-128-CBC (16 KiB blocks): "
                    "summed MB/s", "openssl.sh", "mb_per_s", "MB/s", False,
                    lambda: ["3", "4"]),
    GeneralWorkload("g-sort", "GNU sort",
                    "sort --parallel=2 of a CSV of orders by city, then id",
                    "sort.sh", "sort_s", "s", True, lambda: [_g(records(750_000))]),
    GeneralWorkload("g-sysbench", "sysbench",
                    "sysbench threads: 8 threads yielding under 4 mutexes for 8 s: events per "
                    "second", "sysbench.sh", "events_per_s", "events/s", False,
                    lambda: ["8", "8"]),
)

BY_NAME = {w.name: w for w in SUITE}


def command(w: GeneralWorkload) -> str:
    """The shell command the lab runs for ``w`` (its inputs prepared first)."""
    args = " ".join(shlex.quote(a) for a in w.args())
    return f"sh {shlex.quote(_g(w.script_path()))} {args}"
