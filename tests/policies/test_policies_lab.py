"""Every policy in the lab: defaults, all tunables at their minimum, all at their maximum.

One boot runs them all as steps (a boot costs more than a step under TCG): each step
attaches the policy, runs the mixed workload (CPU hogs, sleepers waking 100 times a
second, a fork storm) to completion and detaches. Nothing may stall or be ejected.
"""

from __future__ import annotations

import asyncio

import pytest

from schedcpd.bpf.policy import load_library
from schedcpd.bpf.scheduler import prepare
from schedcpd.lab import GuestResult, Step, run_steps, workloads
from tests.policies.conftest import param_sets

pytestmark = pytest.mark.lab

CASES = [(spec.name, label) for spec in load_library() for label in param_sets(spec)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], GuestResult]:
    out = tmp_path_factory.mktemp("objs")
    mixed = workloads.get("mixed")
    steps: dict[tuple[str, str], Step] = {}
    for spec in load_library():
        for label, params in param_sets(spec).items():
            load = prepare(spec, params, out / f"{spec.name}-{label}")
            steps[(spec.name, label)] = mixed.step(load)
    got = asyncio.run(run_steps(list(steps.values())))
    return dict(zip(steps, got, strict=True))


@pytest.mark.parametrize(("policy", "params"), CASES)
def test_policy_runs_mixed_workload_and_detaches_cleanly(
        results: dict[tuple[str, str], GuestResult], policy: str, params: str) -> None:
    r = results[(policy, params)]
    assert r.attached, r.loader_error[-3000:]
    assert r.state_during == "enabled"
    assert r.ops_during == f"schedcp_{policy}"
    assert r.ok, (r.exit_status, r.stderr[-1000:])
    summary = workloads.details(r.stdout)
    assert summary["hogs"] == 2 and summary["sleepers"] == 4, r.stdout
    assert summary["wakeups"] > 0 and summary["forks"] > 0, r.stdout
    assert r.sched_exit is not None and r.sched_exit.kind_name == "UNREG", r.sched_exit
    assert not r.ejected
    assert not any("stall" in ln for ln in r.dmesg_sched_ext), r.dmesg_sched_ext
    assert r.state_after == "disabled"
