"""The one registry of control-plane tools: MCP, D-Bus and the agent all call these.

A tool is a name, a description, a JSON schema for its arguments, whether it changes the
system (mutating tools need a privileged caller), and an async handler. Arguments are
validated against the schema before the handler runs, so every interface gets the same
checks and the same named errors (``schedcpd.errors.RequestError``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema

from schedcpd.agent.goal import Goal, GoalError
from schedcpd.analysis.profile import GOALS, ProfileError, WorkloadProfile
from schedcpd.daemon.service import Caller, Daemon
from schedcpd.deploy.target import TargetError
from schedcpd.errors import RequestError

if TYPE_CHECKING:  # the repository pulls numpy in: only its tools pay for the import
    from schedcpd.repository import HistoryRecord, PolicyRecord, Repository, StatusChange

RepositoryOpener = Callable[[], Awaitable["Repository"]]


@dataclass
class Services:
    """What tool handlers may use; components join as they are started.

    The Policy Repository opens on the first tool that reads it, never at start-up: opening
    syncs the policy library into the store, and the daemon's start must not wait for that.
    """

    daemon: Daemon
    open_repository: RepositoryOpener | None = None
    _repo: Repository | None = field(default=None, init=False, repr=False)
    _repo_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def repository(self) -> Repository:
        async with self._repo_lock:
            if self._repo is None:
                opener = self.open_repository or default_repository_opener(self.daemon)
                self._repo = await opener()
            return self._repo


def default_repository_opener(daemon: Daemon) -> RepositoryOpener:
    """A repository on the daemon's own store (the daemon passes the one its planner and
    learner share)."""
    from schedcpd.repository import Repository

    return lambda: Repository.open(daemon.records.store)


Handler = Callable[[Services, dict[str, Any], Caller], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]
    handler: Handler
    mutating: bool = False
    action: str = ""  # the polkit action that grants a mutating tool (dbus/org.schedcp.policy)

    def check(self, args: dict[str, Any]) -> None:
        try:
            jsonschema.validate(args, self.schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
            raise RequestError("InvalidArgument", f"{self.name}: {where}: {exc.message}") \
                from None


class Registry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name} registered twice")
        if tool.mutating != bool(tool.action):
            raise ValueError(f"tool {tool.name}: a polkit action is for mutating tools only, "
                             "and every one needs one")
        jsonschema.Draft202012Validator.check_schema(tool.schema)
        self._tools[tool.name] = tool
        return tool

    def tools(self) -> list[Tool]:
        return sorted(self._tools.values(), key=lambda t: t.name)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise RequestError("NotFound", f"no tool named {name!r}") from None

    async def call(self, name: str, args: dict[str, Any], services: Services,
                   caller: Caller) -> Any:
        tool = self.get(name)
        tool.check(args)
        if tool.mutating and not await caller.may(tool.action):
            raise RequestError("PermissionDenied",
                               f"{name} changes the system: it needs root, the schedcp group "
                               "or polkit authorization")
        return await tool.handler(services, args, caller)


REGISTRY = Registry()


def tool(name: str, description: str, properties: dict[str, Any] | None = None,
         required: tuple[str, ...] = (), mutating: bool = False,
         action: str = "") -> Callable[[Handler], Handler]:
    schema = {"type": "object", "properties": properties or {},
              "required": list(required), "additionalProperties": False}

    def register(fn: Handler) -> Handler:
        REGISTRY.add(Tool(name, description, schema, fn, mutating, action))
        return fn
    return register


_STR = {"type": "string"}
# Reasons land in the audit log: long enough for a paragraph, not for a flood.
_REASON = {"type": "string", "maxLength": 4096}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}


@tool("status", "The daemon's state, mode, target, active scheduler and pending proposals.")
async def _status(s: Services, a: dict[str, Any], c: Caller) -> Any:
    return await s.daemon.status()


@tool("list_proposals", "Scheduler deployments proposed by the agent, newest first.",
      {"status": {"enum": ["pending", "approved", "rejected", "expired", "deployed", "failed"]},
       "limit": {"type": "integer", "minimum": 1, "maximum": 1000}})
async def _list_proposals(s: Services, a: dict[str, Any], c: Caller) -> Any:
    props = await s.daemon.records.proposals(a.get("status"), a.get("limit", 100))
    return [p.as_dict() for p in props]


@tool("approve", "Approve a pending proposal: the daemon deploys it with a canary.",
      {"proposal_id": _ID}, ("proposal_id",), mutating=True, action="org.schedcp.approve")
async def _approve(s: Services, a: dict[str, Any], c: Caller) -> Any:
    await s.daemon.approve(a["proposal_id"], c)
    return {"deployed": a["proposal_id"]}


@tool("reject", "Reject a pending proposal; the reason is recorded.",
      {"proposal_id": _ID, "reason": _REASON}, ("proposal_id",), mutating=True,
      action="org.schedcp.reject")
async def _reject(s: Services, a: dict[str, Any], c: Caller) -> Any:
    await s.daemon.reject(a["proposal_id"], a.get("reason", ""), c)
    return {"rejected": a["proposal_id"]}


@tool("rollback", "Detach the running scheduler and return to the last known good one "
      "(or the kernel's default).", {"reason": _REASON}, mutating=True,
      action="org.schedcp.rollback")
async def _rollback(s: Services, a: dict[str, Any], c: Caller) -> Any:
    return {"now_running": await s.daemon.rollback(a.get("reason", ""), c)}


@tool("set_mode", "auto deploys verified policies, ask waits for approval, observe only "
      "recommends.", {"mode": {"enum": ["auto", "ask", "observe"]}}, ("mode",), mutating=True,
      action="org.schedcp.set-mode")
async def _set_mode(s: Services, a: dict[str, Any], c: Caller) -> Any:
    await s.daemon.set_mode(a["mode"], c)
    return {"mode": a["mode"]}


@tool("optimize", "Start an optimization episode: sched-agent profiles the target, plans, "
      "verifies, deploys or proposes according to the mode, and, given a workload, measures "
      "it before and after each deployment and iterates: with a workload, candidates race "
      "in the lab by the goal (metric, direction 'goal', 'guards' that may not regress) "
      "within the caller's 'budget' (runs, lab_s, arms per race; the daemon's caps win), "
      "among its 'candidates' if it names them. A named policy "
      "is the first plan. Returns the episode id.",
      {"target": {"type": "string", "maxLength": 4096},
       "policy": {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"},
       "params": {"type": "object"},
       # a lab workload's name (longtail, latency, build, mixed) or a shell command, run
       # on the target: profiled, then timed before and after every deployment
       "workload": {"type": "string", "minLength": 1, "maxLength": 8192},
       "metric": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"},
       "goal": {"enum": ["lower", "higher"]},
       # METRIC:lower|higher[:MARGIN], e.g. rps:higher:0.05 (at most 5 % fewer requests/s)
       "guards": {"type": "array", "maxItems": 4, "items": {
           "type": "string",
           "pattern": "^[A-Za-z0-9_]{1,64}:(lower|higher)(:(0|0?\\.[0-9]{1,4}))?$"}},
       "budget": {"type": "object", "additionalProperties": False, "properties": {
           "runs": {"type": "integer", "minimum": 4, "maximum": 1000},
           "lab_s": {"type": "number", "minimum": 10, "maximum": 86400},
           "arms": {"type": "integer", "minimum": 1, "maximum": 64}}},
       # the policies to race, in the caller's order of preference (default: the library)
       "candidates": {"type": "array", "maxItems": 64, "uniqueItems": True,
                      "items": {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"}},
       "goals": {"type": "array", "items": {"enum": list(GOALS)}, "uniqueItems": True},
       # a WorkloadProfile as a mapping (description, characteristics, goals,
       # fingerprint); without it the daemon profiles the target
       "profile": {"type": "object"}}, ("target",), mutating=True,
      action="org.schedcp.optimize")
async def _optimize(s: Services, a: dict[str, Any], c: Caller) -> Any:
    options = {k: v for k, v in a.items() if k != "target"}
    try:
        Goal.of_request(options, str(options.get("metric") or "makespan_s"))
    except GoalError as exc:
        raise RequestError("InvalidArgument", f"goal: {exc}") from None
    if "profile" in options:
        try:
            WorkloadProfile.from_dict(options["profile"])
        except ProfileError as exc:
            raise RequestError("InvalidArgument", f"profile: {exc}") from None
    return {"episode_id": await s.daemon.optimize(a["target"], options, c)}


@tool("episode", "One optimization episode: its state and outcome, and (record=true) the "
      "agent's whole record: profile, plans, verifier findings, measured feedback, budgets.",
      {"episode_id": _ID, "record": {"type": "boolean"}}, ("episode_id",))
async def _episode(s: Services, a: dict[str, Any], c: Caller) -> Any:
    ep = s.daemon.episodes.get(a["episode_id"])
    if ep is not None:
        out = ep.as_dict()
        if a.get("record") and ep.record is not None:
            out["record"] = ep.record.as_dict()
        return out
    row = await s.daemon.records.episode(a["episode_id"])  # from before a restart
    if row is None:
        raise RequestError("NotFound", f"no episode {a['episode_id']!r}")
    return row.as_dict(with_record=bool(a.get("record")))


@tool("deployment_history", "Deployments and the audit log (who, what, why), newest first.",
      {"limit": {"type": "integer", "minimum": 1, "maximum": 1000},
       "action": _STR})
async def _history(s: Services, a: dict[str, Any], c: Caller) -> Any:
    from schedcpd.repository.history import recent_runs

    limit = a.get("limit", 50)
    r = s.daemon.records
    return {"deployments": [d.as_dict() for d in await r.deployments(None, limit)],
            "audit": [e.as_dict() for e in await r.audit_log(limit, a.get("action"))],
            "episodes": [e.as_dict() for e in await r.episodes(limit)],
            "runs": [run_entry(x) for x in await recent_runs(r.store, limit)]}


def run_entry(r: HistoryRecord) -> dict[str, Any]:
    """A measured run as History shows it: before, after, ratio and interval."""
    return {"id": r.id, "policy": r.policy, "params": dict(r.params), "metric": r.metric,
            "lower_is_better": r.lower_is_better, "baseline_value": r.baseline_value,
            "value": r.value, "ratio": r.ratio, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "samples": r.samples, "outcome": r.outcome, "reason": r.reason,
            "workload": r.profile_description, "created_at": r.created_at}


@tool("start_workload", "Start a shell command on the deployment target (in the lab guest "
      "for the vm target); returns a job id for workload_result.",
      {"command": {"type": "string", "minLength": 1, "maxLength": 8192}}, ("command",),
      mutating=True, action="org.schedcp.run-workload")
async def _start_workload(s: Services, a: dict[str, Any], c: Caller) -> Any:
    job = await s.daemon.target.spawn(a["command"])
    await s.daemon.records.audit("start_workload", str(c), job, a["command"][:200], {})
    return {"job": job}


@tool("workload_result", "A started workload's exit status and output, or done=false.",
      {"job": _ID}, ("job",))
async def _workload_result(s: Services, a: dict[str, Any], c: Caller) -> Any:
    res = await s.daemon.target.poll(a["job"])
    if res is None:
        return {"done": False}
    return {"done": True, "exit_status": res.exit_status, "stdout": res.stdout[-65536:],
            "stderr": res.stderr[-65536:], "wall_s": res.wall_s}


# --- the Policy Repository and the target's profile (reads) ---

POLICY_STATUSES = ("candidate", "verified", "promoted", "retired")
ACTIVE = ("candidate", "verified", "promoted")
MAX_QUERY = 1000  # the repository's own bound on a search query
RECENT_RUNS = 5


def policy_entry(rec: PolicyRecord) -> dict[str, Any]:
    """One line of a listing: enough to choose, not the whole record."""
    return {"name": rec.name, "status": rec.status, "provenance": rec.provenance,
            "description": " ".join(rec.description.split()), "tags": list(rec.tags),
            "parent": rec.parent, "tunables": [t.name for t in rec.tunables]}


def history_summary(runs: Sequence[HistoryRecord], slope: float | None) -> dict[str, Any]:
    """What the measured history says about a policy, newest runs first in ``runs``."""
    gains = [(r.gain, r) for r in runs if r.gain is not None]
    best = max(gains, key=lambda g: g[0], default=None)
    return {
        "runs": len(runs),
        "outcomes": dict(Counter(r.outcome for r in runs)),
        "metrics": sorted({r.metric for r in runs if r.ratio is not None}),  # measured
        "best_gain": None if best is None else round(best[0], 4),
        "best_run": None if best is None else best[1].id,
        "trend_slope": slope,
        "recent": [{"id": r.id, "at": r.created_at, "metric": r.metric, "ratio": r.ratio,
                    "ci_low": r.ci_low, "ci_high": r.ci_high, "outcome": r.outcome,
                    "params": dict(r.params), "workload": r.profile_description,
                    "reason": r.reason} for r in runs[:RECENT_RUNS]],
    }


def policy_details(rec: PolicyRecord, runs: Sequence[HistoryRecord], slope: float | None,
                   changes: Sequence[StatusChange], with_source: bool) -> dict[str, Any]:
    from schedcpd.repository.records import tunable_json

    d = {**policy_entry(rec),
         "description": rec.description.strip(), "algorithm": rec.algorithm.strip(),
         "use_when": list(rec.workloads), "avoid_when": list(rec.avoid),
         "kernel_features": list(rec.kernel_features),
         "tunables": [tunable_json(t) for t in rec.tunables],
         "source_sha256": rec.source_hash, "object_sha256": rec.object_hash,
         "created_at": rec.created_at, "updated_at": rec.updated_at,
         "history": history_summary(runs, slope),
         "status_changes": [{"from": c.from_status, "to": c.to_status, "reason": c.reason,
                             "actor": c.actor, "at": c.at} for c in changes[-RECENT_RUNS:]]}
    if with_source:
        d["source"] = rec.source
    return d


async def list_policies(repo: Repository, query: str, statuses: Sequence[str],
                        limit: int | None) -> list[dict[str, Any]]:
    """Ranked by meaning and keyword (best first) for a query, by name without one."""
    from schedcpd.repository import RepositoryError, SearchFilters

    filters = SearchFilters(statuses=frozenset(statuses))
    if not query.strip():
        # No query, no embedding: listing never loads the model.
        recs = await repo.policies(filters)
        return [policy_entry(r) for r in recs[:limit]]
    try:
        hits = await repo.search(query, filters, k=limit or 10)
    except RepositoryError as exc:
        raise RequestError("InvalidArgument", f"query: {exc}") from None
    # Only the hits' records: a repository may hold thousands of policies.
    return [{**policy_entry(await repo.get(h.name)), "score": round(h.score, 4),
             "semantic": round(h.semantic, 4), "keyword_rank": h.keyword_rank,
             "matched": h.matched} for h in hits]


async def get_policy(repo: Repository, name: str, with_source: bool = False
                     ) -> dict[str, Any]:
    from schedcpd.repository import RepositoryError

    try:
        rec = await repo.get(name)
    except RepositoryError as exc:
        raise RequestError("NotFound", str(exc)) from None
    runs = await repo.runs(name, limit=100)
    trend = await repo.history.trend(name)
    return policy_details(rec, runs, trend.slope, await repo.status_changes(name),
                          with_source)


@tool("list_policies", "Policies of the Policy Repository. With a query (what the workload "
      "needs, in words), ranked best first by meaning and keyword; without one, all of "
      "them by name. status filters (default: all but retired).",
      {"query": {"type": "string", "maxLength": MAX_QUERY},
       "status": {"type": "array", "items": {"enum": list(POLICY_STATUSES)},
                  "minItems": 1, "uniqueItems": True},
       "limit": {"type": "integer", "minimum": 1, "maximum": 1000}})
async def _list_policies(s: Services, a: dict[str, Any], c: Caller) -> Any:
    return await list_policies(await s.repository(), a.get("query", ""),
                               a.get("status", ACTIVE), a.get("limit"))


@tool("get_policy", "One policy of the repository: what it does, when to use it and when "
      "not, its tunables (type, default, range), status and measured history.",
      {"name": {"type": "string", "minLength": 1, "maxLength": 64},
       "with_source": {"type": "boolean"}}, ("name",))
async def _get_policy(s: Services, a: dict[str, Any], c: Caller) -> Any:
    return await get_policy(await s.repository(), a["name"], a.get("with_source", False))


@tool("profile", "A tier-1 profile of the deployment target (in the lab guest for the vm "
      "target) sampled over interval_s: the workload's character and characteristics, "
      "ready to pass to optimize as its profile.",
      {"interval_s": {"type": "number", "minimum": 0.1, "maximum": 10},
       "goals": {"type": "array", "items": {"enum": list(GOALS)}, "uniqueItems": True}})
async def _profile(s: Services, a: dict[str, Any], c: Caller) -> Any:
    from schedcpd.analysis.on_target import profile_target
    from schedcpd.lab.vm import LabError

    interval = float(a.get("interval_s", 1.0))
    try:
        prof = await profile_target(s.daemon.target, interval, tuple(a.get("goals", ())))
    except (ProfileError, TargetError, LabError, OSError) as exc:
        raise RequestError("Failed", str(exc)) from None
    return {"target": s.daemon.target.name, "interval_s": interval, **prof.to_dict()}


# --- the agent's working tools: deeper probes, sources to verify, the feedback channel ---

_NAME = {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"}


@tool("probe", "A deeper, bounded probe of the deployment target: runqlat (run-queue "
      "latency histogram, CO-RE BPF on the sched tracepoints) or top (a process snapshot).",
      {"kind": {"enum": ["runqlat", "top"]},
       "seconds": {"type": "number", "minimum": 0.1, "maximum": 10}}, ("kind",))
async def _probe(s: Services, a: dict[str, Any], c: Caller) -> Any:
    from schedcpd.analysis.on_target import probe_target
    from schedcpd.lab.vm import LabError

    try:
        found = await probe_target(s.daemon.target, a["kind"], float(a.get("seconds", 1.0)))
    except (ProfileError, TargetError, LabError, OSError) as exc:
        raise RequestError("Failed", str(exc)) from None
    return {"target": s.daemon.target.name, "kind": a["kind"], **found}


@tool("verify_policy", "Submit a sched_ext scheduler's BPF C source for the Execution "
      "Verifier (static checks, the kernel verifier, dynamic tests in the lab). It is kept "
      "as a candidate policy (parent: the policy it patches). Returns a submission; poll "
      "it with verification, then deploy a passed one with optimize(policy=its name).",
      {"source": {"type": "string", "minLength": 1, "maxLength": 65536},
       "parent": _NAME, "params": {"type": "object"}}, ("source",), mutating=True,
      action="org.schedcp.verify")
async def _verify_policy(s: Services, a: dict[str, Any], c: Caller) -> Any:
    sub = await s.daemon.submissions.submit(a["source"], a.get("parent"),
                                            dict(a.get("params") or {}), str(c))
    await s.daemon.records.audit("verify_policy", str(c), sub.policy, "submitted",
                                 {"submission": sub.id})
    return sub.as_dict()


@tool("verification", "A submitted source's verification: verifying, passed (its policy "
      "name can be deployed) or failed (the stage and the findings, with source lines).",
      {"submission_id": _ID}, ("submission_id",))
async def _verification(s: Services, a: dict[str, Any], c: Caller) -> Any:
    return s.daemon.submissions.get(a["submission_id"]).as_dict()


@tool("measure_workload", "Run a workload on the target under whatever scheduler runs "
      "now and return its metric per run: a lab workload's name (longtail, latency, build, "
      "mixed) or a shell command (timed, or its 'SCHEDCP_METRIC name value' lines).",
      {"workload": {"type": "string", "minLength": 1, "maxLength": 8192},
       "runs": {"type": "integer", "minimum": 1, "maximum": 20},
       "metric": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}}, ("workload",),
      mutating=True, action="org.schedcp.run-workload")
async def _measure_workload(s: Services, a: dict[str, Any], c: Caller) -> Any:
    from schedcpd.analysis.measure import MeasureError, measured, samples
    from schedcpd.lab.vm import LabError

    try:
        m = measured(a["workload"], a.get("metric", ""))
        got = await samples(s.daemon.target, m, int(a.get("runs", 3)))
    except (MeasureError, TargetError, LabError, OSError) as exc:
        raise RequestError("Failed", str(exc)) from None
    return {"metric": m.metric, "lower_is_better": m.lower_is_better, "samples": got,
            "scheduler": s.daemon.active_policy() or "default"}


@tool("compare_samples", "Compare a candidate's samples of a metric with a baseline's: "
      "ratio of medians with a 95% bootstrap confidence interval; better or worse only "
      "when the interval excludes 1.",
      {"baseline": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                    "maxItems": 1000},
       "candidate": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                     "maxItems": 1000},
       "lower_is_better": {"type": "boolean"}, "metric": {"type": "string", "maxLength": 64}},
      ("baseline", "candidate"))
async def _compare_samples(s: Services, a: dict[str, Any], c: Caller) -> Any:
    from schedcpd.analysis.stats import StatsError, compare

    try:
        return compare(a.get("metric", "metric"), a["baseline"], a["candidate"],
                       lower_is_better=a.get("lower_is_better", True)).as_dict()
    except StatsError as exc:
        raise RequestError("InvalidArgument", str(exc)) from None
