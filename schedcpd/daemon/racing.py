"""Where an episode's candidates race: a lab guest of the episode's own, never the target.

``GuestRace`` is the daemon's ``search.RaceLab``. Each candidate is verified once per
(object, parameters) at quick depth before its first run (verdicts are reused through the
daemon's records); each run attaches it in the race guest, runs the episode's workload in
a fresh directory, checks that the kernel still runs it, and detaches. The guest boots at
the first run and powers off when the episode ends; a guest that panics is booted again
and the run made once more there.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from schedcpd.agent.search import Arm, RunFailed
from schedcpd.analysis.feedback import parse_metrics
from schedcpd.analysis.measure import Measured, fresh_dir
from schedcpd.bpf.policy import PolicyError, find_policy
from schedcpd.errors import RequestError
from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.session import GuestPanic, LabSession, SessionError

log = logging.getLogger("schedcpd.agent")
MAX_FINDING_CHARS = 300


class Verifier(Protocol):
    """The daemon's verifier as the race uses it (daemon.verifying.LabVerifier), declared
    here so that this module needs nothing of the daemon's service: ``check`` returns a
    ``Checked`` (``verified``, None when refused; ``stage``; ``findings``; ``seconds``)."""

    async def check(self, policy: str, params: dict[str, Any]) -> Any: ...


class GuestRace:
    def __init__(self, verifier: Verifier, measured: Measured) -> None:
        self.verifier = verifier
        self.m = measured
        self._loads: dict[tuple[str, str], SchedulerLoad] = {}
        self._session: LabSession | None = None
        self.verify_s = 0.0

    async def prepare(self, arm: Arm) -> str:
        try:
            resolved = find_policy(arm.policy).resolve_params(dict(arm.params))
        except PolicyError as exc:
            return str(exc)[:MAX_FINDING_CHARS]
        try:
            out = await self.verifier.check(arm.policy, dict(arm.params))
        except RequestError as exc:
            return exc.message[:MAX_FINDING_CHARS]
        self.verify_s += out.seconds
        if out.verified is None:
            why = out.findings[0] if out.findings else "no finding given"
            return f"the verifier's {out.stage} stage: {why}"[:MAX_FINDING_CHARS]
        self._loads[arm.key()] = SchedulerLoad(out.verified.object_path, resolved)
        return ""

    async def _guest(self) -> LabSession:
        if self._session is None:
            s = LabSession()
            await s.start()
            self._session = s
        return self._session

    async def run(self, arm: Arm | None) -> dict[str, float]:
        """One run; a guest kernel panic (a TCG lab fault, seen at attach: README, "Guest
        panics") is not the candidate's doing: the run is made again once in a fresh
        guest, and only a second fault counts as a failed run."""
        for attempt in (1, 2):
            try:
                return await self._run(arm)
            except GuestPanic as exc:
                await self.close()  # the next attempt boots a fresh guest
                if attempt == 2:
                    raise RunFailed(f"lab fault twice: {exc}") from None
                log.warning("race: the lab guest panicked under %s; running it again: %s",
                            arm.label() if arm else "the baseline", exc)
            except SessionError as exc:
                await self.close()
                raise RunFailed(f"the race guest stopped answering: {exc}") from None
        raise AssertionError("unreachable")

    async def _run(self, arm: Arm | None) -> dict[str, float]:
        s = await self._guest()
        if arm is not None:
            st = await s.attach(self._loads[arm.key()])
            if not st.attached:
                await s.detach()
                raise RunFailed(f"{arm.label()} did not attach: "
                                f"{st.loader_error or st.state}"[:MAX_FINDING_CHARS])
        try:
            r = await s.run(fresh_dir(self.m.command), timeout_s=self.m.timeout_s)
            if arm is not None:
                st = await s.sched_state()
                if not st.attached:
                    why = st.sched_exit.reason if st.sched_exit else st.state
                    raise RunFailed(f"{arm.label()} was ejected: {why}"[:MAX_FINDING_CHARS])
        finally:
            if arm is not None:
                await s.detach()
        if r.exit_status != 0:
            raise RunFailed(f"the workload failed (exit {r.exit_status}): "
                            f"{r.stderr.strip()[-200:]}")
        try:
            found = parse_metrics(r.stdout)
            found[self.m.metric] = float(self.m.parse(r.stdout, r.wall_s))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise RunFailed(f"no {self.m.metric} in the output: {exc}"[:MAX_FINDING_CHARS]) \
                from None
        return found

    async def close(self) -> None:
        if self._session is not None:
            s, self._session = self._session, None
            await s.close()
