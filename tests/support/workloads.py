"""Shell workloads the daemon's tests and benchmarks start in the lab guest."""

from __future__ import annotations

# The short jobs are forked subshells, not exec'd programs: an exec under TCG reads its
# binary through virtiofs and would hold the fork rate under the 20/s tier 1 calls churn.
_STREAMS = ("short() { while :; do (i=0; while [ $i -lt 20 ]; do i=$((i+1)); done); done; }; "
            "short & A=$!; short & B=$!; short & C=$!; ")


def long_tail_until_observed(limit_s: int) -> str:
    """One long CPU-bound job (awk) while three streams of short processes come and go,
    until the daemon's tier-1 sampler has come and gone (at most ``limit_s``). Observed,
    it leaves the host to the verifier's own guest: two busy guests on two cores stretch
    the dynamic stage's gaps past its bounds.

    The pattern is a regex whose own text does not match it, so pgrep does not find this
    very shell, whose command line holds the pattern."""
    return (_STREAMS + "awk 'BEGIN { while (1) {} }' & L=$!; "
            f"end=$(( $(date +%s) + {limit_s} )); seen=0; "
            "while [ $(date +%s) -lt $end ]; do "
            "if pgrep -f 'analysis[.]tier1' >/dev/null; then seen=1; "
            "elif [ $seen = 1 ]; then break; fi; sleep 0.2; done; kill $A $B $C $L")
