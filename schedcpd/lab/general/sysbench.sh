# g-sysbench: sysbench threads: THREADS threads each locking one of 4 mutexes and calling
# sched_yield() 100 times per event, for SECONDS; the metric is events per second.
# usage: sysbench.sh THREADS SECONDS
. "$(dirname "$0")/common.sh"
threads=$1; secs=$2
goal events_per_s higher
guard p99_ms lower 0.10
measured
limit sysbench threads --threads="$threads" --thread-yields=100 --thread-locks=4 --time="$secs" \
  --percentile=99 run >sb.out || fail "sysbench failed"
cat sb.out
awk '/total time:/ { t = $3 + 0 } /total number of events:/ { e = $5 }
  /99th percentile:/ { p = $3 }
  END { if (t <= 0 || e <= 0) exit 1
        printf "SCHEDCP_METRIC events_per_s %.1f\nSCHEDCP_METRIC p99_ms %.3f\n", e / t, p }' \
  sb.out || fail "no totals in sysbench's output"
