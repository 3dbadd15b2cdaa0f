"""The daemon-facing `schedcpctl` commands: status, proposals, approve, reject, rollback,
history, mode, optimize, watch, and mcp (the MCP server, in schedcpd.mcp_server).

Each talks to `schedcpd` over D-Bus as the calling user. Exit codes scripts can rely on:
0 done, 1 the daemon refused or the work failed (the error kind and message are printed),
2 bad usage, 3 no daemon answers on that bus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from schedcpd.cli_common import Subparsers
from schedcpd.client import DaemonClient, DaemonUnavailable
from schedcpd.config import MODES
from schedcpd.errors import RequestError

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
# Episode states that end an episode well; anything else but "running" is a failure.
GOOD_ENDS = ("deployed", "proposed", "no_change")

Command = Callable[[DaemonClient, argparse.Namespace], Awaitable[Any]]


def run_command(args: argparse.Namespace, command: Command) -> int:
    """Connect, run, print the result (JSON as the last line with --json)."""
    try:
        result = asyncio.run(_with_client(args.bus, command, args))
    except DaemonUnavailable as exc:
        print(f"schedcpctl: no schedcpd answers on the {args.bus} bus ({exc.message}); "
              "is schedcpd running? (--bus selects the bus)", file=sys.stderr)
        return UNREACHABLE
    except RequestError as exc:
        print(f"schedcpctl: {exc.kind}: {exc.message}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": exc.kind, "message": exc.message}))
        return REFUSED
    code, value, text = result
    if args.json and value is not None:
        print(json.dumps(value, sort_keys=True, default=str))
    elif text:
        print(text)
    return int(code)


async def _with_client(bus: str, command: Command, args: argparse.Namespace) -> Any:
    client = await DaemonClient.connect(bus)
    try:
        return await command(client, args)
    finally:
        client.close()


# --- rendering (pure) ---

def _when(t: Any) -> str:
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))


def render_status(st: dict[str, Any]) -> str:
    active = st.get("active_policy") or "(kernel default)"
    lines = [f"state:       {st.get('state')}", f"mode:        {st.get('mode')}",
             f"target:      {st.get('target')} (kernel {st.get('kernel')})",
             f"sched_ext:   {st.get('sched_ext_state')} {st.get('sched_ext_ops') or ''}".rstrip(),
             f"active:      {active} since {_when(st.get('active_since'))}",
             f"pending:     {st.get('pending_proposals')} proposal(s)"]
    if st.get("last_error"):
        lines.append(f"last error:  {st['last_error']}")
    return "\n".join(lines)


def render_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in out)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that reads as JSON (numbers, true, lists) is taken as such."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


# --- commands ---

async def _status(c: DaemonClient, a: argparse.Namespace) -> Any:
    st = await c.tool("status")
    return OK, st, render_status(st)


async def _proposals(c: DaemonClient, a: argparse.Namespace) -> Any:
    args = {"status": a.status} if a.status else {}
    props = await c.tool("list_proposals", **args)
    rows = [{**p, "created": _when(p.get("created_at"))} for p in props]
    return OK, props, render_table(rows, ["id", "status", "policy", "created", "rationale"])


async def _approve(c: DaemonClient, a: argparse.Namespace) -> Any:
    res = await c.tool("approve", proposal_id=a.id)
    return OK, res, f"approved and deployed {a.id}"


async def _reject(c: DaemonClient, a: argparse.Namespace) -> Any:
    res = await c.tool("reject", proposal_id=a.id, reason=a.reason)
    return OK, res, f"rejected {a.id}"


async def _rollback(c: DaemonClient, a: argparse.Namespace) -> Any:
    res = await c.tool("rollback", reason=a.reason)
    return OK, res, f"rolled back; now running {res['now_running']}"


async def _history(c: DaemonClient, a: argparse.Namespace) -> Any:
    res = await c.tool("deployment_history", limit=a.limit)
    deps = [{**d, "started": _when(d.get("started_at"))} for d in res["deployments"]]
    audit = [{**e, "at": _when(e.get("at"))} for e in res["audit"]]
    text = ("deployments:\n" + render_table(deps, ["id", "policy", "state", "started",
                                                    "cause"])
            + "\n\nepisodes (what each spent):\n"
            + render_table([episode_row(e) for e in res.get("episodes", [])],
                           ["id", "started", "backend", "state", "iterations", "wall_s",
                            "llm_calls", "tokens", "cost", "stop_reason"])
            + "\n\nmeasured runs:\n"
            + render_table([run_row(r) for r in res.get("runs", [])],
                           ["policy", "metric", "before", "after", "ratio", "outcome"])
            + "\n\naudit log:\n" + render_table(audit, ["at", "action", "actor", "subject",
                                                         "reason"]))
    return OK, res, text


def episode_row(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "started": _when(e.get("started_at")), "wall_s": f"{e.get('wall_s', 0):.1f}",
            "cost": f"{e.get('cost', 0):.4f}", "stop_reason": str(e.get("stop_reason"))[:60]}


def run_row(r: dict[str, Any]) -> dict[str, Any]:
    def num(x: Any) -> str:
        return "-" if x is None else f"{float(x):.4g}"
    ci = (f" [{num(r.get('ci_low'))}, {num(r.get('ci_high'))}]"
          if r.get("ci_low") is not None else "")
    return {**r, "before": num(r.get("baseline_value")), "after": num(r.get("value")),
            "ratio": num(r.get("ratio")) + ci}


async def _mode(c: DaemonClient, a: argparse.Namespace) -> Any:
    res = await c.tool("set_mode", mode=a.mode)
    return OK, res, f"mode {a.mode}"


async def _optimize(c: DaemonClient, a: argparse.Namespace) -> Any:
    opts: dict[str, Any] = {"target": a.target}
    if a.policy:
        opts["policy"] = a.policy
    if a.params:
        opts["params"] = a.params
    if a.workload:
        opts["workload"] = a.workload
    if a.metric:
        opts["metric"] = a.metric
    if a.goal:
        opts["goal"] = a.goal
    if a.guard:
        opts["guards"] = list(a.guard)
    if a.candidates:
        opts["candidates"] = [c.strip() for c in a.candidates.split(",") if c.strip()]
    budget = {k: v for k, v in (("runs", a.budget_runs), ("lab_s", a.budget_lab_s),
                                ("arms", a.budget_arms)) if v}
    if budget:
        opts["budget"] = budget
    ep_id = (await c.tool("optimize", **opts))["episode_id"]
    if not a.wait:
        return OK, {"episode_id": ep_id}, f"episode {ep_id} started"
    ep = await _follow(c, ep_id, a.timeout)
    code = OK if ep["state"] in GOOD_ENDS else REFUSED
    return code, ep, f"episode {ep_id}: {ep['state']} {ep.get('detail') or ''}".rstrip()


async def _follow(c: DaemonClient, ep_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll the episode until it ends, showing progress on stderr."""
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    while True:
        ep: dict[str, Any] = await c.tool("episode", episode_id=ep_id)
        if ep["state"] != "running":
            print(file=sys.stderr)
            return ep
        if time.monotonic() > deadline:
            print(file=sys.stderr)
            raise RequestError("Failed", f"episode {ep_id} still running after "
                                         f"{timeout_s:.0f} s (it goes on in the daemon)")
        print(f"\repisode {ep_id}: running {time.monotonic() - started:4.0f} s",
              end="", file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)


