"""Learning from deployments: a scheduler its canary threw out becomes a failed run in the
repository's history, so the planner's antipatterns keep that policy and those parameters
away from similar workloads.

The run is recorded against the profile the episode planned from; a deployment made
without one (a policy named by the caller) is described by its proposal's rationale.
"""

from __future__ import annotations

import logging
from typing import Any

from schedcpd.analysis.profile import ProfileError, WorkloadProfile
from schedcpd.deploy.canary import EJECTED, LOADER_DIED, REGRESSION
from schedcpd.repository import RepositoryError
from schedcpd.repository.lazy import LazyRepository

log = logging.getLogger("schedcpd.learning")

# Causes that judge the scheduler; a requested rollback or a lost target does not.
LEARNED_CAUSES = (REGRESSION, EJECTED, LOADER_DIED)


def run_profile(profile: dict[str, Any] | None, rationale: str) -> WorkloadProfile:
    if profile is not None:
        try:
            return WorkloadProfile.from_dict(profile)
        except ProfileError:
            pass
    return WorkloadProfile(description=rationale.strip() or "an unprofiled workload")


class Learner:
    def __init__(self, repository: LazyRepository) -> None:
        self._repository = repository

    async def rolled_back(self, policy: str, params: dict[str, Any],
                          profile: dict[str, Any] | None, rationale: str, cause: str,
                          reason: str) -> bool:
        """Record the rollback as a failed run; False (and a warning) when the repository
        cannot take it: learning must never stop the daemon."""
        if cause not in LEARNED_CAUSES:
            return False
        try:
            repo = await self._repository.get()
            await repo.history.record_run(policy, params, run_profile(profile, rationale),
                                          None, failure=f"rolled back by the canary: {reason}")
        except (RepositoryError, OSError) as exc:
            log.warning("could not record the rollback of %s in the history: %s", policy, exc)
            return False
        return True
