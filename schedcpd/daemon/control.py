"""The daemon as sched-agent's control plane (``schedcpd.agent.plane.ControlPlane``).

Every step the agent loop takes goes through the daemon's own paths: profiles and probes
run on the deployment target, sources the agent writes are kept in the Policy Repository
as candidates and go through the whole Execution Verifier, deployments are proposals that
follow the approval mode and run under the canary, and what was measured is written to
the repository's history, where promotion, retirement and antipatterns come from.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schedcpd.agent.goal import Goal, GoalError, declared
from schedcpd.agent.plane import DeployOutcome, DeployState, Verification
from schedcpd.agent.record import (
    IMPROVED,
    REGRESSED,
    REJECTED,
    Attempt,
    EpisodeRecord,
    Iteration,
    PlanChoice,
)
from schedcpd.agent.search import Arm, RaceResult, RaceSettings, race
from schedcpd.analysis.measure import Measured, MeasureError, fresh_dir, measured, samples
from schedcpd.analysis.on_target import probe_target, profile_run, profile_target
from schedcpd.analysis.profile import ProfileError, WorkloadProfile
from schedcpd.bpf.policy import Tunable
from schedcpd.daemon.racing import GuestRace
from schedcpd.daemon.submissions import keep_source, mark_verified, source_path
from schedcpd.deploy.deployer import DeployError, DeployRequest
from schedcpd.errors import RequestError
from schedcpd.repository import Host, Measurement, RepositoryError

if TYPE_CHECKING:
    from schedcpd.daemon.records import Proposal
    from schedcpd.daemon.service import Caller, Daemon, Episode, Verified

log = logging.getLogger("schedcpd.agent")
PROBE_S = 1.0


class DaemonPlane:
    def __init__(self, daemon: Daemon, ep: Episode, caller: Caller) -> None:
        self.d = daemon
        self.ep = ep
        self.caller = caller
        self._measured: Measured | None = None
        self._proposals: dict[int, Proposal] = {}  # iteration -> what it deployed
        self._race: GuestRace | None = None

    def proposal_ids(self) -> set[str]:
        return {p.id for p in self._proposals.values()}

    # --- observing and measuring ---
    def measured(self, rec: EpisodeRecord, goal: Goal | None = None) -> Measured:
        """What the episode measures, by the request's goal (or ``goal``, the one the
        workload declared); the record carries the goal from here on."""
        if self._measured is None or goal is not None:
            opts = self.ep.options
            try:
                m = measured(rec.workload, goal.metric if goal else str(opts.get("metric") or ""))
                goal = goal or Goal.of_request(opts, m.metric) or Goal.inferred(m.metric)
            except GoalError as exc:
                raise MeasureError(f"goal: {exc}") from None
            if goal.source == "inferred" and m.workload in _named():
                goal = Goal(m.metric, m.lower_is_better, (), "workload")
            self._measured = dataclasses.replace(m, lower_is_better=goal.lower_is_better)
            rec.goal, rec.goal_spec = goal.metric, goal.to_dict()
        return self._measured

    async def _declared(self, rec: EpisodeRecord) -> None:
        """A command that says nothing of its goal in the request may declare it in its
        output (SCHEDCP_GOAL): one run on the target reads it."""
        m = self.measured(rec)
        opts = self.ep.options
        if m.workload in _named() or opts.get("metric") or opts.get("goal") \
                or opts.get("guards"):
            return
        r = await self.d.target.run(fresh_dir(m.command), timeout_s=m.timeout_s)
        if r.exit_status == 0 and (goal := declared(r.stdout)) is not None:
            self.measured(rec, goal)
            self.progress(rec, "goal", {"goal": goal.text()})

    async def observe(self, rec: EpisodeRecord) -> dict[str, Any]:
        goals = tuple(str(g) for g in self.ep.options.get("goals") or ())
        seconds = self.d.cfg.agent.observe_s
        if rec.workload:
            await self._declared(rec)
            m = self.measured(rec)
            prof = await profile_run(self.d.target, fresh_dir(m.command), seconds,
                                     goals or (m.goal,), m.timeout_s, m.marks_start)
        else:
            prof = await profile_target(self.d.target, seconds, goals)
        self.ep.profile = prof.description
        return prof.to_dict()

    async def probe(self, rec: EpisodeRecord, kind: str) -> dict[str, Any]:
        if rec.workload:  # the episode's workload, run again for the probe to see
            m = self.measured(rec)
            return await probe_target(self.d.target, kind, PROBE_S, m.command, m.timeout_s,
                                      m.marks_start)
        return await probe_target(self.d.target, kind, PROBE_S)

    async def measure(self, rec: EpisodeRecord, runs: int) -> list[float]:
        return await samples(self.d.target, self.measured(rec), runs)

    # --- racing in the lab ---
    async def race(self, rec: EpisodeRecord, baseline: Arm | None, arms: Sequence[Arm],
                   settings: RaceSettings) -> RaceResult:
        if self._race is None:
            self._race = GuestRace(self.d.race_verifier, self.measured(rec))
        goal = Goal.from_dict(rec.goal_spec)
        result = await race(self._race, baseline, arms, goal, settings,
                            lambda step, detail: self.progress(rec, step, detail))
        if baseline is None:
            await self._record_race(rec, result)
        return result

    async def _record_race(self, rec: EpisodeRecord, result: RaceResult) -> None:
        """Each candidate judged against the default goes into the repository's history,
        by goal: the next episode on similar work orders its candidates by it."""
        try:
            repo = await self.d.repository.get()
            prof = WorkloadProfile.from_dict(rec.profile)
            cpus = prof.characteristics.get("ncpu")
            host = Host(self.d.target.kernel, int(cpus) if isinstance(cpus, int | float) else 1)
            for ln in result.lanes:
                j = ln.judgement
                if ln.arm is None or j is None or ln.dropped.startswith("refused"):
                    continue
                p = j.primary
                m = Measurement(p.metric, p.lower_is_better, p.baseline_median,
                                p.candidate_median, p.ci_low, p.ci_high,
                                min(p.n_baseline, p.n_candidate))
                await repo.record_run(ln.arm.policy, dict(ln.arm.params), prof, m, host=host,
                                      note=f"episode {rec.id}, race in the lab")
        except (RepositoryError, ProfileError, OSError) as exc:
            log.warning("episode %s: could not record the race: %s", rec.id, exc)

    async def end_race(self) -> None:
        if self._race is not None:
            await self._race.close()

    async def tunables(self, policy: str) -> Sequence[Tunable]:
        from schedcpd.bpf.policy import PolicyError, find_policy

        try:
            return find_policy(policy).tunables
        except PolicyError:
            return ()

    # --- verifying ---
    async def verify(self, rec: EpisodeRecord, choice: PlanChoice) -> Verification:
        try:
            if choice.action == "configure":
                name, source = choice.policy, await self._stored_source(choice.policy)
            else:
                name, source = await keep_source(
                    self.d.repository, self.d.cfg.state_dir, choice.source or "",
                    choice.policy or None,
                    choice.rationale or f"written by sched-agent in episode {rec.id}",
                    str(rec.profile.get("description", "")))
            out = await self.d.verifier.check(name, dict(choice.params), source)
        except (RequestError, RepositoryError, OSError) as exc:
            why = exc.message if isinstance(exc, RequestError) else str(exc)
            return Verification(Attempt(choice.policy or "(new)", False, "request", (why,),
                                        0.0))
        if source is not None:
            await mark_verified(self.d.repository, name, out)
        return Verification(Attempt(name, out.verified is not None, out.stage, out.findings,
                                    out.seconds), out.verified)

    async def _stored_source(self, name: str) -> Path | None:
        """None for a library policy (the verifier finds it); the kept file of one an agent
        or a user added to the repository."""
        from schedcpd.bpf.policy import PolicyError, find_policy

        try:
            find_policy(name)
            return None
        except PolicyError:
            pass
        rec_ = await (await self.d.repository.get()).get(name)
        path = source_path(self.d.cfg.state_dir, name)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rec_.source)
        return path

    # --- deploying ---
    async def deploy(self, rec: EpisodeRecord, choice: PlanChoice,
                     v: Verification) -> DeployOutcome:
        verified: Verified = v.ticket
        d = self.d
        kept = d.keep_object(verified)
        prop = await d.records.add_proposal(
            policy=v.attempt.policy, params=dict(choice.params),
            object_sha256=verified.object_sha256, object_path=str(kept), token=verified.token,
            rationale=choice.rationale or choice.label(),
            timeout_s=d.cfg.proposal_timeout_s if d.mode == "ask" else None,
            actor=str(self.caller))
        self._proposals[rec.iterations[-1].n] = prop
        self.ep.proposal_id = prop.id
        if rec.workload:  # judged by the episode's own measurement
            d.measured_proposals.add(prop.id)
        d.emit("ProposalCreated", prop.as_dict())
        if d.mode == "observe":
            await d.records.decide(prop.id, status="rejected", actor="daemon",
                                   note="observe mode: recommendation only")
            return DeployOutcome("recommended", f"recommend {choice.label()} (observe mode)")
        if d.mode == "ask":
            decided = await d.wait_for_decision(self.ep, prop)
            state: DeployState = ("deployed" if decided == "deployed" else "rejected"
                                  if decided == "rejected" else "expired"
                                  if decided == "expired" else "failed")
            return DeployOutcome(state, f"proposal {prop.id} {decided}")
        await d.records.decide(prop.id, status="approved", actor="daemon", note="auto mode")
        try:
            await d.deploy_proposal(prop, "daemon (auto mode)")
        except RequestError as exc:
            return DeployOutcome("failed", exc.message)
        return DeployOutcome("deployed", f"{v.attempt.policy} deployed")

    async def restore(self, rec: EpisodeRecord, it: Iteration) -> bool:
        prop = self._proposals.get(it.n)
        if prop is None:
            return False
        req = DeployRequest(prop.policy, prop.params, Path(prop.object_path),
                            prop.object_sha256, prop.token,
                            "sched-agent (back to the episode's best)", prop.rationale, prop.id,
                            judge_metric=not rec.workload)
        try:
            await self.d.deployer.deploy(req)
        except DeployError as exc:
            log.warning("could not return to %s: %s", prop.policy, exc)
            return False
        return True

    async def rollback(self, reason: str) -> str:
        if self.d.deployer.active is None:
            return "default"
        restored = await self.d.deployer.rollback(reason, "sched-agent")
        return restored.policy if restored else "default"

    # --- learning ---
    async def learn(self, rec: EpisodeRecord, it: Iteration) -> None:
        """Write what the iteration showed to the repository's history; a generated policy
        is promoted on a verified, measured gain and retired when it failed or regressed."""
        try:
            await self._learn(rec, it)
        except (RepositoryError, ProfileError, OSError) as exc:
            log.warning("episode %s: could not record iteration %d: %s", rec.id, it.n, exc)

    async def _learn(self, rec: EpisodeRecord, it: Iteration) -> None:
        repo = await self.d.repository.get()
        prof = WorkloadProfile.from_dict(rec.profile)
        cpus = prof.characteristics.get("ncpu")
        host = Host(self.d.target.kernel, int(cpus) if isinstance(cpus, int | float) else 1)
        name = it.deployed or (it.attempts[-1].policy if it.attempts else "")
        if not name or name == "(new)":
            return
        note = f"episode {rec.id}, iteration {it.n}"
        run = None
        if it.feedback is not None:
            fb = it.feedback
            m = Measurement(fb.metric, fb.lower_is_better, fb.baseline, fb.candidate,
                            fb.ci_low, fb.ci_high, min(fb.n_baseline, fb.n_candidate))
            run = await repo.record_run(name, it.params, prof, m, note=note, host=host)
        elif it.outcome == REJECTED and it.attempts:
            last = it.attempts[-1]
            why = last.findings[0] if last.findings else last.stage
            run = await repo.record_run(name, it.params, prof, None, host=host, note=note,
                                        failure=f"refused by the verifier ({last.stage}): "
                                                f"{why}"[:500])
        rec_ = await repo.get(name)
        if rec_.provenance != "library" and it.outcome == IMPROVED and run is not None \
                and rec_.status == "verified":
            await repo.promote(name, [run.id], reason=f"measured gain: {it.feedback.text()}"
                               if it.feedback else "measured gain")
        # Every source the agent wrote that failed here is retired: the verifier's refusals
        # (each fix is a new source) and a deployment that measured worse.
        failed = {a.policy for a in it.attempts if not a.passed}
        if it.outcome == REGRESSED:
            failed.add(name)
        for gen in sorted(failed - {"(new)"}):
            g = await repo.get(gen)
            if g.provenance != "library" and g.status != "retired":
                await repo.retire(gen, reason=f"{it.outcome} in {note}",
                                  run_ids=[run.id] if run and gen == name else [])

    # --- reporting ---
    def progress(self, rec: EpisodeRecord, step: str, detail: dict[str, Any]) -> None:
        log.info("episode %s: %s %s", rec.id, step, detail)
        self.d.emit("EpisodeProgress", {"episode": rec.id, "step": step, **detail})


def _named() -> frozenset[str]:
    from schedcpd.lab.workloads import WORKLOADS

    return frozenset(WORKLOADS)
