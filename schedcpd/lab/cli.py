"""`schedcpctl vm ...`: the lab from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from schedcpd.cli_common import Subparsers


def _vm_check(args: argparse.Namespace) -> int:
    from schedcpd.lab.check import vm_check
    from schedcpd.lab.kernel import KernelError
    from schedcpd.lab.setup import SetupError, ensure
    from schedcpd.lab.vm import LabError

    try:
        ensure(say=lambda msg: print(msg, file=sys.stderr, flush=True))
        print("vm check: booting the lab, attaching fifo, running a CPU workload...", flush=True)
        rep = asyncio.run(vm_check(args.timeout))
    except (KernelError, LabError, SetupError) as exc:
        print(f"vm check: {exc}", file=sys.stderr)
        return 1
    if not rep.passed:
        print(f"vm check: FAILED: {rep.problem}", file=sys.stderr)
    print(json.dumps(rep.as_json()))
    return 0 if rep.passed else 1


def register(sub: Subparsers) -> None:
    vm = sub.add_parser("vm", help="the sched_ext micro-VM lab")
    vsub = vm.add_subparsers(dest="vm_cmd", required=True)
    check = vsub.add_parser("check", help="boot, attach fifo, run a workload, detach")
    check.add_argument("--timeout", type=float, default=60.0, help="workload limit (s)")
    check.set_defaults(func=_vm_check)
