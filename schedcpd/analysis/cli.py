"""`schedcpctl profile [--pid N | --cgroup PATH | -- CMD] [--json]`: the tier-1 profile."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from schedcpd.cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers


def _profile(args: argparse.Namespace) -> int:
    from schedcpd.analysis import tier1
    from schedcpd.analysis.profile import from_tier1

    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if sum(x is not None and x != [] for x in (args.pid, args.cgroup, cmd or None)) > 1:
        print("profile: give at most one of --pid, --cgroup, -- CMD", file=sys.stderr)
        return EXIT_USAGE
    proc: subprocess.Popen[bytes] | None = None
    t0 = time.monotonic()
    try:
        if cmd:
            try:
                # The command's output goes to stderr: stdout ends with our JSON line.
                proc = subprocess.Popen(cmd, stdout=2)
            except OSError as exc:
                print(f"profile: cannot run {cmd[0]}: {exc}", file=sys.stderr)
                return EXIT_FAILED
        scope = tier1.Scope(pid=proc.pid if proc else args.pid, cgroup=args.cgroup)
        summary = tier1.sample(args.interval, scope)
        rc = proc.wait() if proc else 0
    except ValueError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    prof = from_tier1(summary, tuple(args.goal or ()))
    out: dict[str, object] = {"tier1": summary, "profile": prof.to_dict()}
    if proc is not None:
        out["command"] = {"argv": cmd, "exit": rc, "wall_s": round(time.monotonic() - t0, 3)}
    if not args.json:
        print(f"{summary['scope']}: {summary['character']}")
        print(f"  cpu {summary['cpu_pct']}  load {summary['load']}  runnable "
              f"{summary['runnable']}  ctxsw/s {summary['ctxsw_per_s']}  "
              f"forks/s {summary['forks_per_s']}")
        for row in summary["top"]:
            print(f"  {row['pid']:>7} {row['comm']:<16} cpu {row['cpu']:<5} {row['pat']}")
        print(f"  fingerprint {prof.fingerprint}")
    print(json.dumps(out) if args.json else "", end="\n" if args.json else "")
    return EXIT_OK if rc == 0 else EXIT_FAILED


def register(sub: Subparsers) -> None:
    p = sub.add_parser("profile", help="tier-1 workload profile of the machine, a process "
                                       "tree, a cgroup or a command")
    p.add_argument("--pid", type=int, help="profile this process and its descendants")
    p.add_argument("--cgroup", help="profile the processes of this cgroup (path)")
    p.add_argument("--interval", type=float, default=1.0, help="sampling interval (s)")
    p.add_argument("--goal", action="append", help="an optimization goal (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON as the last line")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD: run CMD and profile it")
    p.set_defaults(func=_profile)
