"""The one interface every sched-agent backend implements: the four roles' decisions.

The loop (``loop.py``) owns the sequence and every action on the system; a backend only
decides, from the episode record:

- Observation: which deeper probes the profile needs, if any (``observe``);
- Planning: configure a policy's tunables, patch a policy, compose a new one, or keep the
  current scheduler (``plan``); or, where the workload can be measured, the candidates
  to race, in the order of its priors (``propose``: measurement decides, not the order);
- Execution: how to fix a plan the Execution Verifier rejected, or give up (``fix``);
- Learning: whether another iteration is worth it, and the lesson (``reflect``).

``builtin`` (rules and a bandit, no LLM) and the LLM backends (``ollama``, ``openai``)
answer the same questions; nothing they return reaches the kernel without the verifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schedcpd.agent.record import Attempt, EpisodeRecord, PlanChoice
from schedcpd.agent.search import Arm

PROBES = ("runqlat", "top")  # deeper tiers the control plane can run on the target


class BackendError(RuntimeError):
    """The backend could not decide (a model's answers stayed unusable, a server failed);
    the episode ends cleanly with this reason."""


@dataclass(frozen=True)
class ObserveDecision:
    probes: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Reflection:
    go_on: bool
    lesson: str


class Backend(Protocol):
    name: str

    async def observe(self, rec: EpisodeRecord) -> ObserveDecision: ...

    async def plan(self, rec: EpisodeRecord) -> PlanChoice: ...

    async def propose(self, rec: EpisodeRecord, allowed: Sequence[str] = ()) -> list[Arm]:
        """Candidates for the measured search, best prior first (the search decides)."""
        ...

    async def fix(self, rec: EpisodeRecord, choice: PlanChoice,
                  failed: Attempt) -> PlanChoice | None: ...

    async def reflect(self, rec: EpisodeRecord) -> Reflection: ...

    async def close(self) -> None: ...
