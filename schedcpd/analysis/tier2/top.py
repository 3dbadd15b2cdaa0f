"""A top-like snapshot: the busiest processes over a short interval, with their patterns."""

from __future__ import annotations

import asyncio
from typing import Any

from schedcpd.analysis import tier1
from schedcpd.analysis.tier2 import MAX_SECONDS, ProbeError

MAX_ROWS = 20


def _snapshot(seconds: float, rows: int) -> dict[str, Any]:
    a = tier1.snapshot()
    import time

    time.sleep(seconds)
    b = tier1.snapshot()
    dt = max(1e-3, b.t - a.t)
    procs = tier1.proc_rows(a, b, set(b.procs), dt)[:rows]
    for r in procs:
        r["state"] = b.procs[int(r["pid"])].state
        r["cmd"] = tier1.cmdline(int(r["pid"]), 80)
    return {"probe": "top", "seconds": round(dt, 3), "nprocs": len(b.procs),
            "runnable": b.running, "blocked": b.blocked, "processes": procs}


async def top_snapshot(seconds: float = 1.0, rows: int = MAX_ROWS) -> dict[str, Any]:
    if not 0 < seconds <= MAX_SECONDS or not 0 < rows <= 100:
        raise ProbeError(f"seconds must be in (0, {MAX_SECONDS}] and rows in (0, 100]")
    return await asyncio.to_thread(_snapshot, seconds, rows)
