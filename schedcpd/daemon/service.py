"""The daemon's core: mode, proposals, episodes, deployments; no I/O of its own.

Adapters (D-Bus, MCP, CLI) and the tool registry call these methods; the daemon calls
the planner, the verifier and the deployer, and reports changes through ``listeners``
(the D-Bus adapter turns them into signals and PropertiesChanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from schedcpd.agent.backend import Backend
from schedcpd.agent.record import EpisodeRecord, PlanChoice
from schedcpd.config import MODES, DaemonConfig
from schedcpd.daemon.learning import Learner
from schedcpd.daemon.records import DaemonRecords, EpisodeRow, Proposal
from schedcpd.daemon.submissions import Submissions
from schedcpd.daemon.watching import start_sources
from schedcpd.deploy.deployer import Deployer, DeployError, DeployRequest
from schedcpd.deploy.target import Target
from schedcpd.errors import RequestError
from schedcpd.events.episodes import EpisodeEvent
from schedcpd.lab.result import SchedState
from schedcpd.lab.vm import LAB_ATTEMPTS, LabError
from schedcpd.repository.lazy import LazyRepository

log = logging.getLogger("schedcpd.daemon")

IDLE, OPTIMIZING, PROPOSAL, DEPLOYED, ROLLED_BACK, ERROR = (
    "idle", "optimizing", "proposal_waiting", "deployed", "rolled_back", "error")

Listener = Callable[[str, dict[str, Any]], None]


DaemonError = RequestError


@dataclass(frozen=True)
class Caller:
    """Who asked: for the audit log and for privilege checks in the adapters."""

    uid: int | None
    sender: str = ""
    privileged: bool = False
    # The adapter's way to ask for one action when the caller is not privileged (D-Bus:
    # polkit); None where there is no one to ask.
    authorize: Callable[[str], Awaitable[bool]] | None = field(
        default=None, compare=False, repr=False)

    async def may(self, action: str) -> bool:
        if self.privileged:
            return True
        return self.authorize is not None and await self.authorize(action)

    def __str__(self) -> str:
        who = "daemon" if self.uid is None else f"uid {self.uid}"
        return f"{who} ({self.sender})" if self.sender else who


DAEMON = Caller(None, "", True)
EVENTS = Caller(None, "event sources", True)


@dataclass(frozen=True)
class Verified:
    """A scheduler the verifier passed: the object, its hash and the signed token."""

    object_path: Path
    object_sha256: str
    token: str
    summary: dict[str, Any]
    ops_name: str = ""  # what the kernel reports running ("" for schedcp_<policy>)


@dataclass(frozen=True)
class Checked:
    """The verifier's answer: the signed object on a pass; on a refusal, where and why."""

    verified: Verified | None
    stage: str  # the stage that refused it, "" on a pass
    findings: tuple[str, ...]
    seconds: float
    verdict: dict[str, Any]  # the verdict's JSON form (stages, findings, details)


class Verifier(Protocol):
    async def check(self, policy: str, params: dict[str, Any],
                    source: Path | None = None) -> Checked: ...


@dataclass
class Episode:
    id: str
    target: str
    options: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    state: str = "running"  # running | proposed | deployed | no_change | failed | cancelled
    detail: str = ""
    proposal_id: str | None = None
    profile: str = ""  # what observation saw, in words
    record: EpisodeRecord | None = None  # the agent's shared record, once it runs

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "state": self.state,
                "detail": self.detail, "proposal_id": self.proposal_id,
                "started_at": self.started_at, "profile": self.profile,
                **({"agent": self.record.summary()} if self.record else {})}

    def row(self) -> EpisodeRow:
        r = self.record
        u = r.usage if r else None
        return EpisodeRow(self.id, self.target, r.backend if r else "", self.state,
                          self.detail, r.stop_reason if r else "", self.started_at,
                          None if self.state in ("running", "proposed") else time.time(),
                          len(r.iterations) if r else 0, u.wall_s if u else 0.0,
                          u.llm_calls if u else 0, u.tokens if u else 0, u.cost if u else 0.0,
                          r.as_dict() if r else {})


STATE_MAX_AGE_S = 1.0


