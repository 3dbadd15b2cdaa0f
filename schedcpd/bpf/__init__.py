"""Building, configuring and loading sched_ext BPF schedulers."""
