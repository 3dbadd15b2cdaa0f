"""One guest run's archive: the job script, the command, the scheduler object and the loader.

The job runs in the guest's /tmp/job/s<N> (a tmpfs the host never sees) chrooted into the host's
read-only root, so it has the host's tools and cannot change the host. Results return over
the guest's second serial port as ``@@KV`` / ``@@FILE`` lines (see result.parse_channel).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schedcpd.lab.cpio import Entry, archive, directories

# Bounded output: a runaway command must not fill the host's disk through the serial file.
MAX_OUTPUT_BYTES = 1 << 20
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def guest_path(host_path: Path) -> str:
    """Where a host file is seen inside a job. The guest mounts its own /tmp over the
    host's, whose /tmp stays readable at /run/hosttmp (see image.py)."""
    s = str(host_path)
    return "/run/hosttmp" + s[len("/tmp"):] if s == "/tmp" or s.startswith("/tmp/") else s


@dataclass(frozen=True)
class SchedulerLoad:
    """A scheduler object and its tunables, already validated and formatted by the caller."""

    object_path: Path
    params: Mapping[str, int | bool | str] = field(default_factory=dict)
    attach_timeout_s: float = 20.0

    def loader_args(self) -> list[str]:
        args = []
        for k, v in self.params.items():
            if isinstance(v, bool):
                v = int(v)
            args.append(f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}")
        return args


# One boot runs several steps: each attaches its scheduler (if any), runs its command,
# detaches, and reports under its own index. Boot costs more than a step under TCG.
RUN_SH = r"""
export PATH={path} HOME=/root TMPDIR=/tmp
J=/host/tmp/job
mkdir -p $J && cp -a /job/. $J/
st() {{ cat /sys/kernel/sched_ext/state 2>/dev/null || echo unsupported; }}
op() {{ cat /sys/kernel/sched_ext/root/ops 2>/dev/null; }}
# Uptime, not date: reading it costs no exec (a chroot'd exec is ~50 ms under TCG).
now() {{ read up _ </proc/uptime; echo $up; }}
echo "@@KV - release $(uname -r)"
dmesg -c >/dev/null
step() {{
  n=$1; tmo=$2; ticks=$3; S=/job/s$n; T=/tmp/s$n
  mkdir -p $T $J/s$n/work $J/s$n/out
  kv() {{ echo "@@KV $n $1 $2"; }}
  kv state_before "$(st)"
  kv ops_before "$(op)"
  run_cmd=1; LPID=
  if [ -f $S/load.sh ]; then
    kv ta0 $(now)
    chroot /host /bin/sh /tmp/job/s$n/load.sh >$T/loader.out 2>$T/loader.err &
    LPID=$!
    i=0
    while [ $i -lt $ticks ]; do
      grep -q '^ATTACHED' $T/loader.out && break
      kill -0 $LPID 2>/dev/null || break
      sleep 0.02; i=$((i+1))
    done
    # Attach returns once the kernel accepts the ops; enabling may still be in flight.
    i=0
    while [ $i -lt 50 ] && [ "$(st)" != enabled ] && kill -0 $LPID 2>/dev/null; do
      sleep 0.02; i=$((i+1))
    done
    kv ta1 $(now)
    kv state_during "$(st)"
    kv ops_during "$(op)"
    grep -q '^ATTACHED' $T/loader.out || run_cmd=0
  fi
  if [ $run_cmd = 1 ]; then
    T0=$(now)
    timeout -s KILL $tmo chroot /host /bin/sh \
      -c "cd /tmp/job/s$n/work && . /tmp/job/s$n/cmd.sh" \
      </dev/null >$T/cmd.full 2>$T/cmd.errfull
    kv rc $?
    T1=$(now)
    kv t0 $T0
    kv t1 $T1
    head -c {max_out} $T/cmd.full >$T/cmd.out
    head -c {max_out} $T/cmd.errfull >$T/cmd.err
    rm -f $T/cmd.full $T/cmd.errfull
  fi
  kv state_after_cmd "$(st)"
  kv td0 $(now)
  if [ -n "$LPID" ]; then
    kill -TERM $LPID 2>/dev/null
    wait $LPID
    kv loader_rc $?
  fi
  i=0
  while [ $i -lt 100 ] && [ "$(st)" != disabled ] && [ "$(st)" != unsupported ]; do
    sleep 0.02; i=$((i+1))
  done
  kv td1 $(now)
  kv state_after "$(st)"
  kv ops_after "$(op)"
  dmesg -c >$T/dmesg.txt
  for f in loader.out loader.err cmd.out cmd.err dmesg.txt; do
    [ -f $T/$f ] && echo "@@FILE $n $f $(base64 $T/$f | tr -d '\n')"
  done
  for f in $J/s$n/out/*; do
    [ -f "$f" ] && echo "@@FILE $n out/$(basename $f) $(head -c {max_out} $f | base64 | tr -d '\n')"
  done
  echo "@@KV $n done 1"
}}
{steps}
echo "@@DONE"
"""


@dataclass(frozen=True)
class Step:
    """One command, optionally under one scheduler, within a boot."""

    command: str
    timeout_s: float = 60.0
    scheduler: SchedulerLoad | None = None


def job_archive(steps: list[Step], loader: Path | None,
                files: Mapping[str, bytes] | None = None) -> bytes:
    """The per-run cpio appended to the base image."""
    calls = []
    entries = [Entry("job", mode=0o040755)]
    for n, st in enumerate(steps):
        ticks = max(1, round((st.scheduler.attach_timeout_s if st.scheduler else 1) * 50))
        calls.append(f"step {n} {max(1, round(st.timeout_s))} {ticks}")
        entries += [Entry(f"job/s{n}", mode=0o040755),
                    Entry(f"job/s{n}/cmd.sh", st.command.encode() + b"\n")]
        if st.scheduler is None:
            continue
        if loader is None:
            raise ValueError("a scheduler needs the loader binary")
        args = " ".join(shlex.quote(a) for a in st.scheduler.loader_args())
        entries += [
            Entry(f"job/s{n}/sched.bpf.o", st.scheduler.object_path.read_bytes()),
            # exec: the loader must be the process the job signals to detach.
            Entry(f"job/s{n}/load.sh", (f"exec /tmp/job/schedcp-loader "
                                        f"/tmp/job/s{n}/sched.bpf.o {args}\n").encode()),
        ]
    if loader is not None:
        entries.append(Entry("job/schedcp-loader", loader.read_bytes(), mode=0o100755))
    script = RUN_SH.format(path=GUEST_PATH, max_out=MAX_OUTPUT_BYTES, steps="\n".join(calls))
    entries.append(Entry("job/run.sh", script.encode()))
    for name, data in (files or {}).items():
        rel = "job/files/" + name.lstrip("/")
        if ".." in Path(rel).parts:
            raise ValueError(f"file name escapes the job directory: {name}")
        entries += [e for e in directories(rel) if e.path not in {x.path for x in entries}]
        entries.append(Entry(rel, data, mode=0o100755))
    return archive(entries)
