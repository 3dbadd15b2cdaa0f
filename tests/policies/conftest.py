"""Shared helpers for the policy-library tests."""

from __future__ import annotations

from schedcpd.bpf.policy import PolicySpec, Tunable

# The names other components (tests, the agent, the repository seed) refer to.
REQUIRED = ("fifo", "vtime", "ljf", "sjf", "interactive", "edf", "locality",
            "cgroup_weight", "powersave", "batch")


def bound(t: Tunable, high: bool) -> int | bool | str:
    """A tunable at one end of its range: bools both ways, strings empty or full length."""
    if t.type == "bool":
        return high
    if t.type == "str":
        return ("schedcp-work," * 8)[: t.max_len] if high else ""
    assert t.min is not None and t.max is not None
    return t.max if high else t.min


def param_sets(spec: PolicySpec) -> dict[str, dict[str, int | bool | str]]:
    """Defaults, every tunable at its minimum, every tunable at its maximum."""
    sets: dict[str, dict[str, int | bool | str]] = {"defaults": {}}
    if spec.tunables:
        sets["min"] = {t.name: bound(t, False) for t in spec.tunables}
        sets["max"] = {t.name: bound(t, True) for t in spec.tunables}
    return sets
