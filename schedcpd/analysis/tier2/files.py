"""Reading files for an agent, under an allowlist: /proc, /sys and the workload's directory.

The path is resolved first (symlinks, ``..``, /proc/PID/root and /proc/PID/fd links), and
the resolved path must lie under an allowed root; a few /proc files that leak secrets or
memory are refused even there. Reads are bounded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from schedcpd.analysis.tier2 import MAX_OUTPUT_BYTES, ProbeError

ALLOWED_ROOTS = (Path("/proc"), Path("/sys"))
DENIED_NAMES = frozenset({"environ", "mem", "kcore", "kmem", "kmsg", "pagemap", "kpageflags",
                          "kpagecount", "kpagecgroup", "auxv", "syscall", "stack",
                          "personality", "timerslack_ns", "clear_refs", "coredump_filter"})


def _under(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def check_path(path: str, workload_dir: str | None = None) -> Path:
    """The resolved path if reading it is allowed; ProbeError otherwise."""
    if not path or "\0" in path:
        raise ProbeError("empty or invalid path")
    p = Path(os.path.realpath(path))
    roots = list(ALLOWED_ROOTS)
    if workload_dir:
        wd = Path(os.path.realpath(workload_dir))
        if wd == Path("/") or not wd.is_dir():
            raise ProbeError(f"not a usable workload directory: {workload_dir}")
        roots.append(wd)
    if not any(_under(p, r) for r in roots):
        raise ProbeError(f"{path} is outside the allowed roots (/proc, /sys, the workload's "
                         "directory)")
    if p.name in DENIED_NAMES and _under(p, Path("/proc")):
        raise ProbeError(f"{path}: this /proc file is never read")
    return p


def read_allowed(path: str, workload_dir: str | None = None,
                 max_bytes: int = MAX_OUTPUT_BYTES) -> dict[str, Any]:
    p = check_path(path, workload_dir)
    if not 0 < max_bytes <= MAX_OUTPUT_BYTES:
        raise ProbeError(f"max_bytes must be in (0, {MAX_OUTPUT_BYTES}]")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ProbeError(f"cannot open {path}: {exc.strerror}") from None
    try:
        if not os.path.isfile(f"/proc/self/fd/{fd}") and not _under(p, Path("/proc")) \
                and not _under(p, Path("/sys")):
            raise ProbeError(f"{path} is not a regular file")
        data = os.read(fd, max_bytes + 1)
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return {"probe": "file", "path": str(p), "truncated": len(data) > max_bytes,
            "text": data[:max_bytes].decode(errors="replace")}
