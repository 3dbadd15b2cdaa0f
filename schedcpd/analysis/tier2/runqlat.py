"""Run-queue latency and per-comm runtime/wait from the CO-RE probe (bpf/probes/runqlat.bpf.c)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from schedcpd.analysis.tier2 import MAX_SECONDS, ProbeError
from schedcpd.analysis.tier2.build import reader_binary, runqlat_object

TOP_COMMS = 10


def hist_percentile(hist: list[int], q: float) -> float | None:
    """Upper edge (us) of the log2 bucket holding the q-th percentile; None if empty."""
    total = sum(hist)
    if total == 0:
        return None
    need, seen = total * q / 100, 0
    for b, n in enumerate(hist):
        seen += n
        if seen >= need:
            return float(2 ** (b + 1))
    return float(2 ** len(hist))


def summarize(raw: dict[str, Any], top: int = TOP_COMMS) -> dict[str, Any]:
    hist: list[int] = [int(x) for x in raw["hist_us_log2"]]
    while hist and hist[-1] == 0:
        hist.pop()
    comms = sorted(raw["comms"], key=lambda c: -int(c["wait_ns"]))
    rows = [{"comm": c["comm"], "runtime_ms": round(c["runtime_ns"] / 1e6, 2),
             "wait_ms": round(c["wait_ns"] / 1e6, 2),
             "avg_wait_us": round(c["wait_ns"] / 1e3 / c["runs"], 1) if c["runs"] else 0.0,
             "max_wait_us": round(c["max_wait_ns"] / 1e3, 1), "runs": c["runs"]}
            for c in comms[:top]]
    return {"probe": "runqlat", "seconds": raw["seconds"], "samples": sum(hist),
            "hist_us_log2": hist,
            "p50_us": hist_percentile(hist, 50), "p90_us": hist_percentile(hist, 90),
            "p99_us": hist_percentile(hist, 99), "comms_seen": len(raw["comms"]),
            "comms": rows}


async def run_queue_latency(seconds: float = 1.0, tgid: int | None = None) -> dict[str, Any]:
    """Watch the scheduler for ``seconds`` (all tasks, or one process's threads)."""
    if not 0 < seconds <= MAX_SECONDS:
        raise ProbeError(f"seconds must be in (0, {MAX_SECONDS}]")
    obj, reader = await asyncio.to_thread(lambda: (runqlat_object(), reader_binary()))
    args = [str(reader), str(obj), f"{seconds:g}"] + ([str(tgid)] if tgid else [])
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds + 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ProbeError("the run-queue probe did not finish in time") from None
    if proc.returncode != 0:
        raise ProbeError(f"the run-queue probe failed: {err.decode(errors='replace')[-2000:]}")
    return summarize(json.loads(out))
