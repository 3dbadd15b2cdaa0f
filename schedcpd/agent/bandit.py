"""Which arm (a policy with parameters) to try next: UCB1 with a prior from the rules.

Each arm starts with one pseudo-observation, its prior expected gain (the rule's prior
scaled by ``PRIOR_GAIN``, or the repository's recorded gain on similar workloads, whichever
is higher), so rules decide while nothing is measured and measurements take over as they
accumulate. The exploration bonus is UCB1's, scaled to gains (fractions, 0.2 = 20 %).
Deterministic on purpose: the same evidence gives the same plan, which an operator can
audit and a test can check. Keeping the default scheduler is the arm with gain 0, so an
arm is worth a deployment only when its score clears ``MIN_SCORE``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PRIOR_GAIN = 0.15  # the gain a rule with prior 1.0 expects
EXPLORE = 0.05  # UCB1's constant, in units of gain
MIN_SCORE = 0.05  # less expected gain than this is not worth replacing EEVDF

ArmKey = tuple[str, str]  # (policy, canonical JSON of its parameters)


def arm_key(policy: str, params: Mapping[str, object]) -> ArmKey:
    return policy, json.dumps(dict(sorted(params.items())), sort_keys=True)


@dataclass(frozen=True)
class ArmStats:
    """Measured runs of one arm on this workload (gains, clipped to [-1, 1])."""

    n: int = 0
    gain_sum: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.gain_sum / self.n if self.n else None

    def add(self, gain: float) -> ArmStats:
        g = gain if math.isfinite(gain) else 0.0
        return ArmStats(self.n + 1, self.gain_sum + max(-1.0, min(1.0, g)))


def stats_from(gains: Iterable[tuple[ArmKey, float]]) -> dict[ArmKey, ArmStats]:
    out: dict[ArmKey, ArmStats] = {}
    for key, gain in gains:
        out[key] = out.get(key, ArmStats()).add(gain)
    return out


@dataclass(frozen=True)
class Score:
    key: ArmKey
    prior_gain: float
    stats: ArmStats
    expected: float  # posterior mean gain
    bonus: float

    @property
    def value(self) -> float:
        return self.expected + self.bonus


def score(key: ArmKey, prior_gain: float, stats: ArmStats, total_runs: int) -> Score:
    pseudo = 1 + stats.n
    expected = (prior_gain + stats.gain_sum) / pseudo
    bonus = EXPLORE * math.sqrt(math.log(1 + total_runs) / pseudo)
    return Score(key, prior_gain, stats, expected, bonus)


def rank(priors: Mapping[ArmKey, float], history: Mapping[ArmKey, ArmStats]) -> list[Score]:
    """Arms best first; ties go to the higher prior, then the name (stable plans)."""
    total = sum(s.n for s in history.values())
    scores = [score(k, p, history.get(k, ArmStats()), total) for k, p in priors.items()]
    scores.sort(key=lambda s: (-s.value, -s.prior_gain, s.key))
    return scores
