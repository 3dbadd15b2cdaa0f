"""Profile a command while it runs: tier 1 over its first seconds, and the CPU time of every
process it ran (``tier2.exits``), in one JSON line.

    python3 -m schedcpd.analysis.run_profile --interval 2 -- sh -c 'make -j4'

What the agent's observation runs on the target when the episode has a workload: tier 1
shows how the work competes while it runs, the accounting shows its shape (one long job
among short ones, or equal workers), which two /proc reads cannot see. Standard library
only, like tier 1: the lab guest runs it with the host's bare python3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time

from schedcpd.analysis import tier1
from schedcpd.analysis.tier2 import exits

# Tier 1's first read waits this long after the command's start, so that it sees the work
# running rather than starting. Under TCG a tool's exec alone takes seconds: over the
# lab's latency workload's first 0.2-2.2 s its four stress-ng hogs used 0.11-0.18 CPU each
# (not CPU-bound yet), over 1.0-3.0 s 0.26 and over 1.5-3.5 s 0.38 (measured in the guest).
LEAD_S = 1.0
# A workload with a set-up of its own (inputs copied into memory, say) prints this line on
# its standard output when its measured part begins; with ``after_mark`` the lead counts
# from there. Set-up done in the workload's own first process is left out of the
# accounting too: the process that starts the most others is its driver (``exits.jobs``).
START_MARK = "@@measured"


def _marked(proc: subprocess.Popen[bytes]) -> threading.Event:
    """Set when the command prints START_MARK, or ends without it. Its output is read to
    the end either way: a full pipe would stop it."""
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(START_MARK.encode()):
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    return seen


def run(argv: list[str], interval_s: float, lead_s: float = LEAD_S,
        after_mark: bool = False) -> dict[str, object]:
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile(prefix="schedcp-acct-") as f:
        exits._acct(f.name)
        try:
            proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, stdout=(
                subprocess.PIPE if after_mark else subprocess.DEVNULL))
            try:
                if after_mark:
                    _marked(proc).wait()
                time.sleep(lead_s)
                summary = tier1.sample(interval_s)
            finally:
                rc = proc.wait()
        finally:
            exits._acct(None)
        ex = exits.summarize(exits.descendants(exits.parse(f.read()), proc.pid))
    return {"tier1": summary, "exits": ex, "exit": rc,
            "wall_s": round(time.monotonic() - t0, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="profile a command while it runs (JSON)")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--lead", type=float, default=LEAD_S,
                    help="seconds between the command's start and tier 1's first read")
    ap.add_argument("--after-mark", action="store_true",
                    help=f"count the lead from the command's {START_MARK!r} line")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("run_profile: no command (-- CMD...)", file=sys.stderr)
        return 2
    try:
        out = run(cmd, args.interval, args.lead, args.after_mark)
    except (ValueError, exits.ExitsError, OSError) as exc:
        print(f"run_profile: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
