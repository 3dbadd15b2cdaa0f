"""Per-episode budgets: wall time, LLM calls, tokens and, where prices are configured, cost.

The meter is charged after every LLM call and checked between steps; a spent budget ends
the episode cleanly with the reason (``BudgetExceeded``), never in the middle of a
deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from schedcpd.agent.record import Usage


class BudgetExceeded(RuntimeError):
    """The episode spent one of its budgets; the message says which."""


@dataclass(frozen=True)
class Budget:
    wall_s: float = 900.0
    llm_calls: int = 20
    tokens: int = 50_000
    cost: float = 0.0  # 0: no cost limit
    price_in_per_mtok: float = 0.0  # prices per million tokens, for the cost
    price_out_per_mtok: float = 0.0


class Meter:
    def __init__(self, budget: Budget, usage: Usage, clock: float | None = None) -> None:
        self.budget = budget
        self.usage = usage
        self._t0 = time.monotonic() if clock is None else clock

    def tick(self) -> None:
        self.usage.wall_s = time.monotonic() - self._t0

    def charge(self, prompt_tokens: int, completion_tokens: int) -> None:
        """One LLM call and what it used."""
        b, u = self.budget, self.usage
        u.llm_calls += 1
        u.prompt_tokens += max(0, prompt_tokens)
        u.completion_tokens += max(0, completion_tokens)
        u.cost += (max(0, prompt_tokens) * b.price_in_per_mtok
                   + max(0, completion_tokens) * b.price_out_per_mtok) / 1e6

    def left_tokens(self) -> int:
        return max(0, self.budget.tokens - self.usage.tokens)

    def check(self, before_llm_call: bool = False) -> None:
        """Raise BudgetExceeded if a budget is spent (or, before a call, would be)."""
        self.tick()
        b, u = self.budget, self.usage
        if u.wall_s > b.wall_s:
            raise BudgetExceeded(f"wall-time budget spent ({u.wall_s:.0f} s of {b.wall_s:g} s)")
        calls = u.llm_calls + (1 if before_llm_call else 0)
        if calls > b.llm_calls:
            raise BudgetExceeded(f"LLM call budget spent ({u.llm_calls} of {b.llm_calls})")
        if u.tokens >= b.tokens:
            raise BudgetExceeded(f"token budget spent ({u.tokens} of {b.tokens})")
        if b.cost > 0 and u.cost >= b.cost:
            raise BudgetExceeded(f"cost budget spent ({u.cost:.4f} of {b.cost:g})")
