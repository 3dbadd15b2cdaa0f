"""How the eight long-tail batches are sized: each task's CPU time with nothing beside it.

A batch is sized so that its long task does as much CPU work as its 39 short ones together
(``schedcpd/lab/longtail_tools.py``). Measured inside a batch, that work depends on the
scheduler: 40 tasks sharing two vCPUs cost more CPU than two (TCG counts the host's own
contention as guest time). So each batch runs here with its tasks one after another, each
alone, in one lab boot, and this prints per batch the long task's CPU time, the 39 short
ones' together, their ratio, and the factor that would make it 1.0. The baseline is the
batch's own short tasks, measured in the same run.

    .venv/bin/python benchmarks/longtail_sizes.py [--workloads lt-compress,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
from pathlib import Path

from schedcpd.lab import Step, run_steps
from schedcpd.lab import longtail_tools as lt

TASK = re.compile(r"^task (short|long) cpu_s=([\d.]+) ", re.M)


def sizes(w: lt.ToolWorkload, stdout: str) -> dict[str, object]:
    tasks = [(k, float(c)) for k, c in TASK.findall(stdout)]
    short = [c for k, c in tasks if k == "short"]
    long_ = next(c for k, c in tasks if k == "long")
    ratio = long_ / sum(short)
    return {"unit": w.unit, "factor": w.factor, "long_cpu_s": round(long_, 3),
            "shorts_cpu_s": round(sum(short), 3),
            "short_median_s": round(statistics.median(short), 4),
            "long_to_shorts": round(ratio, 3),
            # The long task's CPU time is its tool's start plus work in proportion to its
            # input, and the start is a short task's at most: the factor that makes 1.0.
            "balanced_factor": round(w.factor / ratio)}


async def main(names: list[str]) -> dict[str, object]:
    suite = [lt.BY_NAME[n] for n in names]
    steps = [Step(lt.command(w, alone=True), 2 * lt.TIMEOUT_S) for w in suite]
    results = await run_steps(steps)
    out: dict[str, object] = {}
    for w, r in zip(suite, results, strict=True):
        if not r.ok:
            raise SystemExit(f"{w.name}: {r.summary()}")
        out[w.name] = sizes(w, r.stdout)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default=",".join(w.name for w in lt.SUITE))
    res = asyncio.run(main(ap.parse_args().workloads.split(",")))
    path = Path(__file__).parent / "results" / "longtail_sizes.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    for name, r in res.items():
        assert isinstance(r, dict)
        print(f"{name:13s} long {r['long_cpu_s']:7.2f} s  39 short {r['shorts_cpu_s']:7.2f} s"
              f"  ratio {r['long_to_shorts']:.3f}  factor {r['factor']} -> "
              f"{r['balanced_factor']}")
