"""Process launches and exits from the kernel's netlink proc connector.

The connector reports every fork, exec and exit on the machine, one datagram each: a
parallel build is hundreds, a fork storm tens of thousands per second. The source keeps
the work per event to a struct unpack and two dict operations and never queues raw
events: processes are folded into the tree of the first process whose parent was not
already tracked (``make`` and everything it runs are one episode), and an untracked parent
that spawns many children quickly becomes one "burst" episode instead of one per child.
Loss is measured, not guessed: the connector numbers its messages per CPU, so a gap in
the sequence is a lost event, and ENOBUFS from the socket counts an overrun.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from schedcpd.events.episodes import Debouncer
from schedcpd.events.source import EventSource, EventSourceError

PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000
SO_RCVBUFFORCE = 33
RCVBUF_BYTES = 32 << 20  # ~400k events of slack while the loop is busy elsewhere
_HDR = struct.Struct("=IHHII")  # nlmsghdr
_CN = struct.Struct("=IIIIHH")  # cn_msg: idx val seq ack len flags
_EV = struct.Struct("=IIQIIII")  # what cpu timestamp + the first four payload words
_CN_OFF = _HDR.size
_EV_OFF = _HDR.size + _CN.size

# Called per raw event by whoever wants the firehose (the benchmark counts with it).
RawHook = Callable[[int, int, int, int, int], None]  # what, a, b, c, d


@dataclass
class ProcStats:
    events: int = 0
    forks: int = 0
    execs: int = 0
    exits: int = 0
    threads_ignored: int = 0
    lost: int = 0  # gaps in the per-CPU sequence numbers
    overruns: int = 0  # ENOBUFS: the socket buffer overflowed
    last_seq: dict[int, int] = field(default_factory=dict)


def read_proc_name(pid: int) -> tuple[str, dict[str, str]]:
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as fb:
            cmd = fb.read(512).replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"pid {pid}", {}
    return comm, {"cmdline": cmd[:200]}


class ProcessTracker:
    """Folds fork/exec/exit into process-tree episodes (pure: no I/O but the namer)."""

    def __init__(self, debouncer: Debouncer, burst_limit: int = 8, burst_window_s: float = 1.0,
                 linger_s: float = 2.0) -> None:
        self.debouncer = debouncer
        self.burst_limit = burst_limit
        self.burst_window_s = burst_window_s
        self.linger_s = linger_s
        self._owner: dict[int, str] = {}
        self._live: dict[str, int] = {}  # key -> live processes
        self._spawns: dict[int, tuple[float, int]] = {}  # untracked parent -> (window, n)
        self._idle_since: dict[str, float] = {}  # burst keys with no live child

    def tracked(self) -> int:
        return len(self._owner)

    def fork(self, parent_tgid: int, child: int, now: float) -> None:
        key = self._owner.get(parent_tgid)
        if key is None:
            key = self._key_for_new_root(parent_tgid, child, now)
        if not self.debouncer.touch(key, "process", "", now, pids=(child,)):
            return
        self._owner[child] = key
        self._live[key] = self._live.get(key, 0) + 1
        self._idle_since.pop(key, None)

    def _key_for_new_root(self, parent: int, child: int, now: float) -> str:
        start, n = self._spawns.get(parent, (now, 0))
        if now - start > self.burst_window_s:
            start, n = now, 0
        self._spawns[parent] = (start, n + 1)
        if n + 1 > self.burst_limit:
            return f"burst:{parent}"
        return f"pid:{child}"

    def exit(self, tgid: int, now: float) -> None:
        self._spawns.pop(tgid, None)
        burst = f"burst:{tgid}"
        if burst in self.debouncer:  # the storm's parent is gone: so is the storm
            self.debouncer.close(burst, now)
            self._idle_since.pop(burst, None)
        key = self._owner.pop(tgid, None)
        if key is None:
            return
        left = self._live.get(key, 1) - 1
        if left > 0:
            self._live[key] = left
            return
        self._live.pop(key, None)
        if key.startswith("burst:"):
            self._idle_since[key] = now  # the parent may spawn again at once
        else:
            self.debouncer.close(key, now)

    def expire(self, now: float) -> None:
        for key, since in list(self._idle_since.items()):
            if now - since >= self.linger_s:
                self.debouncer.close(key, now)
                del self._idle_since[key]
        if len(self._spawns) > 4096:  # parents that never exit while we watch
            for parent, (start, _) in list(self._spawns.items()):
                if now - start > self.burst_window_s:
                    del self._spawns[parent]


def name_key(key: str) -> tuple[str, dict[str, str]]:
    kind, _, pid = key.partition(":")
    name, detail = read_proc_name(int(pid))
    if kind == "burst":
        return f"{name} (fork burst)", {**detail, "parent": pid}
    return name, detail


def _subscribe() -> socket.socket:
    """A netlink socket subscribed to process events (pyroute2 encodes the request).

    pyroute2's own socket classes run a private event loop per call, which cannot run
    inside the daemon's loop; a plain socket with pyroute2's message encoding can.
    """
    from pyroute2.netlink import NETLINK_CONNECTOR, NLMSG_DONE
    from pyroute2.netlink.connector.cn_proc import (
        CN_IDX_PROC,
        CN_VAL_PROC,
        PROC_CN_MCAST_LISTEN,
        proc_event_control,
    )

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.bind((0, CN_IDX_PROC))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        msg = proc_event_control()
        msg["header"]["type"] = NLMSG_DONE
        msg["header"]["pid"] = sock.getsockname()[0]
        msg["idx"], msg["val"], msg["len"] = CN_IDX_PROC, CN_VAL_PROC, 4
        msg["action"] = PROC_CN_MCAST_LISTEN
        msg.encode()
        sock.send(bytes(msg.data))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ProcConnectorSource(EventSource):
    """Process-tree episodes from the proc connector. Needs root (CAP_NET_ADMIN)."""

    def __init__(self, settle_s: float = 0.5, burst_limit: int = 8,
                 raw_hook: RawHook | None = None) -> None:
        super().__init__(settle_s)
        self.debouncer.namer = name_key
        self.tracker = ProcessTracker(self.debouncer, burst_limit=burst_limit)
        self.stats = ProcStats()
        self.raw_hook = raw_hook
        self._sock: socket.socket | None = None

    async def _open(self) -> None:
        try:
            sock = _subscribe()
        except OSError as exc:
            raise EventSourceError(f"proc connector unavailable (root needed): {exc}") from exc
        # Datagrams are read with a fixed-layout unpack, far cheaper than a generic
        # netlink parser under a fork storm.
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self.drain)

    async def _close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _before_tick(self, now: float) -> None:
        self.tracker.expire(now)

    def drain(self) -> None:
        """Read every datagram waiting on the socket."""
        sock = self._sock
        if sock is None:
            return
        recv = sock.recv
        while True:
            try:
                data = recv(256)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.stats.overruns += 1
                    continue
                raise
            self.handle(data)

    def handle(self, data: bytes) -> None:
        if len(data) < _EV_OFF + _EV.size:
            return
        seq = _CN.unpack_from(data, _CN_OFF)[2]
        what, cpu, ts_ns, a, b, c, d = _EV.unpack_from(data, _EV_OFF)
        # The kernel's own time of the event (ktime_get_ns: CLOCK_MONOTONIC, the clock of
        # time.monotonic()), not the time we read it: on a loaded host a process's fork and
        # exit may be read in one batch, and must not look like a process that never lived.
        now = ts_ns / 1e9
        st = self.stats
        st.events += 1
        last = st.last_seq.get(cpu)
        if last is not None and seq > last + 1:
            st.lost += seq - last - 1
        if last is None or seq > last:
            st.last_seq[cpu] = seq
        if self.raw_hook is not None:
            self.raw_hook(what, a, b, c, d)
        if what == PROC_EVENT_FORK:  # parent_pid parent_tgid child_pid child_tgid
            if c != d:
                st.threads_ignored += 1
                return
            st.forks += 1
            self.tracker.fork(b, d, now)
        elif what == PROC_EVENT_EXEC:
            st.execs += 1
        elif what == PROC_EVENT_EXIT:  # process_pid process_tgid ...
            if a != b:
                st.threads_ignored += 1
                return
            st.exits += 1
            self.tracker.exit(b, now)
