"""g-bursty: work that arrives in periodic bursts beside a batch job.

Every PERIOD_MS a burst of JOBS ``gzip -6`` runs (one per chunk file) is released, BURSTS
times, while ``bzip2 -9`` compresses BACKGROUND over and over. A job's completion time is
from its burst's release to its exit (pidfd: no polling); a burst is late when its last job
ends after the next release. Prints the jobs' p50/p99 completion time, the late bursts and
how far the releases slipped as SCHEDCP_METRIC lines.

usage: python3 bursty.py PERIOD_MS BURSTS JOBS BACKGROUND CHUNK...
Standard library only: the lab guest runs it with the host's /usr/bin/python3.
"""

from __future__ import annotations

import os
import selectors
import shlex
import signal
import subprocess
import sys
import time


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main(period_ms: float, bursts: int, jobs: int, background: str, chunks: list[str]) -> int:
    period = period_ms / 1000
    sel = selectors.DefaultSelector()
    done: list[tuple[int, float]] = []  # (burst, completion time)
    failed = 0
    batch = f"while :; do bzip2 -9 -c {shlex.quote(background)} >/dev/null; done"
    bg = subprocess.Popen(["sh", "-c", batch], start_new_session=True)

    def collect(until: float | None) -> None:
        nonlocal failed
        while sel.get_map():
            timeout = None if until is None else until - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            for key, _ in sel.select(timeout):
                proc, burst, release = key.data
                t = time.monotonic()
                failed += proc.wait() != 0
                sel.unregister(key.fd)
                os.close(key.fd)
                done.append((burst, t - release))
        if until is not None:
            time.sleep(max(0.0, until - time.monotonic()))

    try:
        time.sleep(0.5)  # the batch job is running before the first burst
        print("@@measured", flush=True)
        t0 = time.monotonic()
        slip = []
        for b in range(bursts):
            release = t0 + b * period
            collect(release)
            slip.append(time.monotonic() - release)
            for j in range(jobs):
                proc = subprocess.Popen(["gzip", "-6", "-c", chunks[j % len(chunks)]],
                                        stdout=subprocess.DEVNULL)
                sel.register(os.pidfd_open(proc.pid), selectors.EVENT_READ,
                             (proc, b, release))
        collect(None)
    finally:
        os.killpg(bg.pid, signal.SIGTERM)
        bg.wait()
    if failed or len(done) != bursts * jobs:
        print(f"{failed} job(s) failed", file=sys.stderr)
        return 1
    last = {b: max(c for bb, c in done if bb == b) for b in range(bursts)}
    late = sum(1 for c in last.values() if c > period)
    times = [c for _, c in done]
    print(f"SCHEDCP_METRIC jobs {len(times)}")
    print(f"SCHEDCP_METRIC completion_p50_ms {pct(times, 50) * 1000:.1f}")
    print(f"SCHEDCP_METRIC completion_p99_ms {pct(times, 99) * 1000:.1f}")
    print(f"SCHEDCP_METRIC late_bursts {late}")
    print(f"SCHEDCP_METRIC release_slip_max_ms {max(slip) * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                  sys.argv[5:]))
