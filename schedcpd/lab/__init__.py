"""The lab: a sched_ext micro-VM where schedulers are built, attached, exercised and detached.

The host kernel has no sched_ext, so everything that loads a scheduler runs here: a
trixie-backports cloud kernel under qemu TCG, a busybox initramfs, the host's root shared
read-only over virtiofs so host tools (python, stress-ng, perf, make) run in the guest.

Usage::

    from schedcpd.lab import run_in_guest
    from schedcpd.bpf.scheduler import prepare_policy

    load = prepare_policy("fifo", {"slice_us": 5000}, out_dir)   # validate + compile
    res = await run_in_guest("stress-ng --cpu 4 --timeout 2s", timeout_s=30, scheduler=load)
    res.state_during == "enabled"; res.ops_during == "schedcp_fifo"; res.sched_exit.kind_name

Set-up (kernel, image, loader) is `make setup`, or `python -m schedcpd.lab.setup`.
"""

from schedcpd.lab.job import SchedulerLoad, Step
from schedcpd.lab.result import GuestResult, SchedExit
from schedcpd.lab.vm import LabError, VMConfig, run_in_guest, run_steps

__all__ = [
    "GuestResult", "LabError", "SchedExit", "SchedulerLoad", "Step", "VMConfig",
    "run_in_guest", "run_steps",
]
