#!/bin/sh
# pipe.sh's round trips, then a periodic sleeper's wake-up latency beside two CPU hogs
# (cyclictest, SCHED_OTHER: real-time threads would bypass sched_ext). Two metrics, no
# declared goal: the request says which one is optimized and which one guards.
set -e
perf bench sched pipe -l "${1:-2000}" | awk '/usecs\/op/ { print "SCHEDCP_METRIC pipe_us", $1 }'
mkdir -p /dev/shm && { mountpoint -q /dev/shm || mount -t tmpfs shm /dev/shm; }
stress-ng --cpu 2 --timeout 20s >/dev/null 2>&1 &
hogs=$!
sleep 0.5
cyclictest -q -m -t 1 -i 2000 -D 2 -h 100000 --policy=other >ct.out
kill "$hogs" 2>/dev/null || true
wait
# p99 of the histogram (rows "us count"), overflows counted past its end
awk '/^# Histogram Overflows:/ { over = $4 + 0 } /^[0-9]/ { n[$1 + 0] = $2; total += $2 }
     END { total += over; seen = 0
           for (us = 0; us < 100000; us++) if (us in n) { seen += n[us]
             if (seen >= 0.99 * total) { print "SCHEDCP_METRIC wake_p99_us", us; exit } }
           print "SCHEDCP_METRIC wake_p99_us", 100000 }' ct.out
