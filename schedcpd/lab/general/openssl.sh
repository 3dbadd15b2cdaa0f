# g-openssl: openssl speed -multi PROCS (more processes than CPUs) of SHA-256 and
# AES-128-CBC on 16 KiB blocks, SECONDS each; the metric is their summed throughput.
# usage: openssl.sh PROCS SECONDS
. "$(dirname "$0")/common.sh"
procs=$1; secs=$2
goal mb_per_s higher
measured
limit openssl speed -multi "$procs" -seconds "$secs" -bytes 16384 -mr sha256 aes-128-cbc \
  >speed.out 2>&1 || { cat speed.out >&2; fail "openssl speed failed"; }
# The parent's totals: "+F:<n>:<algorithm>:<bytes per second>", without "Got:" before it.
awk -F: '/^\+F:/ { n++; b += $4; a = $3; gsub(/-/, "", a)
    printf "SCHEDCP_METRIC %s_mb_per_s %.1f\n", a, $4 / 1e6 }
  END { if (n != 2) exit 1; printf "SCHEDCP_METRIC mb_per_s %.1f\n", b / 1e6 }' speed.out \
  || fail "no totals in openssl's output"
