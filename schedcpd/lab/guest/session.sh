#!/bin/sh
# The lab session's command loop, run by the guest's /init (see session.py for the protocol).
# GUEST_PATH and MAX_OUT come from the host, prepended as variable assignments.
export PATH="$GUEST_PATH" HOME=/root TMPDIR=/tmp
J=/host/tmp/job
mkdir -p $J/work $J/out && cp -a /job/. $J/
C=/dev/ttyS2
stty -F $C raw -echo
exec 3<>$C
st() { cat /sys/kernel/sched_ext/state 2>/dev/null || echo unsupported; }
op() { cat /sys/kernel/sched_ext/root/ops 2>/dev/null; }
now() { read up _ </proc/uptime; echo $up; }
v() { printf '%s=' "$1"; printf '%s' "$2" | base64 -w0; printf ' '; }
f() { printf '%s=' "$1"; head -c $MAX_OUT "$2" 2>/dev/null | base64 -w0; printf ' '; }
LPID=
loader_alive() { [ -n "$LPID" ] && kill -0 $LPID 2>/dev/null && echo 1 || echo 0; }
sched() { v state "$(st)"; v ops "$(op)"; v alive "$(loader_alive)"; f out /tmp/loader.out; f err /tmp/loader.err; }
echo "@@READY $(uname -r)" >&3
while IFS= read -r line <&3; do
  set -- $line
  id=$1; verb=$2
  case "$verb" in
  run)
    echo "$4" | base64 -d >$J/c$id.sh
    t0=$(now)
    timeout -s KILL $3 chroot /host /bin/sh -c "cd /tmp/job/work && . /tmp/job/c$id.sh" \
      </dev/null >/tmp/o$id 2>/tmp/e$id
    rc=$?
    echo "@@R $id ok $(v rc $rc)$(v t0 $t0)$(v t1 $(now))$(f out /tmp/o$id)$(f err /tmp/e$id)" >&3
    rm -f /tmp/o$id /tmp/e$id $J/c$id.sh ;;
  spawn)
    echo "$3" | base64 -d >$J/c$id.sh
    (
      t0=$(now)
      chroot /host /bin/sh -c "cd /tmp/job/work && . /tmp/job/c$id.sh" </dev/null >/tmp/o$id 2>/tmp/e$id
      echo "$? $t0 $(now)" >/tmp/r$id.tmp && mv /tmp/r$id.tmp /tmp/r$id
    ) &
    echo $! >/tmp/p$id
    echo "@@R $id ok $(v job $id)" >&3 ;;
  poll)
    if [ -f /tmp/r$3 ]; then
      read rc t0 t1 </tmp/r$3
      echo "@@R $id ok $(v done 1)$(v rc $rc)$(v t0 $t0)$(v t1 $t1)$(f out /tmp/o$3)$(f err /tmp/e$3)" >&3
    else
      echo "@@R $id ok $(v done 0)" >&3
    fi ;;
  kill)
    [ -f /tmp/p$3 ] && kill -KILL -- -$(cat /tmp/p$3) 2>/dev/null; kill -KILL $(cat /tmp/p$3 2>/dev/null) 2>/dev/null
    pkill -KILL -f "/tmp/job/c$3.sh" 2>/dev/null
    echo "@@R $id ok" >&3 ;;
  attach)
    if [ "$(loader_alive)" = 1 ]; then
      echo "@@R $id err $(v msg 'a scheduler is already attached')" >&3; continue
    fi
    cp "/host/run/hosttmp/$3" $J/sched.bpf.o || {
      echo "@@R $id err $(v msg "cannot read the object $3")" >&3; continue; }
    echo "$4" | base64 -d >$J/load.sh
    : >/tmp/loader.out; : >/tmp/loader.err
    chroot /host /bin/sh /tmp/job/load.sh >/tmp/loader.out 2>/tmp/loader.err &
    LPID=$!
    i=0
    while [ $i -lt 1000 ]; do
      grep -q '^ATTACHED' /tmp/loader.out && break
      kill -0 $LPID 2>/dev/null || break
      sleep 0.02; i=$((i+1))
    done
    i=0
    while [ $i -lt 50 ] && [ "$(st)" != enabled ] && kill -0 $LPID 2>/dev/null; do
      sleep 0.02; i=$((i+1))
    done
    echo "@@R $id ok $(sched)" >&3 ;;
  detach)
    if [ -n "$LPID" ]; then kill -TERM $LPID 2>/dev/null; wait $LPID; fi
    LPID=
    i=0
    while [ $i -lt 100 ] && [ "$(st)" = enabled ]; do sleep 0.02; i=$((i+1)); done
    echo "@@R $id ok $(sched)" >&3 ;;
  state)
    echo "@@R $id ok $(sched)" >&3 ;;
  metrics)
    echo "@@R $id ok $(v state "$(st)")$(v ops "$(op)")$(v alive "$(loader_alive)")$(v uptime "$(now)")$(f stat /proc/stat)$(f loadavg /proc/loadavg)$(f psi /proc/pressure/cpu)" >&3 ;;
  dmesg)
    echo "@@R $id ok $(v dmesg "$(dmesg | grep sched_ext)")" >&3 ;;
  quit)
    if [ -n "$LPID" ]; then kill -TERM $LPID 2>/dev/null; wait $LPID; fi
    echo "@@R $id ok" >&3
    break ;;
  *)
    echo "@@R $id err $(v msg "unknown verb $verb")" >&3 ;;
  esac
done
