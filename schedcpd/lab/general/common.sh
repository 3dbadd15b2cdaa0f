# Sourced by the g-* workload scripts (schedcpd/lab/general_tools.py): the output
# convention and the pieces every script shares. POSIX sh (the guest runs dash).
#
#   SCHEDCP_GOAL <metric> <lower|higher>                     once, before the work starts
#   SCHEDCP_GUARD <metric> <lower|higher> <max_regression>   optional, a fraction
#   SCHEDCP_METRIC <name> <value>                            each measured number
#   @@measured                                               the measured part begins
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
export LC_ALL=C PYTHONDONTWRITEBYTECODE=1

goal() { echo "SCHEDCP_GOAL $1 $2"; }
guard() { echo "SCHEDCP_GUARD $1 $2 $3"; }
metric() { echo "SCHEDCP_METRIC $1 $2"; }
measured() { echo "@@measured"; }
fail() { echo "$0: $*" >&2; exit 1; }

# Seconds since boot, 10 ms resolution; a builtin read costs no exec.
now() { read -r up _ </proc/uptime; echo "$up"; }
# (end - start) in seconds, and a / b, with awk's floating point.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) exit 1; printf "%.4f", a / b }'; }

# The measured command under a time limit of its own, below the lab step's (90 s): a
# runaway fails here, and the exit trap below still stops the servers. (A step killed by
# the lab's own limit would leave them running.) timeout signals the command's whole
# process group, helpers it started included.
LIMIT_S=${SCHEDCP_LIMIT_S:-60}
limit() { timeout -k 5 "$LIMIT_S" "$@"; }

# Servers here bind 127.0.0.1: loopback must be up (the lab image's init brings it up;
# elsewhere it may be down).
lo_up() {
  ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null || true
}

# Wait until COMMAND succeeds (up to TRIES x 0.1 s).
wait_for() {
  tries=$1; shift
  while [ "$tries" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1; tries=$((tries - 1))
  done
  fail "gave up waiting for: $*"
}

# Background processes (servers, background load) start in a session of their own and
# are killed with everything they started, then reaped, when the script exits for any
# reason: nothing outlives the command.
PIDS=""
# Their standard output goes to stderr: only the script's own lines are on stdout.
spawn() { setsid "$@" </dev/null >&2 & PIDS="$PIDS $!"; }
# Alive and not a zombie (a zombie still answers kill -0).
running() {
  { read -r st </proc/"$1"/stat; } 2>/dev/null || return 1
  case ${st##*) } in Z*) return 1 ;; esac
}
cleanup() {
  for p in $PIDS; do kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
  for p in $PIDS; do
    i=0
    while running "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "-$p" 2>/dev/null  # what is left of its session
  done
  wait 2>/dev/null
  PIDS=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
