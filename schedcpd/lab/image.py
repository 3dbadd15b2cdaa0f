"""The guest's base initramfs: static busybox and an /init that mounts what sched_ext needs.

The guest borrows every real tool (python, stress-ng, perf, make, the scheduler loader)
from the host: the host's root is shared read-only over virtiofs at /host and jobs run
chrooted there. That keeps the image tiny (one binary and one script) and the tools the
same versions as on the host.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from schedcpd import paths
from schedcpd.lab.cpio import Entry, archive

BUSYBOX = Path("/bin/busybox")

# Runs as PID 1. The job (per-run archive) supplies /job/run.sh; its output goes to the
# second serial port so kernel console messages never mix with results.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Loopback up: workloads serve and load-test on 127.0.0.1 (general_tools' servers).
ip link set lo up 2>/dev/null
if mount -t virtiofs -o ro hostroot /host; then
  # /usr from a share of its own that the guest caches in full (see vm.SHARES)
  mount -t virtiofs -o ro hostusr /host/usr
  for d in proc sys dev; do mount -o rbind /$d /host/$d; done
  # The host's own /tmp stays readable at /run/hosttmp inside the chroot: a lab session
  # hands the guest scheduler objects there instead of pushing them through a serial port.
  mkdir -p /hosttmp && mount -o bind /host/tmp /hosttmp
  mount -t tmpfs tmp /host/tmp
  mount -t tmpfs run /host/run
  mkdir -p /host/run/hosttmp && mount -o bind /hosttmp /host/run/hosttmp
  mount -t tmpfs shm /host/dev/shm 2>/dev/null
fi
if [ -f /job/session.sh ]; then
  sh /job/session.sh >/dev/ttyS1 2>&1
elif [ -f /job/run.sh ]; then
  sh /job/run.sh >/dev/ttyS1 2>&1
else
  echo "@@KV error no-job" >/dev/ttyS1
fi
# The tty layer returns before the UART has sent everything: wait until the port's transmit
# counter stops moving, or power-off would cut the end of the results.
prev=
while :; do
  cur=$(grep -E '^[12]:' /proc/tty/driver/serial 2>/dev/null)
  [ "$cur" = "$prev" ] && break
  prev=$cur
  sleep 0.1
done
sync
echo o > /proc/sysrq-trigger
sleep 5
"""

DIRS = ("bin", "dev", "proc", "sys", "tmp", "host", "job", "run", "etc", "root")


def base_image_path() -> Path:
    return paths.lab_dir() / "initramfs.cpio"


def _fingerprint() -> str:
    h = hashlib.sha256(INIT.encode())
    h.update(BUSYBOX.read_bytes())
    return h.hexdigest()


def ensure_base_image(log: bool = False) -> tuple[Path, bool]:
    """Build the base image if it is missing or stale. Returns (path, did_work)."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} missing: install busybox-static (make setup)")
    out = base_image_path()
    stamp = out.with_suffix(".sha256")
    fp = _fingerprint()
    if out.is_file() and stamp.is_file() and stamp.read_text() == fp:
        return out, False
    entries = [Entry(d, mode=0o040755) for d in DIRS]
    entries += [
        Entry("bin/busybox", BUSYBOX.read_bytes(), mode=0o100755),
        Entry("init", INIT.encode(), mode=0o100755),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(archive(entries))
    tmp.replace(out)
    stamp.write_text(fp)
    if log:
        print(f"lab image: built {out}")
    return out, True
