"""The daemon's own cost: idle CPU, memory, and the time from a request to a deployment.

    .venv/bin/python benchmarks/daemon.py [--idle-s 60]

Starts `schedcpd` (vm target) on a private bus and measures, from /proc:
- idle CPU over --idle-s seconds, nothing deployed and then with a scheduler deployed and
  watched by the canary (target: under 1% of one core), for the daemon and, separately,
  for the lab guest it keeps running;
- the daemon's RSS (target: under 150 MB; the embedding model is not loaded by the
  daemon's idle path);
- the time from a long-tail workload's start to PolicyDeployed with the built-in planner
  (the daemon profiles the guest, plans, verifies, deploys), and from an Optimize request
  naming a policy to PolicyDeployed, cold (the verifier runs) and warm (the same object,
  its earlier verdict reused).
The same-run baseline is a bare `python -c pass` process's RSS and a sleeping process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess, Signals
from tests.support.processes import lab_processes
from tests.support.workloads import long_tail_until_observed

LONG_TAIL = long_tail_until_observed(120)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before = {k: cpu_s(p) for k, p in pids.items()}
    time.sleep(seconds)
    return {k: round(100 * (cpu_s(p) - before[k]) / seconds, 3) for k, p in pids.items()}


async def deployed_after(c: Any, sig: Signals, t: float, **options: Any
                         ) -> tuple[dict[str, Any], float]:
    """Request an episode; its PolicyDeployed and the seconds from ``t`` to it. Returns
    once the episode has finished: only one runs at a time."""
    await c.tool("optimize", target="benchmark", **options)
    got = await sig.wait("PolicyDeployed", 1200, after=t)
    took = round(time.monotonic() - t, 2)
    await sig.wait("EpisodeFinished", 1200, after=t)
    return got, took


async def main(idle_s: float) -> dict[str, object]:
    base = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(1)
    baseline = {"python_rss_mb": round(rss_mb(base.pid), 1)}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cfg = tmp / "schedcpd.toml"
        cfg.write_text('mode = "auto"\n[canary]\nwindow_s = 10.0\n')
        with private_bus(tmp) as bus:
            d = DaemonProcess(bus, tmp / "state", cfg, "--target", "vm")
            d.start()
            try:
                c = await d.client(timeout_s=300)
                assert d.proc is not None
                pid = d.proc.pid
                qemu = next(int(p.split()[0]) for p in lab_processes(parents=(pid,))
                            if "qemu-system" in p)
                pids = {"daemon": pid, "guest": qemu, "baseline_sleeper": base.pid}
                res: dict[str, object] = {"baseline": baseline,
                                          "rss_mb_idle": round(rss_mb(pid), 1)}
                res["idle_cpu_percent_nothing_deployed"] = idle_cpu(pids, idle_s)
                sig = Signals()
                await c.on_signals(sig)
                # A long-tail workload starts; the built-in planner picks from the profile
                # the daemon takes of the guest; the verifier runs (cold).
                t = time.monotonic()
                await c.tool("start_workload", command=LONG_TAIL)
                got, took = await deployed_after(c, sig, t)
                res["workload_start_to_deployed_s_planner_cold"] = took
                res["planner_choice"] = {"policy": got["policy"], "params": got["params"]}
                t = time.monotonic()
                _, took = await deployed_after(c, sig, t, policy="fifo")
                res["request_to_deployed_s_named_cold"] = took
                # The planner's object again: its verdict is remembered (warm).
                t = time.monotonic()
                _, took = await deployed_after(c, sig, t, policy=got["policy"],
                                               params=got["params"])
                res["request_to_deployed_s_named_warm"] = took
                await asyncio.sleep(12)  # past the canary window
                res["idle_cpu_percent_deployed"] = idle_cpu(pids, idle_s)
                res["rss_mb_after_deploy"] = round(rss_mb(pid), 1)
                c.close()
            finally:
                d.stop()
                base.kill()
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle-s", type=float, default=60.0)
    out = asyncio.run(main(ap.parse_args().idle_s))
    path = Path(__file__).parent / "results" / "daemon.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
