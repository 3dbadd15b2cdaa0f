# g-redis: redis-server (no persistence) on 127.0.0.1, driven by redis-benchmark: REQUESTS
# SETs, then as many GETs, of 128-byte values over 100000 keys from CONNS clients.
# usage: redis.sh REQUESTS CONNS
. "$(dirname "$0")/common.sh"
n=$1; conns=$2; port=18379
goal p99_ms lower
guard requests_per_s higher 0.05
lo_up
spawn redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$PWD" --daemonize no --logfile "" --loglevel warning
wait_for 100 sh -c "redis-cli -p $port ping | grep -q PONG"
measured
limit redis-benchmark -h 127.0.0.1 -p "$port" -c "$conns" -n "$n" -d 128 -r 100000 -t set,get \
  --csv >bench.csv || fail "redis-benchmark failed"
cat bench.csv
# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
# "p99_latency_ms","max_latency_ms": p99 is the worse of the two commands', requests/s
# the harmonic mean (both run the same number of requests: total requests / total time).
awk -F, 'NR > 1 { gsub(/"/, ""); k++; inv += 1 / $2; if ($7 > p99) p99 = $7; p50 += $5 }
  END { if (k != 2 || p99 <= 0) exit 1
        printf "SCHEDCP_METRIC p50_ms %.3f\nSCHEDCP_METRIC p99_ms %.3f\n", p50 / k, p99
        printf "SCHEDCP_METRIC requests_per_s %.1f\n", k / inv }' bench.csv \
  || fail "no SET and GET results from redis-benchmark"
