"""sched-agent's own cost: control-plane time per iteration and LLM use per episode.

    .venv/bin/python benchmarks/agent.py [--backends builtin,openai] [--verifier quick]
        [--runs 4] [--workload longtail]

For each backend it starts `schedcpd` (vm target, auto mode) on a private bus and runs one
episode on a lab workload. From the episode's record it reports, per iteration, the
control-plane time (observation's share, planning, verification, deployment, learning:
everything but the workload's own runs, which the record keeps apart) and, per episode,
the LLM calls and tokens. ``openai`` runs against a real llama.cpp server with the 270M
model from PyPI (tests.support.llm): its numbers are the plumbing's cost, not a capable
model's. The same-run baseline is one bare lab cycle (boot, attach fifo, detach, power
off): the least any iteration that deploys must pay. Target: 30 s or less per iteration
with builtin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schedcpd.bpf.scheduler import prepare_policy
from schedcpd.demo import lab_config
from schedcpd.lab import Step, run_steps
from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess, Signals

RESULTS = Path(__file__).parent / "results"
TARGET_S = 30.0


async def lab_cycle() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        load = prepare_policy("fifo", {}, Path(tmp))
        t0 = time.monotonic()
        (res,) = await run_steps([Step("true", 30, load)])
        assert res.ok, res.summary()
        return time.monotonic() - t0


@contextlib.contextmanager
def model_server(backend: str) -> Iterator[tuple[str, str]]:
    if backend == "builtin":
        yield "", ""
        return
    from tests.support.llm import MODEL_ALIAS, llama_server

    with llama_server() as url:
        yield MODEL_ALIAS, url


async def episode(backend: str, depth: str, runs: int, workload: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_s, model_server(backend) as (model, url):
        tmp = Path(tmp_s)
        cfg = tmp / "schedcpd.toml"
        cfg.write_text(lab_config(depth, runs, backend=backend, model=model, url=url))
        with private_bus(tmp) as bus:
            d = DaemonProcess(bus, tmp / "state", cfg, "--target", "vm")
            d.start()
            try:
                c = await d.client(timeout_s=300)
                sig = Signals()
                await c.on_signals(sig)
                t = time.monotonic()
                ep_id = (await c.tool("optimize", target=f"benchmark ({backend})",
                                      workload=workload))["episode_id"]
                await sig.wait("EpisodeFinished", 3600, after=t)
                full: dict[str, Any] = await c.tool("episode", episode_id=ep_id,
                                                    record=True)
                full["elapsed_s"] = time.monotonic() - t
                c.close()
                return full
            finally:
                d.stop()


def summarize(backend: str, ep: dict[str, Any], cycle_s: float) -> dict[str, Any]:
    rec = ep["record"]
    its = rec["iterations"]
    per = [it["seconds"] for it in its]
    work = [it["workload_s"] for it in its]
    u = rec["usage"]
    out = {"backend": backend, "state": ep["state"], "stop_reason": rec["stop_reason"],
           "iterations": len(its), "control_plane_s": [round(x, 1) for x in per],
           "workload_s": [round(x, 1) for x in work],
           "median_control_plane_s": round(statistics.median(per), 1) if per else None,
           "ratio_to_lab_cycle": round(statistics.median(per) / cycle_s, 2) if per else None,
           "episode_s": round(ep["elapsed_s"], 1), "llm_calls": u["llm_calls"],
           "tokens": u["tokens"], "outcomes": [it["outcome"] for it in its],
           "feedback": [it["feedback"] for it in its if it.get("feedback")]}
    if backend == "builtin" and per:
        out["within_target"] = statistics.median(per) <= TARGET_S
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    cycle = await lab_cycle()
    print(f"baseline: one lab cycle (boot, attach fifo, detach, power off) {cycle:.1f} s")
    rows = []
    for backend in args.backends.split(","):
        print(f"{backend}: one episode on '{args.workload}' ...", flush=True)
        ep = await episode(backend, args.verifier, args.runs, args.workload)
        row = summarize(backend, ep, cycle)
        rows.append(row)
        print(f"  {row['iterations']} iteration(s), control plane "
              f"{row['control_plane_s']} s (median {row['median_control_plane_s']} s, "
              f"{row['ratio_to_lab_cycle']}x a lab cycle), workload {row['workload_s']} s, "
              f"{row['llm_calls']} LLM calls, {row['tokens']} tokens; {row['state']}: "
              f"{row['stop_reason']}", flush=True)
    return {"lab_cycle_s": round(cycle, 2), "target_s": TARGET_S, "verifier": args.verifier,
            "feedback_runs": args.runs, "workload": args.workload, "episodes": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="builtin,openai")
    ap.add_argument("--verifier", choices=["quick", "full"], default="quick")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--workload", default="longtail")
    result = asyncio.run(main(ap.parse_args()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agent.json").write_text(json.dumps(result, indent=1))
    print(f"saved {RESULTS / 'agent.json'}")
