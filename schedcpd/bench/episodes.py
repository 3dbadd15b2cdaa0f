"""One optimization episode per workload, by the real daemon, and what to take from it.

Each workload gets a daemon of its own (a private D-Bus daemon, ``schedcpd`` with the
``vm`` target in auto mode and a fresh state directory): every episode starts on EEVDF
with an empty history, as the paper's agent meets each workload anew. The episode record
gives the agent's first choice (iteration 1's deployment), its choice after the
iterations (the best measured one, which the daemon leaves deployed, or EEVDF when none
helped), and what the control plane spent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schedcpd.demo import describe, lab_config, start_bus, stop_process

EEVDF = "eevdf"


@dataclass(frozen=True)
class EpisodeSettings:
    iterations: int = 3
    feedback_runs: int = 3
    verifier: str = "quick"
    backend: str = "builtin"
    model: str = ""
    url: str = ""
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class Choice:
    """A scheduler to measure: a library policy with its tunables, or EEVDF."""

    policy: str  # EEVDF for the kernel's default
    params: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.policy, tuple(sorted((k, str(v)) for k, v in self.params.items()))

    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.policy}({args})" if args else self.policy


def first_choice(record: dict[str, Any]) -> Choice:
    """What iteration 1 deployed; EEVDF if it deployed nothing (refused, or kept)."""
    its = record.get("iterations") or []
    if not its or not its[0].get("deployed"):
        return Choice(EEVDF)
    return Choice(str(its[0]["deployed"]), dict(its[0].get("params") or {}))


def final_choice(record: dict[str, Any]) -> Choice:
    """What the episode leaves deployed (agent.record's ``best``, agent.loop's ``_settle``):
    in a measured search the latest race winner the target did not measure worse, else
    the iteration with the largest significant gain, or EEVDF when none."""
    its = [it for it in record.get("iterations") or [] if it.get("deployed")]
    raced = [it for it in its if it.get("race_gain") is not None
             and it.get("outcome") in ("improved", "no_gain")]
    if raced:
        return Choice(str(raced[-1]["deployed"]), dict(raced[-1].get("params") or {}))
    good = [it for it in its if it.get("outcome") == "improved" and it.get("feedback")]
    if not good:
        return Choice(EEVDF)
    best = min(good, key=lambda it: _gain_order(it["feedback"]))
    return Choice(str(best["deployed"]), dict(best.get("params") or {}))


def _gain_order(fb: dict[str, Any]) -> float:
    ratio = float(fb["ratio"])
    return ratio if fb.get("lower_is_better", True) else -ratio


def costs(full: dict[str, Any]) -> dict[str, Any]:
    """Control-plane cost per iteration and per episode, from the episode's record: time
    outside the workload's own runs, verifier time, LLM calls and tokens."""
    rec = full.get("record") or {}
    its = rec.get("iterations") or []
    rows = [{"n": it.get("n"), "plan": _plan_label(it.get("plan")),
             "outcome": it.get("outcome", ""), "deployed": it.get("deployed", ""),
             "params": it.get("params") or {},
             "control_plane_s": round(float(it.get("seconds") or 0.0), 2),
             "verify_s": round(sum(float(a.get("seconds") or 0.0)
                                   for a in it.get("attempts") or []), 2),
             "workload_s": round(float(it.get("workload_s") or 0.0), 2),
             "feedback": it.get("feedback")} for it in its]
    usage = rec.get("usage") or {}
    cp = sum(r["control_plane_s"] for r in rows)
    # A failed episode's reason is the daemon's (the exception), not the agent's record.
    why = rec.get("stop_reason") or full.get("detail") or ""
    return {"state": full.get("state", ""), "stop_reason": why,
            "profile": (rec.get("profile") or {}).get("description", ""),
            "iterations": rows, "control_plane_s": round(cp, 2),
            "wall_s": round(float(usage.get("wall_s") or full.get("elapsed_s") or 0.0), 2),
            "llm_calls": int(usage.get("llm_calls") or 0),
            "tokens": int(usage.get("prompt_tokens") or 0)
            + int(usage.get("completion_tokens") or 0)}


def _plan_label(plan: dict[str, Any] | None) -> str:
    if not plan:
        return ""
    if plan.get("action") == "keep":
        return "keep"
    args = ", ".join(f"{k}={v}" for k, v in sorted((plan.get("params") or {}).items()))
    return f"{plan.get('action')} {plan.get('policy')}" + (f" ({args})" if args else "")


async def _wait_up(address: str, daemon: subprocess.Popen[bytes], timeout_s: float) -> None:
    from schedcpd.client import DaemonClient
    from schedcpd.errors import RequestError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"schedcpd exited ({daemon.returncode}) before it was ready")
        try:
            c = await DaemonClient.connect(address)
            try:
                await c.status()
                return
            finally:
                c.close()
        except (RequestError, OSError):
            await asyncio.sleep(0.5)
    raise TimeoutError(f"schedcpd did not come up within {timeout_s:.0f} s")


async def _optimize(address: str, workload: str, timeout_s: float,
                    say: Callable[[str], None]) -> dict[str, Any]:
    from schedcpd.client import DaemonClient

    c = await DaemonClient.connect(address)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    mine: list[str] = []

    def on_signal(name: str, p: dict[str, Any]) -> None:
        line = describe(str(p.get("step")), p) if name == "EpisodeProgress" else None
        if line is not None and mine and p.get("episode") == mine[0]:
            say(f"  {line[:240]}")
        if name == "EpisodeFinished" and mine and p.get("id") == mine[0] and not done.done():
            done.set_result(None)
    try:
        await c.on_signals(on_signal)
        t0 = time.monotonic()
        mine.append((await c.tool("optimize", target=f"benchmark: {workload}",
                                  workload=workload))["episode_id"])
        await asyncio.wait_for(done, timeout_s)
        full: dict[str, Any] = await c.tool("episode", episode_id=mine[0], record=True)
        full["elapsed_s"] = time.monotonic() - t0
        return full
    finally:
        c.close()


async def run_episode(workload: str, s: EpisodeSettings, log_dir: Path,
                      say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The episode's full record (``episode`` tool, ``record: true``), from a fresh daemon
    that is stopped afterwards (the guest's kernel back on its default scheduler)."""
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-bench-"))
    bus = daemon = None
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        bus, address = start_bus(tmp)
        cfg = tmp / "schedcpd.toml"
        cfg.write_text(lab_config(s.verifier, s.feedback_runs, s.iterations, s.backend, s.model,
                                  s.url, s.timeout_s))
        with (log_dir / f"schedcpd-{workload}.log").open("wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "schedcpd.daemon.main", "--bus", address,
                 "--state-dir", str(tmp / "state"), "--config", str(cfg), "--target", "vm"],
                stdout=log, stderr=log, env=dict(os.environ))
            await _wait_up(address, daemon, 300)
            return await _optimize(address, workload, s.timeout_s + 120, say)
    finally:
        stop_process(daemon)
        stop_process(bus)
        shutil.rmtree(tmp, ignore_errors=True)
