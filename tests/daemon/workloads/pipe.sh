#!/bin/sh
# Two processes hand a token back and forth over a pipe (perf bench sched pipe): every
# hand-over wakes the other side. The workload declares its own goal: microseconds per
# round trip, lower is better. $1: round trips.
perf bench sched pipe -l "${1:-2000}" | awk '/usecs\/op/ { print "SCHEDCP_METRIC pipe_us", $1 }'
echo "SCHEDCP_GOAL pipe_us lower"
