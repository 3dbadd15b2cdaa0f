# g-hackbench: rt-tests' hackbench: GROUPS groups of 20 senders and 20 receivers (threads)
# passing LOOPS messages of 256 bytes each over pipes, all at once.
# usage: hackbench.sh GROUPS LOOPS
. "$(dirname "$0")/common.sh"
groups=$1; loops=$2
goal hackbench_s lower
measured
limit hackbench --pipe --threads -g "$groups" -l "$loops" -s 256 >hb.out || fail "hackbench failed"
cat hb.out
awk '$1 == "Time:" { t = $2 } END { if (t <= 0) exit 1; printf "SCHEDCP_METRIC hackbench_s %.3f\n", t }' \
  hb.out || fail "no Time: in hackbench's output"