async def _watch(c: DaemonClient, a: argparse.Namespace) -> Any:
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    await c.on_signals(lambda name, payload: queue.put_nowait((name, payload)))
    print("watching schedcpd signals (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    while a.count is None or seen < a.count:
        name, payload = await queue.get()
        seen += 1
        if a.json:
            print(json.dumps({"signal": name, "payload": payload, "at": time.time()},
                             sort_keys=True, default=str), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')} {name} "
                  f"{json.dumps(payload, sort_keys=True, default=str)}", flush=True)
    return OK, None, ""


# --- wiring ---

def _handler(command: Command) -> Callable[[argparse.Namespace], int]:
    return lambda args: run_command(args, command)


def _optimize_handler(args: argparse.Namespace) -> int:
    try:
        args.params = parse_params(args.param)
    except ValueError as exc:
        print(f"schedcpctl optimize: {exc}", file=sys.stderr)
        return USAGE
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if cmd and args.workload:
        print("schedcpctl optimize: give --workload or -- CMD, not both", file=sys.stderr)
        return USAGE
    if cmd:
        args.workload = shlex.join(cmd)
    return run_command(args, _optimize)


def _mcp(args: argparse.Namespace) -> int:
    # The MCP SDK takes most of a second to import: only this command pays for it.
    from schedcpd import mcp_server

    return mcp_server.run(args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bus", default="system",
                   help="system, session or a D-Bus address (default system)")
    p.add_argument("--json", action="store_true", help="print JSON as the last line")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("status", help="the daemon's state, mode and active scheduler")
    _common(p)
    p.set_defaults(func=_handler(_status))

    p = sub.add_parser("proposals", help="proposed deployments, newest first")
    p.add_argument("--status", choices=["pending", "approved", "rejected", "expired",
                                        "deployed", "failed"])
    _common(p)
    p.set_defaults(func=_handler(_proposals))

    p = sub.add_parser("approve", help="approve a pending proposal (it is deployed)")
    p.add_argument("id")
    _common(p)
    p.set_defaults(func=_handler(_approve))

    p = sub.add_parser("reject", help="reject a pending proposal")
    p.add_argument("id")
    p.add_argument("--reason", default="")
    _common(p)
    p.set_defaults(func=_handler(_reject))

    p = sub.add_parser("rollback", help="detach the running scheduler, back to the last good")
    p.add_argument("--reason", default="")
    _common(p)
    p.set_defaults(func=_handler(_rollback))

    p = sub.add_parser("history", help="deployments and the audit log")
    p.add_argument("--limit", type=int, default=20)
    _common(p)
    p.set_defaults(func=_handler(_history))

    p = sub.add_parser("mode", help="auto, ask or observe")
    p.add_argument("mode", choices=MODES)
    _common(p)
    p.set_defaults(func=_handler(_mode))

    p = sub.add_parser("optimize", help="start an optimization episode for a workload")
    p.add_argument("target", help="what to optimize for (a workload description)")
    p.add_argument("--policy", help="deploy this policy instead of letting the agent plan")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="policy parameter (repeatable)")
    p.add_argument("--workload", help="a lab workload (longtail, latency, build, mixed, "
                                       "lt-*, g-*) to run on the target: profiled, raced in "
                                       "the lab, measured before and after each deployment")
    p.add_argument("--metric", help="with -- CMD: the SCHEDCP_METRIC it prints (default: "
                                     "what its SCHEDCP_GOAL line declares, else its wall "
                                     "time, makespan_s)")
    p.add_argument("--goal", choices=("lower", "higher"),
                   help="the metric's direction (default: declared by the workload, else "
                        "inferred from its name)")
    p.add_argument("--guard", action="append", default=[], metavar="METRIC:DIR[:MARGIN]",
                   help="a metric that may not regress by more than MARGIN (a fraction, "
                        "default 0.05), e.g. rps:higher:0.05 (repeatable)")
    p.add_argument("--budget-runs", type=int, help="workload runs the lab search may spend "
                                                   "(the daemon's cap wins)")
    p.add_argument("--budget-lab-s", type=float, help="lab seconds the search may spend")
    p.add_argument("--budget-arms", type=int, help="new candidates per race at most")
    p.add_argument("--candidates", metavar="P1,P2",
                   help="race only these policies, in this order of preference")
    p.add_argument("--wait", action="store_true", help="follow the episode to its end")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="with --wait: give up following after this many seconds")
    _common(p)
    # `-- CMD` (the workload, a command run on the target) is split off by schedcpctl's
    # main before parsing: a positional after TARGET would swallow the options.
    p.set_defaults(func=_optimize_handler, cmd=[])

    p = sub.add_parser("watch", help="print the daemon's signals as they come")
    p.add_argument("--count", type=int, help="stop after this many signals")
    _common(p)
    p.set_defaults(func=_handler(_watch))

    p = sub.add_parser("mcp", help="serve the SchedCP tools over MCP (stdio by default)")
    p.add_argument("--bus", default="system",
                   help="system, session or a D-Bus address (default system)")
    p.add_argument("--http", action="store_true",
                   help="serve streamable HTTP on 127.0.0.1 instead of stdio")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    p.set_defaults(func=_mcp)
