"""Tier 1 on the deployment target: the machine the scheduler will run on.

For the `vm` target that is the lab guest, whose /proc the host cannot read: the summary
is taken there by the guest's own bare python3 (tier1 is standard library only) on this
package, which the guest sees through its read-only view of the host's root.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any, Protocol

from schedcpd import paths
from schedcpd.analysis.measure import fresh_dir
from schedcpd.analysis.profile import ProfileError, WorkloadProfile, from_run, from_tier1
from schedcpd.analysis.run_profile import LEAD_S, START_MARK
from schedcpd.lab.job import guest_path
from schedcpd.lab.result import CommandResult
from schedcpd.lab.session import GuestRebooted

log = logging.getLogger("schedcpd.analysis")
PYTHON = "/usr/bin/python3"


class Runner(Protocol):
    name: str

    async def run(self, command: str, timeout_s: float = 60.0) -> CommandResult: ...


async def _run(target: Runner, command_text: str, timeout_s: float) -> CommandResult:
    """Observing changes nothing on the target, so a run lost to a lab fault (the guest's
    kernel panicked and it was booted again) is run once more on the fresh guest."""
    try:
        return await target.run(command_text, timeout_s=timeout_s)
    except GuestRebooted as exc:
        log.warning("observing: %s; running it once more", exc)
        return await target.run(command_text, timeout_s=timeout_s)


def command(target_name: str, interval_s: float) -> str:
    return _module(target_name, "schedcpd.analysis.tier1", f"--interval {interval_s:g}")


async def profile_target(target: Runner, interval_s: float = 1.0,
                         goals: tuple[str, ...] = ()) -> WorkloadProfile:
    """The tier-1 profile of everything running on ``target``, over ``interval_s``."""
    # Python's start-up under TCG takes seconds: the limit covers it, not the interval.
    r = await _run(target, command(target.name, interval_s), interval_s + 60)
    lines = r.stdout.strip().splitlines()
    if r.exit_status != 0 or not lines:
        raise ProfileError(f"tier 1 on the {target.name} target failed "
                           f"(exit {r.exit_status}): {r.stderr.strip()[-500:]}")
    try:
        return from_tier1(json.loads(lines[-1]), goals)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"tier 1 on the {target.name} target: unreadable summary: {exc}") \
            from exc


def _python(target_name: str) -> str:
    root = guest_path(paths.REPO_ROOT) if target_name == "vm" else str(paths.REPO_ROOT)
    return f"PYTHONPATH={shlex.quote(root)} {PYTHON}"


def _module(target_name: str, module: str, args: str) -> str:
    return f"{_python(target_name)} -m {module} {args}"


def _last_json(r: CommandResult, what: str, target_name: str) -> dict[str, Any]:
    lines = r.stdout.strip().splitlines()
    if r.exit_status != 0 or not lines:
        raise ProfileError(f"{what} on the {target_name} target failed (exit "
                           f"{r.exit_status}): {r.stderr.strip()[-500:]}")
    try:
        out = json.loads(lines[-1])
    except ValueError as exc:
        raise ProfileError(f"{what} on the {target_name} target: unreadable output: {exc}") \
            from exc
    if not isinstance(out, dict):
        raise ProfileError(f"{what} on the {target_name} target: not a JSON object")
    return out


async def profile_run(target: Runner, command_text: str, interval_s: float,
                      goals: tuple[str, ...], timeout_s: float,
                      after_mark: bool = False) -> WorkloadProfile:
    """Run ``command_text`` on ``target`` and profile it while it runs (tier 1 and the
    accounting of every process it ran); ProfileError if it failed. ``after_mark``: tier 1
    reads it from its START_MARK line on (a workload with a set-up of its own)."""
    mark = " --after-mark" if after_mark else ""
    r = await _run(target, _module(target.name, "schedcpd.analysis.run_profile",
                                   f"--interval {interval_s:g}{mark} -- sh -c "
                                   f"{shlex.quote(command_text)}"),
                   timeout_s + interval_s + 60)
    out = _last_json(r, "profiling the workload", target.name)
    if out.get("exit") != 0:
        raise ProfileError(f"the workload failed while it was profiled (exit {out.get('exit')})")
    try:
        return from_run(out, goals)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"profiling the workload: unreadable summary: {exc}") from exc


def beside(workload: str, probe: str, lead_s: float = LEAD_S, after_mark: bool = False) -> str:
    """``probe`` while ``workload`` runs (in a directory of its own): the workload in the
    background, the probe after ``lead_s`` (when tier 1's read of it begins too; with
    ``after_mark``, counted from the workload's START_MARK line, or its end), then the
    workload waited for, so that nothing it started outlives the probe. The probe's output
    and exit status are the command's."""
    run = f"sh -c {shlex.quote(fresh_dir(workload))} 2>/dev/null </dev/null"
    if after_mark:
        start = (f"M=$(mktemp); {run} >\"$M\" & W=$!; "
                 f"until grep -q '^{START_MARK}' \"$M\" || ! kill -0 $W 2>/dev/null; "
                 f"do sleep 0.1; done; rm -f \"$M\"")
    else:
        start = f"{run} >/dev/null & W=$!"
    return f"{start}; sleep {lead_s:g}; {probe}; rc=$?; wait $W; exit $rc"


def _probe_command(target_name: str, kind: str, seconds: float) -> str:
    from schedcpd.analysis.tier2.build import reader_binary, runqlat_object

    if kind == "runqlat":
        def where(p: Path) -> str:
            return guest_path(p) if target_name == "vm" else str(p)
        return f"{where(reader_binary())} {where(runqlat_object())} {seconds:g}"
    if kind == "top":
        code = ("import json; from schedcpd.analysis.tier2.top import _snapshot; "
                f"print(json.dumps(_snapshot({seconds:g}, 10)))")
        return f"{_python(target_name)} -c {shlex.quote(code)}"
    raise ProfileError(f"unknown probe {kind!r} (known: runqlat, top)")


def _headline(kind: str, out: dict[str, Any]) -> dict[str, Any]:
    """The probe's headline numbers, flat, for the profile."""
    if kind == "runqlat":
        from schedcpd.analysis.tier2.runqlat import summarize

        s = summarize(out)
        return {"runq_samples": s["samples"], "runq_p50_us": s["p50_us"] or 0.0,
                "runq_p99_us": s["p99_us"] or 0.0,
                "runq_top_wait_comm": s["comms"][0]["comm"] if s["comms"] else ""}
    procs = out.get("processes") or []
    return {"top_nprocs": int(out.get("nprocs", 0)), "top_runnable": int(
                out.get("runnable", 0)), "top_busy": sum(
                1 for p in procs if float(p.get("cpu", 0)) >= 0.05)}


async def probe_target(target: Runner, kind: str, seconds: float = 1.0,
                       during: str | None = None, during_timeout_s: float = 0.0,
                       after_mark: bool = False) -> dict[str, Any]:
    """A tier-2 probe on ``target``: ``runqlat`` (run-queue latency, CO-RE probe on the
    sched tracepoints) or ``top``. With ``during``, taken while that workload runs (an
    episode's workload has ended by the time its profile is read, and a probe of the idle
    target would say nothing waits); ``during_timeout_s`` is the workload's own limit,
    ``after_mark`` as for ``beside``."""
    text, timeout_s = _probe_command(target.name, kind, seconds), seconds + 60
    what = "the run-queue probe" if kind == "runqlat" else "the top snapshot"
    if during is not None:
        text = beside(during, text, after_mark=after_mark)
        timeout_s += LEAD_S + during_timeout_s
        what += " beside the workload"
    return _headline(kind, _last_json(await _run(target, text, timeout_s), what, target.name))
