"""The Workload Analysis Engine: what the running workload is and what it needs.

- ``tier1``: cheap summaries (<= 2 KB JSON) of the machine, a process tree or a cgroup
- ``tier2``: deeper probes on request, bounded in time and output (BPF run-queue latency,
  perf stat, top, allowlisted files, restricted bpftrace)
- ``feedback``: tier 3, a workload under a baseline and a candidate, compared with
  confidence intervals (through ``stats.compare``)
- ``profile``: ``WorkloadProfile``, what the agent and the repository keep of a workload
- ``schemas``: the JSON schemas of these outputs
"""
