"""`schedcpctl demo` (`make demo`): one whole optimization episode, shown live.

It starts a private D-Bus daemon and `schedcpd` on it with the lab target (the sched_ext
micro-VM) in auto mode, asks it to optimize a long-tail batch workload (39 short jobs and
one long one) and prints each step as the daemon signals it: what observation found, the
plan, the verifier's verdict, the baseline, the deployment, the measured gain and what was
learned. It ends with a short report (makespan before and after, with the confidence
interval) and stops the daemon, leaving the guest's kernel on its default scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from schedcpd.cli_common import EXIT_FAILED, EXIT_OK, Subparsers
from schedcpd.config import AgentConfig

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
# A daemon that optimizes workloads in the lab guest: auto mode, host event sources off
# (the workload runs in the guest). The demo, the bench episodes and benchmarks/agent.py
# all run this one; they differ only in the agent's settings.
LAB_CONFIG = """mode = "auto"
on_stop = "default"
[canary]
window_s = 10.0
[verifier]
dynamic = "{depth}"
[agent]
backend = "{backend}"
model = "{model}"
url = "{url}"
feedback_runs = {runs}
max_iterations = {iterations}
episode_timeout_s = {timeout}
[events]
containers = false
processes = false
udev = false
drift = false
"""


def lab_config(depth: str, runs: int, iterations: int = AgentConfig.max_iterations,
               backend: str = AgentConfig.backend, model: str = "", url: str = "",
               timeout_s: float = AgentConfig.episode_timeout_s) -> str:
    """The TOML of a lab daemon (``depth``: the verifier's dynamic stage, quick or full)."""
    return LAB_CONFIG.format(depth=depth, runs=runs, iterations=iterations, backend=backend,
                             model=json.dumps(model)[1:-1], url=json.dumps(url)[1:-1],
                             timeout=timeout_s)


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


def describe(step: str, p: dict[str, Any]) -> str | None:
    """One line for an EpisodeProgress signal, in the words of the episode's roles."""
    if step == "profile":
        return f"observation: detected {p.get('description')}"
    if step == "probe":
        return f"observation: probed {p.get('kind')} ({p.get('why')})"
    if step == "goal":
        return f"observation: the workload declares its goal: {p.get('goal')}"
    if step == "race":
        if "candidates" in p:
            return (f"planning ({p.get('iteration')}): race {', '.join(p['candidates'])} "
                    f"against {p.get('baseline')} in the lab, by {p.get('goal')}")
        return f"  race round {p.get('round')}: still in it: {', '.join(p.get('alive') or [])}"
    if step == "plan":
        return f"planning ({p.get('iteration')}): {p.get('plan')}: {p.get('rationale')}"
    if step == "verify":
        if p.get("passed"):
            return f"execution: the verifier passed {p.get('policy')} (static, kernel, dynamic)"
        return (f"execution: the verifier refused {p.get('policy')} at {p.get('stage')}: "
                f"{'; '.join(p.get('findings') or [])}")
    if step == "baseline":
        return f"feedback: baseline {p.get('metric')} {p.get('samples')}"
    if step == "deploy":
        return f"execution: deployment {p.get('state')}: {p.get('detail')}"
    if step == "feedback":
        return f"feedback: {p.get('feedback')} -> {p.get('outcome')}"
    if step == "learned":
        return f"learning: {p.get('lesson')}"
    return None


def report(ep: dict[str, Any]) -> str:
    rec = ep.get("record") or {}
    lines = ["", "report", f"  episode      {ep['id']}: {ep['state']}",
             f"  stopped      {rec.get('stop_reason', '')}"]
    best = None
    for it in rec.get("iterations", []):
        fb = it.get("feedback")
        plan = it.get("plan") or {}
        lines.append(f"  iteration {it['n']}  {plan.get('action')} {plan.get('policy')} "
                     f"{plan.get('params') or ''} -> {it.get('outcome')}")
        if fb and it.get("outcome") == "improved" and (best is None or fb["ratio"] <
                                                        best["ratio"]):
            best = fb
    if best is not None:
        lines += [f"  makespan     before {best['baseline']:.2f} s (median of "
                  f"{best['n_baseline']}), after {best['candidate']:.2f} s (median of "
                  f"{best['n_candidate']})",
                  f"  gain         {1 - best['ratio']:.1%} (ratio {best['ratio']:.3f}, 95% CI "
                  f"{best['ci_low']:.3f}..{best['ci_high']:.3f})"]
    for n, race in enumerate(rec.get("races") or [], 1):
        lines.append(f"  race {n}       against {race.get('baseline')}, {race.get('runs')} runs: "
                     f"{race.get('verdict', '')}")
    usage = rec.get("usage", {})
    lines.append(f"  spent        {usage.get('wall_s', 0):.0f} s, {usage.get('llm_calls', 0)} "
                 f"LLM calls, {usage.get('tokens', 0)} tokens, {rec.get('lab_runs', 0)} lab "
                 f"runs in {rec.get('lab_s', 0):.0f} s")
    return "\n".join(lines)


async def follow(bus: str, workload: str, timeout_s: float) -> dict[str, Any]:
    from schedcpd.client import DaemonClient

    c = await DaemonClient.connect(bus)
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    mine: list[str] = []

    def on_signal(name: str, p: dict[str, Any]) -> None:
        if name == "EpisodeProgress" and (not mine or p.get("episode") == mine[0]):
            if (line := describe(str(p.get("step")), p)) is not None:
                say(line)
        elif name == "PolicyDeployed":
            say(f"daemon: {p.get('policy')} attached in the guest, the canary watches it")
        elif name == "RolledBack":
            say(f"daemon: rolled back ({p.get('cause')}): {p.get('reason')}")
        elif name == "EpisodeFinished" and mine and p.get("id") == mine[0] and not done.done():
            done.set_result(p)
    try:
        await c.on_signals(on_signal)
        st = await c.status()
        say(f"schedcpd: {st['mode']} mode, target {st['target']} (kernel {st['kernel']}), "
            f"sched_ext {st['sched_ext_state']}")
        say(f"request: optimize the '{workload}' workload (39 short jobs, one long one)")
        mine.append((await c.tool("optimize", target="long-tail batch",
                                  workload=workload))["episode_id"])
        await asyncio.wait_for(done, timeout_s)
        full: dict[str, Any] = await c.tool("episode", episode_id=mine[0], record=True)
        return full
    finally:
        c.close()


def start_bus(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = tmp / "bus.sock"
    conf = tmp / "bus.conf"
    conf.write_text(BUS_CONF.format(socket=sock))
    # Its warnings (an fd limit it may not raise) go to a log, not between the steps.
    with (tmp / "bus.log").open("wb") as log:
        proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                 "--nopidfile"], stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(500):
        if _accepts(sock):  # the file appears at bind(), before listen()
            return proc, f"unix:path={sock}"
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("dbus-daemon did not start")


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the daemon and the bus are stopped


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="schedcp-demo-"))
    bus = daemon = None
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        bus, address = start_bus(tmp)
        cfg = tmp / "schedcpd.toml"
        cfg.write_text(lab_config(args.verifier, args.runs))
        log = (tmp / "schedcpd.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "schedcpd.daemon.main", "--bus", address,
             "--state-dir", str(args.state_dir or tmp / "state"), "--config", str(cfg),
             "--target", "vm"], stdout=log, stderr=log, env=dict(os.environ))
        say(f"started schedcpd (log {tmp / 'schedcpd.log'}); booting the lab guest")
        ep = asyncio.run(_when_up(address, daemon, args))
        print(report(ep), flush=True)
        if args.json:
            print(json.dumps(ep, default=str))
        return EXIT_OK if ep["state"] == "deployed" else EXIT_FAILED
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("demo: interrupted; stopping schedcpd", file=sys.stderr)
        return EXIT_FAILED
    finally:
        stop_process(daemon)
        stop_process(bus)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


