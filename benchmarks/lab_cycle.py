"""Time whole lab cycles: boot, attach fifo, a 1 s workload, detach, power off.

Prints the median of N cycles (default 5) and, as a same-run baseline, the median of bare
boots running `true` with no scheduler, interleaved with the full cycles so machine noise
hits both alike. Target: a full cycle in 5 s or less.

    .venv/bin/python benchmarks/lab_cycle.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.lab import run_in_guest

# Two CPU-bound loops for 1 s (not stress-ng: its own start-up costs ~0.7 s under TCG).
SPIN = "timeout 1 sh -c 'while :; do :; done'"
WORKLOAD = f"{SPIN} & {SPIN}; wait; true"


async def main(runs: int) -> dict[str, object]:
    full: list[float] = []
    bare: list[float] = []
    attach: list[float] = []
    detach: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        load = prepare_policy("fifo", None, Path(tmp))
        for i in range(runs):
            t = time.monotonic()
            r = await run_in_guest(WORKLOAD, timeout_s=30, scheduler=load)
            full.append(time.monotonic() - t)
            attach.append(r.attach_s)
            detach.append(r.detach_s)
            if not (r.ok and r.state_during == "enabled" and r.state_after == "disabled"):
                raise SystemExit(f"cycle {i} did not complete: {r.summary()}")
            t = time.monotonic()
            await run_in_guest("true", timeout_s=30)
            bare.append(time.monotonic() - t)
    med, base = statistics.median(full), statistics.median(bare)
    return {
        "runs": runs, "cycle_median_s": round(med, 3), "cycle_all_s": [round(x, 3) for x in full],
        "attach_median_s": round(statistics.median(attach), 3),
        "detach_median_s": round(statistics.median(detach), 3),
        "bare_boot_median_s": round(base, 3), "ratio_to_bare_boot": round(med / base, 3),
        "target_s": 5.0, "meets_target": med <= 5.0,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    res = asyncio.run(main(ap.parse_args().runs))
    out = Path(__file__).parent / "results" / "lab_cycle.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"lab cycle (boot, attach fifo, 1 s workload, detach, power off): "
          f"median {res['cycle_median_s']} s over {res['runs']} runs; "
          f"bare boot {res['bare_boot_median_s']} s; ratio {res['ratio_to_bare_boot']}")
    print(json.dumps(res))
