"""schedcp: a safe control plane for sched_ext schedulers."""