async def _when_up(address: str, daemon: subprocess.Popen[bytes],
                   args: argparse.Namespace) -> dict[str, Any]:
    from schedcpd.client import DaemonClient
    from schedcpd.errors import RequestError

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"schedcpd exited ({daemon.returncode}) before it was ready")
        try:
            # A bus that swallows replies must not hang the demo: each try is bounded.
            async with asyncio.timeout(15):
                c = await DaemonClient.connect(address)
                try:
                    await c.status()
                    break
                finally:
                    c.close()
        except (RequestError, OSError, TimeoutError):
            await asyncio.sleep(0.5)
    else:
        raise TimeoutError("schedcpd did not come up within 300 s")
    return await follow(address, args.workload, args.timeout)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="one whole optimization episode in the lab, shown live")
    p.add_argument("--workload", default="longtail", help="a lab workload (default longtail)")
    p.add_argument("--verifier", choices=["quick", "full"], default="quick",
                   help="dynamic verification depth (default quick: a shorter mixed run)")
    p.add_argument("--runs", type=int, default=5, help="workload runs before and after")
    p.add_argument("--timeout", type=float, default=2400.0,
                   help="seconds to follow the episode (a race of the whole library on the "
                        "longtail workload takes 10-15 min under TCG)")
    p.add_argument("--state-dir", type=Path, help="keep the daemon's state here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", action="store_true", help="print the episode as JSON last")
    p.set_defaults(func=run)
