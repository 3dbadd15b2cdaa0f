"""Deploy a verified scheduler with a canary; roll back to the last known good on a trip.

The order of every step is chosen for crash safety: the token is checked before anything
happens, the deployment is recorded (``attaching``) before the attach, the canary's
verdict is recorded before the next action. A deployment that survives its canary window
becomes the last known good, which every rollback returns to (or to the kernel's default
scheduler when there is none, or when the last good one is what just failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schedcpd.config import CanaryConfig
from schedcpd.daemon.records import DaemonRecords, Deployment
from schedcpd.deploy.canary import EJECTED, REQUESTED, CanarySample, CircuitBreaker, Trip
from schedcpd.deploy.target import Target
from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.result import GuestMetrics, SchedState
from schedcpd.lab.vm import LAB_ATTEMPTS, LabError

# (token, object, params, kernel release) -> None, or raises with the reason.
TokenCheck = Callable[[str, Path, dict[str, Any], str], None]
Emit = Callable[[str, dict[str, Any]], None]
BASELINE_SAMPLES = 5
# After the canary window the scheduler is still watched for ejection, less often.
WATCH_INTERVAL_S = 2.0


class DeployError(RuntimeError):
    """The deployment was refused or failed; nothing new is running."""


@dataclass(frozen=True)
class DeployRequest:
    policy: str
    params: dict[str, Any]
    object_path: Path
    object_sha256: str
    token: str
    actor: str
    reason: str
    proposal_id: str | None = None
    ops_name: str = ""  # the ops name the kernel will report (read from the object if "")
    # False when the caller judges the scheduler by its workload's own metric (an agent
    # episode that measures before and after): the canary then watches only for ejection
    # and a dead loader. The generic metric would misread a workload that the new
    # scheduler runs better but with more queueing (longest job first) as a regression.
    judge_metric: bool = True

    def ops(self) -> str:
        return self.ops_name or object_ops(self.object_path) or f"schedcp_{self.policy}"


def object_ops(path: Path) -> str:
    """The ``.name`` of the object's sched_ext ops: what the kernel will report running.
    Library policies are ``schedcp_<name>``; an agent's policy names its ops itself."""
    from schedcpd.verifier.bpfobj import ObjectError, load

    try:
        return load(path).ops_name
    except (ObjectError, OSError):
        return ""


def pressure(prev: GuestMetrics, cur: GuestMetrics) -> float | None:
    """Share of time some runnable task waited for a CPU between two snapshots (PSI)."""
    a, b = prev.cpu_some_total_us, cur.cpu_some_total_us
    dt = cur.uptime_s - prev.uptime_s
    if a is None or b is None or dt <= 0:
        return None
    return max(0.0, (b - a) / 1e6 / dt)


@dataclass
class _Active:
    deployment: Deployment
    request: DeployRequest
    breaker: CircuitBreaker
    task: asyncio.Task[None] | None = None
    good: bool = False  # survived its canary window


