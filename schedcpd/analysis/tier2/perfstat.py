"""``perf stat`` counters over a bounded interval, machine-wide or for one process."""

from __future__ import annotations

import asyncio
from typing import Any

from schedcpd.analysis.tier2 import MAX_SECONDS, ProbeError

EVENTS = ("task-clock", "context-switches", "cpu-migrations", "page-faults", "cycles",
          "instructions")


def parse_csv(text: str) -> dict[str, float | None]:
    """``perf stat -x,`` lines: value,unit,event,...; unsupported counters become None."""
    out: dict[str, float | None] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        value, event = parts[0], parts[2]
        if event not in EVENTS:
            continue
        try:
            out[event] = float(value)
        except ValueError:
            out[event] = None  # "<not supported>", "<not counted>"
    return out


async def perf_stat(seconds: float = 1.0, pid: int | None = None) -> dict[str, Any]:
    if not 0 < seconds <= MAX_SECONDS:
        raise ProbeError(f"seconds must be in (0, {MAX_SECONDS}]")
    target = ["-p", str(pid)] if pid else ["-a"]
    args = ["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), *target, "--", "sleep",
            f"{seconds:g}"]
    try:
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise ProbeError("perf is not installed (linux-perf)") from None
    try:
        _, err = await asyncio.wait_for(proc.communicate(), seconds + 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ProbeError("perf stat did not finish in time") from None
    text = err.decode(errors="replace")
    counters = parse_csv(text)
    if proc.returncode != 0 or not counters:
        raise ProbeError(f"perf stat failed: {text.strip()[-1000:]}")
    ipc = None
    if counters.get("cycles") and counters.get("instructions") is not None:
        ipc = round(counters["instructions"] / counters["cycles"], 3)  # type: ignore[operator]
    return {"probe": "perf_stat", "seconds": seconds, "scope": f"pid {pid}" if pid else "system",
            "counters": counters, "ipc": ipc}
