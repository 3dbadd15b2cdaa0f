#!/usr/bin/env bash
# Install the host packages schedcp needs, idempotently.
# The Debian mirror is read from this machine's own apt sources (users may run a local
# mirror); bookworm-backports is added next to it because bpftool/libbpf from bookworm
# are too old for sched_ext struct_ops (see LAB-NOTES).
set -euo pipefail

PACKAGES=(
  qemu-system-x86 qemu-system-common busybox-static cpio zstd xz-utils
  clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config make gcc
  stress-ng linux-perf rt-tests bpftrace
  podman runc dbus-daemon dbus-bin python3-venv polkitd systemd
  # desktop clients: the tray's Qt (xcb) libraries and fonts; Xvfb, a tray host (trayer),
  # a notification server (dunst), xdotool and ImageMagick for its tests and screenshots;
  # gjs and glib-compile-schemas for the GNOME Shell extension (make gnome-extension)
  libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
  libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core
  xvfb xauth x11-utils x11-xserver-utils trayer dunst xdotool imagemagick
  desktop-file-utils gjs gir1.2-glib-2.0 libglib2.0-bin
  # the bench's long-tail batches (schedcpd/lab/longtail_tools.py): transcoder and git
  ffmpeg git
  # the bench's general suite (schedcpd/lab/general_tools.py): servers and their load
  # generators, databases, CPython's own test modules, benchmarks
  nginx-light lighttpd wrk curl redis-server redis-tools postgresql-15 sysbench
  libpython3.11-testsuite bzip2 iproute2 openssl
)
BACKPORTS=(bpftool libbpf-dev)

mirror() {
  # First URI serving a bookworm suite, from deb822 .sources or one-line .list files.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /bookworm( |$)/ && u !~ /security/) {print u; exit} }' "$f"
  done | head -n1
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" && $0 ~ / bookworm( |$)/ && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' "$f"
  done | head -n1
}

have_all() {
  local n
  n=$(dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null | grep -c "install ok installed" || true)
  [ "$n" -eq $# ]
}

want_bpftool() {
  # bpftool >= 7.5 and libbpf >= 1.4 are what sched_ext struct_ops need.
  local v
  v=$(dpkg-query -W -f='${Version}' bpftool 2>/dev/null || true)
  dpkg --compare-versions "${v:-0}" ge 7.5 || return 0
  v=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || true)
  dpkg --compare-versions "${v:-0}" ge 1:1.4 || return 0
  return 1
}

if have_all "${PACKAGES[@]}" && ! want_bpftool; then
  echo "setup-apt: host packages already installed, nothing to do"
  exit 0
fi

MIRROR=$(mirror)
[ -n "$MIRROR" ] || { echo "setup-apt: no bookworm mirror found in /etc/apt/sources*" >&2; exit 1; }
BP=/etc/apt/sources.list.d/schedcp-bookworm-backports.sources
if [ ! -f "$BP" ]; then
  cat >"$BP" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  echo "setup-apt: added bookworm-backports from $MIRROR"
fi
export DEBIAN_FRONTEND=noninteractive
# The servers among the packages (nginx, lighttpd, redis, postgresql) are for the lab
# guest's workloads, which start their own: none may start on the host. Without systemd
# running, invoke-rc.d asks policy-rc.d, and 101 means "do not start".
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS[@]}" >/dev/null
echo "setup-apt: done"