class Deployer:
    def __init__(self, target: Target, records: DaemonRecords, canary: CanaryConfig,
                 token_check: TokenCheck, emit: Emit | None = None) -> None:
        self.target = target
        self.records = records
        self.cfg = canary
        self.token_check = token_check
        self.emit = emit or (lambda name, payload: None)
        self.active: _Active | None = None
        self._lock = asyncio.Lock()

    # --- measuring ---
    async def _metric_series(self, n: int) -> list[float]:
        out: list[float] = []
        prev = await self.target.metrics()
        for _ in range(n):
            await asyncio.sleep(self.cfg.interval_s)
            cur = await self.target.metrics()
            if (p := pressure(prev, cur)) is not None:
                out.append(p)
            prev = cur
        return out

    async def baseline(self) -> float | None:
        vals = await self._metric_series(BASELINE_SAMPLES)
        return sorted(vals)[len(vals) // 2] if vals else None

    async def _baseline_before(self, req: DeployRequest) -> float | None:
        """The pressure before ``req`` runs. Nothing of ours runs on the target while it is
        measured, so a target lost meanwhile (the vm target boots it again) costs only a
        second try."""
        if not req.judge_metric:
            return None
        try:
            return await self.baseline()
        except LabError as exc:
            await self.records.audit("target_lost", "daemon", req.policy,
                                     f"while measuring the baseline: {exc}"[:600], {})
            return await self.baseline()

    # --- deploying ---
    async def deploy(self, req: DeployRequest) -> Deployment:
        async with self._lock:
            try:
                self.token_check(req.token, req.object_path, req.params, self.target.kernel)
            except Exception as exc:
                await self.records.audit("deploy_refused", req.actor, req.policy, str(exc),
                                         {"proposal": req.proposal_id})
                raise DeployError(f"refused: {exc}") from exc
            if self.active is not None:
                await self._end_active("stopped", f"replaced by {req.policy}", req.actor)
            try:
                base = await self._baseline_before(req)
            except LabError as exc:
                raise DeployError(f"{req.policy}: the target was lost twice while measuring "
                                  f"its baseline: {exc}") from exc
            d, st = await self._start_and_attach(req)
            if st is None:
                await self.restore_last_good(exclude=d.id)
                raise DeployError(f"{req.policy}: the target was lost while attaching, "
                                  f"{LAB_ATTEMPTS} times")
            if not st.attached:
                why = st.loader_error[-600:] or f"sched_ext state {st.state!r}"
                await self.records.set_deployment(d.id, state="failed", cause=why,
                                                  audit_action="deploy_failed")
                await self._detach(req.policy, req.actor)
                await self.restore_last_good(exclude=d.id)
                raise DeployError(f"{req.policy} did not attach: {why}")
            await self.records.set_deployment(d.id, state="canary", baseline=base)
            d = await self.records.deployment(d.id) or d
            breaker = CircuitBreaker(self.cfg, req.ops(), base, time.monotonic())
            self.active = _Active(d, req, breaker)
            self.active.task = asyncio.create_task(self._watch(self.active))
            self.emit("PolicyDeployed", {"policy": req.policy, "deployment": d.id,
                                         "params": req.params})
            return d

    async def _watch(self, act: _Active) -> None:
        try:
            await self._watch_samples(act)
        except LabError as exc:
            # The target itself died (a lab guest's kernel panic; the vm target boots it
            # again): what ran there is gone. Record it and return to the last known good.
            async with self._lock:
                if self.active is not act:
                    return
                self.active = None
                await self._record_lost(act.deployment.id, exc, actor="canary")
                restored = await self.restore_last_good(exclude=act.deployment.id)
                self.emit("RolledBack", {"reason": f"target lost: {exc}"[:300],
                                         "cause": "target_lost",
                                         "from": act.request.policy,
                                         "to": restored.policy if restored else "default"})

    async def _watch_samples(self, act: _Active) -> None:
        """The canary loop: sample, judge, and roll back on a trip."""
        prev = await self.target.metrics()
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S if act.good else self.cfg.interval_s)
            # One request per sample: a loaded guest answers slowly.
            cur = await self.target.metrics()
            if cur.uptime_s < prev.uptime_s:
                # Booted again by a request of someone else's (a workload run that found
                # the guest panicked): the scheduler went with the old one.
                raise LabError(f"the target restarted (uptime {prev.uptime_s:.0f} s, then "
                               f"{cur.uptime_s:.0f} s): what ran there is gone")
            sample = CanarySample(time.monotonic(), cur.state, cur.ops, cur.loader_alive,
                                  pressure(prev, cur))
            prev = cur
            trip = act.breaker.observe(sample)
            if trip is None and act.good:
                continue
            if trip is not None:
                st = await self.target.sched_state()
                if trip.cause == EJECTED and st.sched_exit is not None:
                    ex = st.sched_exit
                    said = f": {ex.msg}" if ex.msg else ""
                    trip = Trip(trip.cause, f"{trip.detail}; kernel: {ex.kind_name} "
                                            f"{ex.reason}{said}")
                await self._tripped(act, trip)
                return
            if act.breaker.passed(time.monotonic()):
                act.good = True
                await self.records.set_deployment(act.deployment.id, state="good",
                                                  audit_action="canary_passed",
                                                  actor="canary",
                                                  cause="survived the canary window")
                await self.records.set_last_good(act.deployment.id)
                self.emit("CanaryPassed", {"deployment": act.deployment.id})

    async def _tripped(self, act: _Active, trip: Trip) -> None:
        async with self._lock:
            if self.active is act:
                await self._rollback(f"{trip.cause}: {trip.detail}", "canary", trip.cause)

    # --- rolling back ---
    async def rollback(self, reason: str, actor: str) -> Deployment | None:
        """Detach what runs now and return to the last known good (or the default)."""
        async with self._lock:
            return await self._rollback(reason, actor, REQUESTED)

    async def _rollback(self, reason: str, actor: str, cause: str) -> Deployment | None:
        failed = self.active.deployment if self.active else None
        await self._end_active("rolled_back", reason, actor)
        if failed is not None and (await self.records.last_good() or failed).id == failed.id:
            await self.records.set_last_good(None)  # a scheduler that tripped is not good
        restored = await self.restore_last_good(exclude=failed.id if failed else None)
        self.emit("RolledBack", {"reason": reason, "cause": cause,
                                 "deployment": failed.id if failed else 0,
                                 "from": failed.policy if failed else "",
                                 "to": restored.policy if restored else "default"})
        return restored

    async def _end_active(self, state: str, reason: str, actor: str) -> None:
        act, self.active = self.active, None
        if act is None:
            return
        if act.task is not None and act.task is not asyncio.current_task():
            act.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await act.task
        await self.records.set_deployment(act.deployment.id, state=state, cause=reason,
                                          actor=actor,
                                          audit_action="rollback" if state == "rolled_back"
                                          else "stop")
        await self._detach(act.request.policy, actor)

    async def restore_last_good(self, exclude: int | None) -> Deployment | None:
        lg = await self.records.last_good()
        if lg is None or lg.id == exclude or not Path(lg.object_path).is_file():
            return None
        try:
            self.token_check(lg.token, Path(lg.object_path), lg.params, self.target.kernel)
        except Exception as exc:
            await self.records.audit("restore_refused", "daemon", lg.policy, str(exc), {})
            return None
        req = DeployRequest(lg.policy, lg.params, Path(lg.object_path), lg.object_sha256,
                            lg.token, "daemon", "restore the last known good", lg.proposal_id)
        d, st = await self._start_and_attach(req)
        if st is None:
            return None
        if not st.attached:
            await self.records.set_deployment(d.id, state="failed",
                                              cause=st.loader_error[-600:] or st.state,
                                              audit_action="deploy_failed")
            await self._detach(lg.policy, "daemon")
            return None
        # It already proved itself: watched for ejection only, and it stays the last good.
        await self.records.set_deployment(d.id, state="good")
        await self.records.set_last_good(d.id)
        breaker = CircuitBreaker(self.cfg, req.ops(), None, time.monotonic() - self.cfg.window_s)
        self.active = _Active(d, req, breaker, good=True)
        self.active.task = asyncio.create_task(self._watch(self.active))
        return d

    async def _start_and_attach(self, req: DeployRequest
                                ) -> tuple[Deployment, SchedState | None]:
        """Record a deployment of ``req`` and attach it. A target lost meanwhile (a lab
        guest's kernel panic; the vm target boots it again) fails that deployment and the
        next is tried in the fresh target: the lab's TCG fault strikes attaches at random
        (README, "Guest panics"), a scheduler that kills its kernel does it every time.
        The state is None when every try was lost: a rollback still completes."""
        load = SchedulerLoad(req.object_path, req.params)
        for _ in range(LAB_ATTEMPTS):
            d = await self.records.start_deployment(
                proposal_id=req.proposal_id, policy=req.policy, params=req.params,
                object_sha256=req.object_sha256, object_path=str(req.object_path),
                token=req.token, target=self.target.name, actor=req.actor, reason=req.reason)
            try:
                return d, await self.target.attach(load)
            except LabError as exc:
                await self._record_lost(d.id, exc)
        return d, None

    async def _detach(self, policy: str, actor: str) -> None:
        """Back to the default scheduler. A target lost meanwhile (the vm target boots it
        again) took the scheduler with it: recorded, not raised."""
        try:
            await self.target.detach()
        except LabError as exc:
            await self.records.audit("target_lost", actor, policy,
                                     f"while detaching: {exc}"[:600], {})

    async def _record_lost(self, did: int, exc: LabError, actor: str = "daemon") -> None:
        await self.records.set_deployment(did, state="failed", cause=f"target lost: {exc}"[:600],
                                          actor=actor, audit_action="target_lost")

    async def stop(self, leave: str) -> None:
        """Daemon shutdown: ``default`` detaches; ``last_good`` leaves a good one running."""
        async with self._lock:
            act = self.active
            if act is None:
                return
            if act.task is not None:
                act.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await act.task
            if leave == "default" or not act.good:
                await self._end_active("stopped", "daemon stopped", "daemon")
            else:
                self.active = None
