"""What the agent loop may ask of the control plane: the only way it touches the system.

The daemon implements it (``schedcpd.daemon.control``): every action goes through the
daemon's own paths, so verification, tokens, approval modes, the canary and the audit log
apply to the agent exactly as to a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from schedcpd.agent.record import Attempt, EpisodeRecord, Iteration, PlanChoice
from schedcpd.agent.search import Arm, RaceResult, RaceSettings
from schedcpd.bpf.policy import Tunable

DeployState = Literal["deployed", "recommended", "rejected", "expired", "failed"]


@dataclass(frozen=True)
class Verification:
    attempt: Attempt
    ticket: Any = None  # what deploy() needs for a passed attempt (opaque to the loop)


@dataclass(frozen=True)
class DeployOutcome:
    state: DeployState
    detail: str


class ControlPlane(Protocol):
    async def observe(self, rec: EpisodeRecord) -> dict[str, Any]:
        """A tier-1 profile of the target (while the episode's workload runs, if any)."""
        ...

    async def probe(self, rec: EpisodeRecord, kind: str) -> dict[str, Any]:
        """A deeper, bounded probe of the target; its headline numbers join the profile."""
        ...

    async def measure(self, rec: EpisodeRecord, runs: int) -> list[float]:
        """The workload's metric over ``runs`` runs under what the target runs now."""
        ...

    async def race(self, rec: EpisodeRecord, baseline: Arm | None, arms: Sequence[Arm],
                   settings: RaceSettings) -> RaceResult:
        """Race ``arms`` against ``baseline`` (None: the default scheduler) on the
        episode's workload and goal, in a lab guest: never on the deployment target."""
        ...

    async def end_race(self) -> None:
        """Power off the episode's race guest, if one was booted."""
        ...

    async def tunables(self, policy: str) -> Sequence[Tunable]: ...

    async def verify(self, rec: EpisodeRecord, choice: PlanChoice) -> Verification: ...

    async def deploy(self, rec: EpisodeRecord, choice: PlanChoice,
                     v: Verification) -> DeployOutcome:
        """Through the daemon's approval mode; returns once deployed or decided."""
        ...

    async def restore(self, rec: EpisodeRecord, it: Iteration) -> bool:
        """Deploy again what an earlier iteration of this episode deployed."""
        ...

    async def rollback(self, reason: str) -> str: ...

    async def learn(self, rec: EpisodeRecord, it: Iteration) -> None:
        """History, promotion, retirement and antipatterns from one iteration."""
        ...

    def progress(self, rec: EpisodeRecord, step: str, detail: dict[str, Any]) -> None:
        """Report a step as it happens (D-Bus signal, log)."""
        ...
