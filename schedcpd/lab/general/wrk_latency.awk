# wrk --latency output -> p50/p99 in ms and requests/s as SCHEDCP_METRIC lines; exits 1
# when wrk saw errors (non-2xx answers, socket errors) or printed no distribution.
function ms(v) {
  if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
  if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
  if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
  return -1
}
/Latency Distribution/ { dist = 1; next }
dist && $1 == "50%" { p50 = ms($2) }
dist && $1 == "99%" { p99 = ms($2) }
/^Requests\/sec:/ { rps = $2 }
/Non-2xx or 3xx responses|Socket errors/ { bad = 1 }
END {
  if (bad || p99 <= 0 || rps <= 0) { print "wrk: errors or no latency distribution" > "/dev/stderr"; exit 1 }
  printf "SCHEDCP_METRIC p50_ms %.3f\nSCHEDCP_METRIC p99_ms %.3f\nSCHEDCP_METRIC requests_per_s %.1f\n", p50, p99, rps
}