class Daemon:
    def __init__(self, cfg: DaemonConfig, records: DaemonRecords, target: Target,
                 deployer: Deployer, verifier: Verifier, repository: LazyRepository,
                 backend: Backend | None = None, learner: Learner | None = None,
                 race_verifier: Verifier | None = None) -> None:
        from schedcpd.agent.builtin import BuiltinBackend

        self.cfg = cfg
        self.learner = learner
        self.records = records
        self.target = target
        self.deployer = deployer
        self.verifier = verifier
        # Candidates racing in the lab are verified at quick depth; the winner at the
        # daemon's own depth before it is deployed.
        self.race_verifier = race_verifier or verifier
        self.repository = repository
        # The LLM backends need the tool registry, which needs this daemon: the process
        # that starts the daemon sets them (schedcpd.daemon.main).
        self.backend: Backend = backend or BuiltinBackend(repository)
        self.submissions = Submissions(repository, verifier, cfg.state_dir)
        self._decisions: dict[str, asyncio.Future[str]] = {}
        # Proposals of episodes that judge them by their workload's own measured metric:
        # their canary watches for ejection only (see DeployRequest.judge_metric).
        self.measured_proposals: set[str] = set()
        self.mode = cfg.mode
        self.state = IDLE
        self.last_error = ""
        self.active_since = 0.0
        self.listeners: list[Listener] = []
        self.episodes: dict[str, Episode] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._state_lock = asyncio.Lock()
        self._state_snapshot: tuple[float, SchedState] | None = None
        deployer.emit = self._on_deployer_event

    # --- notifications ---
    def emit(self, name: str, payload: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(name, payload)

    def _set(self, *, state: str | None = None, error: str | None = None) -> None:
        changed: dict[str, Any] = {}
        if state is not None and state != self.state:
            self.state = changed["State"] = state
        if error is not None and error != self.last_error:
            self.last_error = changed["LastError"] = error
        if changed:
            self.emit("PropertiesChanged", changed)

    def _on_deployer_event(self, name: str, payload: dict[str, Any]) -> None:
        self._state_snapshot = None
        if name == "PolicyDeployed":
            self.active_since = time.time()
            self._set(state=DEPLOYED)
            self.emit("PropertiesChanged", {"ActivePolicy": payload["policy"],
                                            "ActiveSince": self.active_since})
        elif name == "RolledBack":
            self.active_since = time.time() if payload["to"] != "default" else 0.0
            self._set(state=ROLLED_BACK)
            self.emit("PropertiesChanged", {"ActivePolicy": self.active_policy(),
                                            "ActiveSince": self.active_since})
            if self.learner is not None and payload.get("deployment"):
                self._spawn(self._learn(payload))
        self.emit(name, payload)

    async def _learn(self, rolled_back: dict[str, Any]) -> None:
        """Learning: the history remembers a scheduler its canary threw out."""
        assert self.learner is not None
        dep = await self.records.deployment(int(rolled_back["deployment"]))
        if dep is None:
            return
        prop = await self.records.proposal(dep.proposal_id) if dep.proposal_id else None
        ep = next((e for e in self.episodes.values()
                   if dep.proposal_id and e.proposal_id == dep.proposal_id), None)
        profile = ep.options.get("profile") if ep else None
        if await self.learner.rolled_back(dep.policy, dep.params, profile,
                                          prop.rationale if prop else "",
                                          str(rolled_back["cause"]), str(rolled_back["reason"])):
            await self.records.audit("learned", "daemon", str(dep.id),
                                     f"{dep.policy} recorded as failed: {rolled_back['cause']}")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- life cycle ---
    async def start(self) -> None:
        saved = await self.records.setting("mode")
        if saved in MODES:
            self.mode = saved
        await self.target.start()
        await self._reconcile_through_lab_faults()
        self._spawn(self._expire_proposals())
        start_sources(self.cfg.events, self._on_workload, self._spawn)

    def _on_workload(self, ev: EpisodeEvent) -> None:
        """A workload started (a container, a process tree, a drift, a power change). On
        the local target it starts an episode for it; on the vm target host events do not
        describe the guest's workload, so they are only reported."""
        e = ev.episode
        self.emit("WorkloadDetected", {"kind": e.kind, "name": e.name, "key": e.key,
                                       "cgroup": e.cgroup, "started_at": e.started_at})
        if self.target.name == "local" and not any(
                x.state == "running" for x in self.episodes.values()):
            self._spawn(self.optimize(f"{e.kind}: {e.name}", {}, EVENTS))

    async def _reconcile_through_lab_faults(self) -> None:
        """A lab guest that panics under TCG while the daemon reconciles has been booted
        again by the vm target: reconcile once more against the fresh guest (reconciling
        twice changes nothing the first pass did), rather than fail the start."""
        for attempt in range(1, LAB_ATTEMPTS + 1):
            try:
                await self.reconcile()
                return
            except LabError as exc:
                if attempt == LAB_ATTEMPTS:
                    raise
                log.warning("a lab fault while reconciling (attempt %d); again: %s",
                            attempt, exc)

    async def reconcile(self) -> list[str]:
        """Make the records agree with what the kernel runs now; what was corrected."""
        notes: list[str] = []
        st = await self.target.sched_state()
        for d in await self.records.deployments(("attaching", "canary", "good")):
            # A fresh daemon holds no loader: whatever the records say, nothing of ours runs.
            await self.records.set_deployment(
                d.id, state="interrupted", audit_action="reconcile", actor="daemon",
                cause=f"daemon restarted; kernel sched_ext state {st.state!r}")
            notes.append(f"deployment {d.id} ({d.policy}) was {d.state}: now interrupted")
        for p in await self.records.proposals("approved"):
            await self.records.decide(p.id, status="failed", actor="daemon",
                                      note="daemon restarted before the deployment finished",
                                      expect=("approved",))
            notes.append(f"proposal {p.id} was approved but not deployed: now failed")
        lg = await self.records.last_good()
        if lg is not None and self.mode != "observe" and self.cfg.on_stop == "last_good":
            with contextlib.suppress(DeployError):
                restored = await self.deployer.restore_last_good(exclude=None)
                if restored is not None:
                    notes.append(f"restored the last known good {restored.policy}")
                    self.active_since = time.time()
                    self.state = DEPLOYED
        if n := await self.records.end_running_episodes("the daemon restarted"):
            notes.append(f"{n} episode(s) that were running ended")
        if notes:
            await self.records.audit("reconcile", "daemon", "start", "; ".join(notes), {})
        if await self.records.proposals("pending"):
            self.state = PROPOSAL if self.state == IDLE else self.state
        return notes

    async def stop(self) -> None:
        await self.submissions.stop()
        with contextlib.suppress(Exception):
            await self.backend.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.deployer.stop(self.cfg.on_stop)
        await self.target.close()

    # --- queries ---
    def active_policy(self) -> str:
        act = self.deployer.active
        return act.request.policy if act else ""

    async def sched_state(self) -> SchedState:
        """The target's sched_ext state, at most ``STATE_MAX_AGE_S`` old: asking the guest
        costs tens of milliseconds, and Status is polled by every client. Deployments and
        rollbacks drop the snapshot, so what they changed shows at once."""
        async with self._state_lock:
            cached = self._state_snapshot
            if cached is not None and time.monotonic() - cached[0] < STATE_MAX_AGE_S:
                return cached[1]
            try:
                st = await self.target.sched_state()
            except LabError as exc:
                st = SchedState(f"unavailable: {exc}"[:200], "", False, None, "")
            self._state_snapshot = (time.monotonic(), st)
            return st

    async def status(self) -> dict[str, Any]:
        st = await self.sched_state()
        pending = len(await self.records.proposals("pending"))
        return {"state": self.state, "mode": self.mode, "target": self.target.name,
                "kernel": self.target.kernel, "sched_ext_state": st.state,
                "sched_ext_ops": st.ops, "active_policy": self.active_policy(),
                "active_since": self.active_since, "pending_proposals": pending,
                "last_error": self.last_error,
                "episodes_running": sum(e.state == "running" for e in self.episodes.values())}

    # --- requests ---
    async def set_mode(self, mode: str, caller: Caller) -> None:
        if mode not in MODES:
            raise DaemonError("InvalidArgument",
                              f"mode {mode!r}: expected one of {', '.join(MODES)}")
        await self.records.set_setting("mode", mode)
        await self.records.audit("set_mode", str(caller), mode, f"was {self.mode}", {})
        self.mode = mode
        self.emit("PropertiesChanged", {"Mode": mode})

    async def optimize(self, target: str, options: dict[str, Any], caller: Caller) -> str:
        if any(e.state in ("running", "proposed") for e in self.episodes.values()):
            raise DaemonError("Busy", "an optimization episode is already running")
        ep = Episode(uuid.uuid4().hex[:12], target, dict(options))
        self.episodes[ep.id] = ep
        await self.records.audit("optimize", str(caller), ep.id, target, {"options": options})
        await self.records.save_episode(ep.row())
        self._set(state=OPTIMIZING)
        self._spawn(self._run_episode(ep, caller))
        return ep.id

    async def _run_episode(self, ep: Episode, caller: Caller) -> None:
        try:
            await self._episode_steps(ep, caller)
        except asyncio.CancelledError:
            ep.state, ep.detail = "cancelled", "daemon stopping"
            raise
        except Exception as exc:  # an episode's failure must never stop the daemon
            ep.state, ep.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("episode %s failed: %s", ep.id, ep.detail, exc_info=exc)
            self._set(state=ERROR, error=ep.detail)
        finally:
            with contextlib.suppress(Exception):
                await self.records.save_episode(ep.row())
            await self.records.audit("episode_end", "daemon", ep.id, ep.state,
                                     {"detail": ep.detail,
                                      **({"agent": ep.record.summary()} if ep.record else {})})
            self.emit("EpisodeFinished", ep.as_dict())

    def _first_plan(self, ep: Episode) -> PlanChoice | None:
        """A request that names a policy is the first plan; the agent plans the rest."""
        policy = ep.options.get("policy")
        if not policy:
            return None
        return PlanChoice("configure", str(policy), dict(ep.options.get("params") or {}),
                          None, f"requested for {ep.target!r}")

    async def _episode_steps(self, ep: Episode, caller: Caller) -> None:
        from schedcpd.agent.budget import Meter
        from schedcpd.agent.loop import Agent
        from schedcpd.daemon.control import DaemonPlane

        a = self.cfg.agent
        workload = str(ep.options.get("workload") or ep.options.get("command") or "")
        rec = EpisodeRecord(ep.id, ep.target, self.backend.name, workload=workload)
        given = ep.options.get("profile")
        if isinstance(given, dict):
            rec.profile = dict(given)
            ep.profile = str(given.get("description", ""))
        first = self._first_plan(ep)
        if first is not None and not workload and not isinstance(given, dict):
            # A named policy with nothing to measure: no observation is needed to plan.
            rec.profile = {"description": ep.target, "characteristics": {}}
        ep.record = rec
        one_shot = first is not None and not workload
        settings = a.loop_settings(max_iterations=1 if one_shot else None,
                                   budget=ep.options.get("budget"),
                                   candidates=tuple(ep.options.get("candidates") or ()))
        plane = DaemonPlane(self, ep, caller)
        agent = Agent(self.backend, plane, settings, Meter(a.budget(), rec.usage))
        await agent.run(rec, first)
        self._finish(ep, rec, plane.proposal_ids())

    def _finish(self, ep: Episode, rec: EpisodeRecord, ours: set[str]) -> None:
        """The episode's state from what the agent did; ``ours`` are its proposals."""
        live = self.deployer.active
        first = rec.iterations[0] if rec.iterations else None
        if self._first_plan(ep) is not None and first is not None and \
                first.outcome == "rejected" and first.attempts:
            # The plan the caller asked for was refused: the request failed.
            att = first.attempts[-1]
            why = att.findings[0] if att.findings else f"refused at the {att.stage} stage"
            ep.state, ep.detail = "failed", f"{ep.options.get('policy')}: {why}"
            self._set(state=ERROR, error=ep.detail)
            return
        if live is not None and live.request.proposal_id in ours:
            best = rec.best()
            ep.state = "deployed"
            ep.detail = (f"{live.request.policy} {live.request.params}"
                         + (f"; {best.feedback.text()}" if best and best.feedback else ""))
        elif self.mode == "observe" and ours:
            ep.state, ep.detail = "proposed", rec.stop_reason
        else:
            ep.state, ep.detail = "no_change", rec.stop_reason or "keep the current scheduler"
        self._set(state=DEPLOYED if self.deployer.active else IDLE)

    def keep_object(self, v: Verified) -> Path:
        """Copy the object under the state directory: the last good must survive restarts."""
        d = self.cfg.state_dir / "objects"
        d.mkdir(parents=True, exist_ok=True)
        dst = d / f"{v.object_sha256}.bpf.o"
        if not dst.exists():
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(v.object_path, tmp)
            tmp.replace(dst)
        return dst

    async def _pending(self) -> int:
        return len(await self.records.proposals("pending"))

    async def wait_for_decision(self, ep: Episode, prop: Proposal) -> str:
        """Ask mode: the episode waits until the proposal is approved (and deployed),
        rejected or expired; what became of it."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._decisions[prop.id] = fut
        ep.state = "proposed"
        self._set(state=PROPOSAL)
        self.emit("PropertiesChanged", {"PendingProposals": await self._pending()})
        try:
            return await fut
        finally:
            self._decisions.pop(prop.id, None)
            ep.state = "running"

    def _decided(self, pid: str, outcome: str) -> None:
        fut = self._decisions.get(pid)
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    async def deploy_proposal(self, prop: Proposal, actor: str) -> None:
        req = DeployRequest(prop.policy, prop.params, Path(prop.object_path),
                            prop.object_sha256, prop.token, actor, prop.rationale, prop.id,
                            judge_metric=prop.id not in self.measured_proposals)
        try:
            await self.deployer.deploy(req)
        except DeployError as exc:
            await self.records.decide(prop.id, status="failed", actor="daemon", note=str(exc),
                                      expect=("approved",))
            self._set(state=ERROR, error=str(exc))
            self._decided(prop.id, "failed")
            raise DaemonError("Failed", str(exc)) from exc
        await self.records.decide(prop.id, status="deployed", actor=actor, note="",
                                  expect=("approved",))
        self._decided(prop.id, "deployed")

    async def approve(self, pid: str, caller: Caller) -> None:
        prop = await self.records.proposal(pid)
        if prop is None:
            raise DaemonError("NotFound", f"no proposal {pid!r}")
        if await self.records.decide(pid, status="approved", actor=str(caller),
                                     note="approved") is None:
            raise DaemonError("InvalidArgument", f"proposal {pid} is {prop.status}, "
                                                 "not pending")
        self.emit("PropertiesChanged", {"PendingProposals": await self._pending()})
        await self.deploy_proposal(prop, str(caller))
        if pid not in self._decisions:  # no episode waits for it (e.g. one from before a restart)
            self._mark_episode(pid, "deployed", f"approved by {caller}")

    async def reject(self, pid: str, reason: str, caller: Caller) -> None:
        prop = await self.records.proposal(pid)
        if prop is None:
            raise DaemonError("NotFound", f"no proposal {pid!r}")
        if await self.records.decide(pid, status="rejected", actor=str(caller),
                                     note=reason or "rejected") is None:
            raise DaemonError("InvalidArgument", f"proposal {pid} is {prop.status}, "
                                                 "not pending")
        self._mark_episode(pid, "no_change", f"rejected by {caller}: {reason}")
        self._decided(pid, "rejected")
        pending = await self._pending()
        self.emit("PropertiesChanged", {"PendingProposals": pending})
        if not pending:
            self._set(state=DEPLOYED if self.deployer.active else IDLE)

    def _mark_episode(self, pid: str, state: str, detail: str) -> None:
        for ep in self.episodes.values():
            if ep.proposal_id == pid:
                ep.state, ep.detail = state, detail

    async def rollback(self, reason: str, caller: Caller) -> str:
        if self.deployer.active is None:
            raise DaemonError("InvalidArgument", "nothing is deployed")
        restored = await self.deployer.rollback(reason or "requested", str(caller))
        return restored.policy if restored else "default"

    async def _expire_proposals(self) -> None:
        while True:
            now = time.time()
            for p in await self.records.proposals("pending"):
                if p.expires_at is not None and p.expires_at <= now:
                    await self.records.decide(p.id, status="expired", actor="daemon",
                                              note="no decision within the timeout")
                    self._mark_episode(p.id, "no_change", "proposal expired")
                    self._decided(p.id, "expired")
                    self.emit("PropertiesChanged", {"PendingProposals": await self._pending()})
            await asyncio.sleep(1.0)
