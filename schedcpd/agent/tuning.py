"""Tuning the leader's declared tunables with a black-box optimizer (optuna's TPE).

    tuner = Tuner(leader, tunables, seed=0)
    arms = tuner.ask(3)                       # new settings to race against the leader
    tuner.tell(arm, gain)                     # what the race measured (None: refused/failed)

Numeric tunables are searched within their declared range (on a log scale where the range
spans more than a decade), booleans as a choice; string tunables (names of jobs, cgroups)
keep the leader's values: they come from the profile, not from a search. Seeded, so the
same evidence asks the same questions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from schedcpd.agent.bandit import ArmKey
from schedcpd.agent.search import Arm
from schedcpd.bpf.policy import Tunable

log = logging.getLogger("schedcpd.agent")
FAILED_GAIN = -1.0  # what a refused or failed setting tells the optimizer


def searchable(t: Tunable) -> bool:
    return t.type == "bool" or (t.type != "str" and t.min is not None and t.max is not None
                                and t.max > t.min)


class Tuner:
    def __init__(self, leader: Arm, tunables: Sequence[Tunable], leader_gain: float,
                 seed: int = 0) -> None:
        import optuna  # imported here: only an episode that tunes pays for it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.leader = leader
        self.space = [t for t in tunables if searchable(t)]
        self.study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
        self._trials: dict[ArmKey, Any] = {}
        if self.space:
            # The leader as raced is the first finished trial: the search starts from it.
            params = {t.name: leader.params.get(t.name, t.default) for t in self.space}
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions={t.name: _distribution(t) for t in self.space},
                value=float(leader_gain)))

    @property
    def empty(self) -> bool:
        return not self.space

    def _suggest(self, trial: Any) -> dict[str, int | bool | str]:
        out: dict[str, int | bool | str] = dict(self.leader.params)
        for t in self.space:
            d = _distribution(t)
            out[t.name] = (bool(trial.suggest_categorical(t.name, d.choices))
                           if t.type == "bool"
                           else int(trial.suggest_int(t.name, d.low, d.high, log=d.log)))
        return out

    def ask(self, n: int) -> list[Arm]:
        """Up to ``n`` settings not tried yet (the optimizer may repeat one: skipped)."""
        arms: list[Arm] = []
        for _ in range(max(0, n) * 3):
            if len(arms) >= n or self.empty:
                break
            trial = self.study.ask()
            arm = Arm(self.leader.policy, self._suggest(trial), self.leader.prior,
                      f"tuning {self.leader.policy}'s tunables (trial {trial.number})")
            if arm.key() in self._trials or arm.key() == self.leader.key():
                self.study.tell(trial, state=_pruned())
                continue
            self._trials[arm.key()] = trial
            arms.append(arm)
        return arms

    def tell(self, arm: Arm, gain: float | None) -> None:
        trial = self._trials.pop(arm.key(), None)
        if trial is not None:
            self.study.tell(trial, FAILED_GAIN if gain is None else float(gain))

    def told(self) -> Mapping[str, float]:
        return {str(t.params): float(t.value) for t in self.study.trials
                if t.value is not None}


def _distribution(t: Tunable) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if t.type == "bool":
        return CategoricalDistribution([False, True])
    assert t.min is not None and t.max is not None
    return IntDistribution(t.min, t.max, log=t.min > 0 and t.max / t.min > 10)


def _pruned() -> Any:
    import optuna

    return optuna.trial.TrialState.PRUNED
