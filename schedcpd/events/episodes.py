"""Workload episodes: what the event sources report instead of raw events.

A container start is a handful of cgroup directories and Docker events; a `make -j2` is
hundreds of fork/exec/exit events. The daemon wants one thing for each: an *episode*,
a workload that appeared (and later went away). Sources feed raw activity into a
``Debouncer``, which emits an episode's start only once its key has stayed active for a
settle time (so a burst of short-lived noise never reaches the agent) and its end once
the key closes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

MAX_PIDS = 64  # an episode names its first processes, not all of a fork storm
Namer = Callable[[str], tuple[str, dict[str, str]]]
Kind = Literal["process", "container", "cgroup", "power", "cpu", "drift"]
Action = Literal["start", "end"]


@dataclass(frozen=True)
class Episode:
    """One workload the daemon may want to optimize for."""

    kind: Kind
    name: str
    key: str  # identity within its source: root pid, container id, cgroup path, ...
    started_at: float  # wall-clock seconds (time.time())
    pids: tuple[int, ...] = ()
    cgroup: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "key": self.key,
                "started_at": self.started_at, "pids": list(self.pids),
                "cgroup": self.cgroup, "detail": dict(self.detail)}


@dataclass(frozen=True)
class EpisodeEvent:
    action: Action
    episode: Episode
    at: float

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "at": self.at, "episode": self.episode.to_dict()}


@dataclass
class _Pending:
    kind: Kind
    name: str
    first: float
    last: float
    cgroup: str = ""
    pids: set[int] = field(default_factory=set)
    detail: dict[str, str] = field(default_factory=dict)
    closed_at: float | None = None
    started: Episode | None = None


class Debouncer:
    """Turns ``touch``/``close`` activity per key into start/end episode events.

    A key starts an episode once it has been open for ``settle_s``; a key closed before that
    is dropped silently (it was noise). ``max_keys`` bounds memory under a flood: beyond it,
    new keys are refused (``touch`` returns False) and counted in ``refused``.
    """

    def __init__(self, settle_s: float = 0.5, max_keys: int = 65536,
                 namer: Namer | None = None) -> None:
        if settle_s < 0:
            raise ValueError("settle_s must be >= 0")
        self.settle_s = settle_s
        self.namer = namer  # names a key lazily, at start, when it is sure to be reported
        self.max_keys = max_keys
        self.refused = 0
        self._keys: dict[str, _Pending] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def touch(self, key: str, kind: Kind, name: str, now: float, *, pids: tuple[int, ...] = (),
              cgroup: str = "", detail: Mapping[str, str] | None = None) -> bool:
        p = self._keys.get(key)
        if p is None:
            if len(self._keys) >= self.max_keys:
                self.refused += 1
                return False
            p = self._keys[key] = _Pending(kind=kind, name=name, first=now, last=now,
                                           cgroup=cgroup)
        p.last = now
        p.closed_at = None
        if name and not p.name:
            p.name = name
        if len(p.pids) < MAX_PIDS:
            p.pids.update(pids[:MAX_PIDS - len(p.pids)])
        if detail:
            p.detail.update(detail)
        return True

    def rename(self, key: str, name: str) -> None:
        p = self._keys.get(key)
        if p is not None and p.started is None:
            p.name = name

    def close(self, key: str, now: float) -> None:
        p = self._keys.get(key)
        if p is not None:
            p.closed_at = now

    def discard(self, key: str) -> None:
        self._keys.pop(key, None)

    def due(self, now: float, *, wall_offset: float = 0.0) -> list[EpisodeEvent]:
        """Events that are ready at ``now`` (monotonic); wall time = now + wall_offset."""
        out: list[EpisodeEvent] = []
        for key in list(self._keys):
            p = self._keys[key]
            lived = (p.closed_at if p.closed_at is not None else now) - p.first
            if p.started is None and lived >= self.settle_s:
                if not p.name and self.namer is not None:
                    p.name, more = self.namer(key)
                    p.detail.update(more)
                p.started = Episode(kind=p.kind, name=p.name or key, key=key,
                                    started_at=p.first + wall_offset,
                                    pids=tuple(sorted(p.pids)), cgroup=p.cgroup,
                                    detail=dict(p.detail))
                out.append(EpisodeEvent("start", p.started, now + wall_offset))
            if p.closed_at is not None:
                if p.started is not None:
                    out.append(EpisodeEvent("end", p.started, p.closed_at + wall_offset))
                del self._keys[key]
        return out
