"""Which lab processes (qemu, virtiofsd, the loader) a test or a daemon left running."""

from __future__ import annotations

import os
import subprocess


def lab_processes(parents: tuple[int, ...] | None = None) -> list[str]:
    """qemu and virtiofsd processes started by this test process (or by ``parents``), and
    orphans (parent 1): other lab users on the same machine are not ours to count."""
    mine = {os.getpid(), 1} if parents is None else {*parents, 1}
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True,
                         text=True).stdout
    found = []
    for line in out.splitlines():
        pid, ppid, args = line.split(None, 2)
        if int(ppid) in mine and any(n in args for n in ("qemu-system", "virtiofsd",
                                                         "schedcp-loader")):
            found.append(f"{pid} {args}")
    return found
