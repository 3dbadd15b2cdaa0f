# g-pipe: perf bench sched pipe: two processes ping-pong LOOPS messages over a pair of
# pipes; each round trip is two wakeups and two context switches.
# usage: pipe.sh LOOPS
. "$(dirname "$0")/common.sh"
loops=$1
goal usec_per_op lower
measured
limit perf bench sched pipe -l "$loops" >pipe.out || fail "perf bench sched pipe failed"
cat pipe.out
awk '$2 == "usecs/op" { u = $1 } $2 == "ops/sec" { o = $1 }
  END { if (u <= 0) exit 1
        printf "SCHEDCP_METRIC usec_per_op %.3f\nSCHEDCP_METRIC ops_per_s %.1f\n", u, o }' \
  pipe.out || fail "no usecs/op in perf's output"
