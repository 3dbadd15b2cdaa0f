"""Time the Verifier per stage and in total for each library policy.

Target: 60 s or less per policy, dynamic stage included, with the deployment settings.
The baseline, measured in the same run: a bare lab boot (LabSession up and down), so the
numbers read as "this many boots' worth". Each policy gets its own boot, as `schedcpctl
verify` does. Writes benchmarks/results/verifier.json.

    python benchmarks/verifier.py [--quick] [POLICY ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from schedcpd.bpf.policy import load_library
from schedcpd.lab.session import LabSession
from schedcpd.verifier import pipeline
from schedcpd.verifier.dynamic import QUICK, DynamicSettings

TARGET_S = 60.0
OUT = Path(__file__).parent / "results" / "verifier.json"


async def bare_boot() -> float:
    t0 = time.monotonic()
    async with LabSession():
        pass
    return time.monotonic() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("policies", nargs="*")
    ap.add_argument("--quick", action="store_true", help="the test settings instead")
    args = ap.parse_args()
    settings = QUICK if args.quick else DynamicSettings()
    os.environ.setdefault("SCHEDCP_STATE_DIR", tempfile.mkdtemp(prefix="schedcp-bench-"))
    specs = [p for p in load_library() if not args.policies or p.name in args.policies]
    boot = await bare_boot()
    print(f"baseline: bare lab boot {boot:.1f} s; settings {settings}")
    print(f"{'policy':14} {'static':>7} {'kernel':>7} {'dynamic':>8} {'total':>7} "
          f"{'x boot':>7}  verdict")
    rows: list[dict[str, object]] = []
    totals: list[float] = []
    for spec in specs:
        t0 = time.monotonic()
        v = await pipeline.verify(spec.source, {}, settings=settings)
        total = time.monotonic() - t0
        per = {s.stage: s.seconds for s in v.stages}
        totals.append(total)
        rows.append({"policy": spec.name, "stages_s": per, "boot_s": v.boot_seconds,
                     "total_s": total, "ratio_to_boot": total / boot, "passed": v.passed,
                     "reason": v.reason(), "within_target": total <= TARGET_S})
        print(f"{spec.name:14} {per.get('static', 0):7.1f} {per.get('kernel', 0):7.1f} "
              f"{per.get('dynamic', 0):8.1f} {total:7.1f} {total / boot:7.1f}  "
              f"{'pass' if v.passed else 'FAIL ' + v.reason()}")
    worst = max(totals, default=0.0)
    print(f"worst total {worst:.1f} s (target {TARGET_S:.0f} s): "
          f"{'met' if worst <= TARGET_S else 'MISSED'}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"baseline_boot_s": boot, "target_s": TARGET_S,
                               "settings": settings.__dict__, "policies": rows}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
