"""A fork and exec storm against the proc-connector event source.

A driver process spawns N short-lived processes (fork + exec of /bin/true, up to 4 in
flight). A listener process runs ``ProcConnectorSource`` exactly as the daemon would and
counts, by a raw hook, the forks of the driver and the execs and exits of its children;
the counts are compared with N (none lost). Reported: events handled per second, daemon
CPU time per 1,000 events, the listener's peak RSS, the source's own loss counters and
how many episodes the storm became. Same-run baseline: the storm alone, with no listener,
run just before (its process rate, so the listener's cost to the machine shows as a ratio).

    .venv/bin/python benchmarks/events.py [--processes 20000]

Writes benchmarks/results/events.json and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DRIVER = r"""
import os, sys, time
n = int(sys.argv[1])
t = time.monotonic()
live = 0
for _ in range(n):
    os.posix_spawn("/bin/true", ["true"], {})
    live += 1
    if live >= 4:
        os.wait(); live -= 1
while live:
    os.wait(); live -= 1
print(time.monotonic() - t)
"""


async def listen() -> None:
    from schedcpd.events.proc_connector import (
        PROC_EVENT_EXEC,
        PROC_EVENT_EXIT,
        PROC_EVENT_FORK,
        ProcConnectorSource,
    )

    counts = {"forks": 0, "execs": 0, "exits": 0}
    children: set[int] = set()
    driver = -1

    def hook(what: int, a: int, b: int, c: int, d: int) -> None:
        if what == PROC_EVENT_FORK and b == driver and c == d:
            children.add(d)
            counts["forks"] += 1
        elif what == PROC_EVENT_EXEC and b in children:
            counts["execs"] += 1
        elif what == PROC_EVENT_EXIT and a == b and b in children:
            counts["exits"] += 1
            children.discard(b)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    episodes = []
    async with ProcConnectorSource(settle_s=0.5, raw_hook=hook) as src:
        print("READY", flush=True)
        driver = int((await reader.readline()).decode())
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        e0, t0 = src.stats.events, time.monotonic()
        await reader.readline()  # the storm is over
        # The socket may still hold events: wait until it has been quiet for a moment.
        last = -1
        while src.stats.events != last:
            last = src.stats.events
            await asyncio.sleep(0.3)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = time.monotonic()
        src.flush()
        episodes = [ev.to_dict() for ev in src.pending()]
        st = src.stats
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    events = st.events - e0
    print(json.dumps({
        **counts, "events": events, "lost_seq": st.lost, "overruns": st.overruns,
        "cpu_s": cpu, "window_s": t1 - t0, "max_rss_kb": r1.ru_maxrss,
        "episodes": [(e["action"], e["episode"]["name"]) for e in episodes],  # type: ignore[index]
    }), flush=True)


def storm(n: int) -> float:
    out = subprocess.run([sys.executable, "-c", DRIVER, str(n)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


def run(n: int) -> dict[str, object]:
    base_s = storm(n)
    lst = subprocess.Popen([sys.executable, __file__, "--listen"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    assert lst.stdin is not None and lst.stdout is not None
    try:
        assert lst.stdout.readline().strip() == "READY"
        drv = subprocess.Popen([sys.executable, "-c", DRIVER, str(n)], stdout=subprocess.PIPE,
                               text=True)
        lst.stdin.write(f"{drv.pid}\n")
        lst.stdin.flush()
        out, _ = drv.communicate()
        with_s = float(out.strip())
        lst.stdin.write("done\n")
        lst.stdin.flush()
        res = json.loads(lst.stdout.readline())
    finally:
        lst.kill()
        lst.wait()
    events = int(res["events"])
    return {
        "processes": n,
        "baseline_storm_s": round(base_s, 3),
        "baseline_processes_per_s": round(n / base_s),
        "storm_with_listener_s": round(with_s, 3),
        "storm_slowdown": round(with_s / base_s, 3),
        "events_seen": events,
        "events_per_s": round(events / with_s),
        "counted": {k: res[k] for k in ("forks", "execs", "exits")},
        "lost": n * 3 - (res["forks"] + res["execs"] + res["exits"]),
        "lost_seq_gaps": res["lost_seq"],
        "overruns": res["overruns"],
        "cpu_ms_per_1000_events": round(1000 * res["cpu_s"] / max(1, events) * 1000, 2),
        "listener_cpu_share": round(res["cpu_s"] / with_s, 3),
        # What one CPU could keep up with at this cost per event (the storm itself is
        # limited by how fast this machine can fork and exec).
        "capacity_events_per_cpu_s": round(events / max(1e-9, res["cpu_s"])),
        "max_rss_mb": round(res["max_rss_kb"] / 1024, 1),
        "episodes": res["episodes"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=20000)
    ap.add_argument("--listen", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.listen:
        asyncio.run(listen())
        return
    res = run(args.processes)
    path = Path(__file__).parent / "results" / "events.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"events: {res['processes']} processes, {res['events_per_s']} events/s, "
          f"{res['lost']} lost, {res['cpu_ms_per_1000_events']} ms CPU per 1000 events, "
          f"RSS {res['max_rss_mb']} MB, storm slowed x{res['storm_slowdown']} "
          f"(baseline {res['baseline_processes_per_s']} processes/s alone); {path}")


if __name__ == "__main__":
    main()
