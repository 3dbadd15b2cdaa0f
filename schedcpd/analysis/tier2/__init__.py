"""Tier 2: deeper probes on request, each bounded in time and in output size.

- ``runqlat``: run-queue latency histogram and per-comm runtime/wait (libbpf CO-RE probe)
- ``perfstat``: ``perf stat`` counters
- ``top``: a top-like snapshot of processes
- ``files``: reading files under an allowlist (/proc, /sys, the workload's own directory)
- ``bpftrace``: one-liners restricted to allowed probe types, with a time limit
"""

MAX_SECONDS = 30.0
MAX_OUTPUT_BYTES = 16 * 1024


class ProbeError(RuntimeError):
    """A probe was refused (bad request) or could not run here."""
