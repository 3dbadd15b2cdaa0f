"""Every policy in the lab: defaults, all tunables at their minimum, all at their maximum.

One boot runs them all as steps (a boot costs more than a step under TCG): each step
attaches the policy, runs the mixed workload (CPU hogs, sleepers waking 100 times a
second, a fork storm) to completion and detaches. Nothing may stall or be ejected.

The same boot measures two ljf behaviours that mixed cannot show: wake preemption, which
keeps a long job that sleeps often (as one that reads files does) on a CPU, and per-CPU
kthreads served before the long job on its own CPU; and locality's queues kept even.
"""

from __future__ import annotations

import asyncio

import pytest

from schedcpd.bpf.policy import find_policy, load_library
from schedcpd.bpf.scheduler import prepare
from schedcpd.lab import GuestResult, Step, run_steps, workloads
from tests.policies.conftest import param_sets

pytestmark = pytest.mark.lab

CASES = [(spec.name, label) for spec in load_library() for label in param_sets(spec)]

# A long job (comm iolong) that works 0.5 ms and sleeps 1 ms, for 4 s, beside three CPU
# hogs on the two vCPUs: no CPU is ever idle when it wakes. It prints how many bursts it
# did. Hogs stay short (long_after_ms=0): only the named job is long.
IOLONG_PY = """
import time
end = time.monotonic() + 4
n = 0
while time.monotonic() < end:
    stop = time.thread_time() + 0.0005
    while time.thread_time() < stop:
        pass
    n += 1
    time.sleep(0.001)
print(f"@iolong bursts={n}")
"""
IOLONG_SH = f"""ln -sf "$(command -v python3)" /tmp/iolong
pids=""
for i in 1 2 3; do (while :; do :; done) & pids="$pids $!"; done
/tmp/iolong -c '{IOLONG_PY}'
rc=$?
kill $pids
exit $rc"""
WAKE = {"on": True, "off": False}
# A long job (comm cpulong, about 10 s of CPU) on the CPU that takes the interrupts of the
# host's file system, beside 40 short programs in a row that each read a file from the
# host. Every read completes in a kworker on that CPU: queued behind the long job, the
# kworker ran only when the long job had finished, and so did the short programs.
KWORKER_SH = r"""now() { cut -d' ' -f1 /proc/uptime; }
cpu=$(awk '/virtio/ && /request/ {a += $2; b += $3} END {print (b > a) ? 1 : 0}' /proc/interrupts)
ln -sf "$(command -v dash)" /tmp/cpulong
t0=$(now)
taskset -c "$cpu" /tmp/cpulong -c 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done' &
L=$!
for i in $(seq 40); do cat /etc/hostname >/dev/null; done
t1=$(now)
wait $L
t2=$(now)
echo "@kworker cpu=$cpu $(awk "BEGIN {print \"shorts_s=\" $t1 - $t0, \"long_s=\" $t2 - $t0}")"
"""
# Six CPU hogs started two on CPU 0 and four on CPU 1, then allowed both. Hogs never wake
# and stealing needs an empty queue, so only enqueue can move them. Prints the least and
# the most CPU ticks a hog got in the next 4 s (1:2 when each stays where it started).
# Python, not a shell loop: every program started beside six hogs waits behind them at
# each of its page faults' wakeups, for seconds.
UNEVEN_PY = """
import os, time
pids = []
for cpu in (0, 0, 1, 1, 1, 1):
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {cpu})
        while True:
            pass
    pids.append(pid)
time.sleep(1)
for pid in pids:
    os.sched_setaffinity(pid, {0, 1})
time.sleep(1)
def ticks():
    stats = [open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split() for pid in pids]
    return [int(st[11]) + int(st[12]) for st in stats]  # utime + stime
before = ticks()
time.sleep(4)
got = [b - a for a, b in zip(before, ticks())]
for pid in pids:
    os.kill(pid, 9)
print(f"@uneven least={min(got)} most={max(got)}")
"""
UNEVEN_SH = f"python3 -c '{UNEVEN_PY}'"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], GuestResult]:
    out = tmp_path_factory.mktemp("objs")
    mixed = workloads.get("mixed")
    steps: dict[tuple[str, str], Step] = {}
    for spec in load_library():
        for label, params in param_sets(spec).items():
            load = prepare(spec, params, out / f"{spec.name}-{label}")
            steps[(spec.name, label)] = mixed.step(load)
    for label, on in WAKE.items():
        params = {"long_comms": "iolong", "long_after_ms": 0, "wake_preempt": on}
        load = prepare(find_policy("ljf"), params, out / f"ljf-wake-{label}")
        steps[("ljf-wake", label)] = Step(IOLONG_SH, 60.0, load)
    params = {"long_comms": "cpulong", "long_after_ms": 0}
    steps[("ljf-kworker", "")] = Step(KWORKER_SH, 120.0, prepare(
        find_policy("ljf"), params, out / "ljf-kworker"))
    steps[("locality-uneven", "")] = Step(UNEVEN_SH, 60.0, prepare(
        find_policy("locality"), {}, out / "locality-uneven"))
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


def test_ljf_wake_preemption_keeps_a_sleepy_long_job_running(
        results: dict[tuple[str, str], GuestResult]) -> None:
    """Without it, the long job waits out a hog's 20 ms slice at every wakeup."""
    bursts = {}
    for label in WAKE:
        r = results[("ljf-wake", label)]
        assert r.attached and r.ok and not r.ejected, (label, r.summary(), r.stderr[-1000:])
        bursts[label] = workloads.details(r.stdout)["bursts"]
    assert bursts["on"] > 2 * bursts["off"], bursts


def test_ljf_runs_the_kworkers_on_the_long_jobs_cpu(
        results: dict[tuple[str, str], GuestResult]) -> None:
    """I/O that completes on the long job's CPU is not held until the long job ends."""
    r = results[("ljf-kworker", "")]
    assert r.attached and r.ok and not r.ejected, (r.summary(), r.stderr[-1000:])
    d = workloads.details(r.stdout)
    assert d["shorts_s"] < 0.5 * d["long_s"], r.stdout


def test_locality_evens_the_queues_of_busy_cpus(
        results: dict[tuple[str, str], GuestResult]) -> None:
    """Stealing alone never moves a hog between two busy CPUs: 1:2 for ever."""
    r = results[("locality-uneven", "")]
    assert r.attached and r.ok and not r.ejected, (r.summary(), r.stderr[-1000:])
    d = workloads.details(r.stdout)
    assert d["least"] > 0.75 * d["most"], r.stdout
