"""New and removed cgroups (inotify on the cgroup hierarchies): container starts and stops.

Every container engine makes a cgroup per container, so a new cgroup directory is the
engine-independent sign of a new container. A start creates several directories (the
container's, its children, the same path in each v1 hierarchy); they become one episode:
a directory whose ancestor (relative to its hierarchy's root) is already an open key joins
that key, and a directory named like a container (``libpod-<id>``, ``docker-<id>.scope``,
``crio-<id>``...) is always a key of its own, named after the container id.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from schedcpd.events.episodes import Kind
from schedcpd.events.source import EventSource, EventSourceError

CONTAINER_RE = re.compile(r"(?:libpod|docker|crio|cri-containerd|containerd)-([0-9a-f]{12,64})"
                          r"(?:\.scope)?$")
MAX_DEPTH = 8
MAX_WATCHES = 8192


def cgroup2_roots() -> list[Path]:
    """Mount points of cgroup2 (the unified hierarchy), from /proc/self/mounts."""
    roots = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                roots.append(Path(parts[1]))
    return roots


def classify(rel: str) -> tuple[Kind, str]:
    """Kind and name of a cgroup path relative to its hierarchy root."""
    leaf = rel.rsplit("/", 1)[-1]
    m = CONTAINER_RE.search(leaf)
    if m:
        return "container", f"container {m.group(1)[:12]}"
    return "cgroup", leaf


class CgroupSource(EventSource):
    """Episodes for cgroups created (start) and removed (end) under ``roots``."""

    def __init__(self, roots: list[Path] | None = None, settle_s: float = 0.3) -> None:
        super().__init__(settle_s)
        self.roots = [Path(r) for r in (roots if roots is not None else cgroup2_roots())]
        self.watch_limit_hit = False
        self._inotify: object | None = None
        self._task: object | None = None
        self._root_of: dict[str, Path] = {}

    async def _open(self) -> None:
        import asyncio

        from asyncinotify import Inotify

        if not self.roots:
            raise EventSourceError("no cgroup hierarchy to watch (is cgroup2 mounted?)")
        for r in self.roots:
            if not r.is_dir():
                raise EventSourceError(f"not a cgroup hierarchy: {r}")
        ino = Inotify()
        self._inotify = ino
        for r in self.roots:
            self._watch_tree(r, r, depth=0, announce=False)
        self._task = asyncio.create_task(self._read())

    async def _close(self) -> None:
        import asyncio

        task = self._task
        if isinstance(task, asyncio.Task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ino = self._inotify
        if ino is not None:
            ino.close()  # type: ignore[attr-defined]
        self._inotify = None

    def _watch_tree(self, root: Path, d: Path, depth: int, announce: bool) -> None:
        """Watch ``d`` and its subdirectories; ``announce`` reports them as new."""
        from asyncinotify import Mask

        ino = self._inotify
        if ino is None or depth > MAX_DEPTH:
            return
        if len(ino.watches) >= MAX_WATCHES:  # type: ignore[attr-defined]
            self.watch_limit_hit = True
            return
        try:
            ino.add_watch(d, Mask.CREATE | Mask.DELETE | Mask.ONLYDIR)  # type: ignore[attr-defined]
        except OSError:
            return  # removed before we got to it
        self._root_of[str(d)] = root
        if announce:
            self._created(root, d)
        with contextlib.suppress(OSError):
            for entry in os.scandir(d):
                if entry.is_dir(follow_symlinks=False):
                    self._watch_tree(root, Path(entry.path), depth + 1, announce)

    def _key_for(self, rel: str) -> str:
        kind, _ = classify(rel)
        if kind != "container":
            parts = rel.split("/")
            for i in range(1, len(parts)):
                anc = "/".join(parts[:i])
                if anc in self.debouncer:
                    return anc
        return rel

    def _created(self, root: Path, d: Path) -> None:
        rel = str(d.relative_to(root))
        key = self._key_for(rel)
        kind, name = classify(key)
        self.debouncer.touch(key, kind, name, time.monotonic(), cgroup="/" + key,
                             detail={"hierarchy": str(root)})

    def _removed(self, root: Path, d: Path) -> None:
        rel = str(d.relative_to(root))
        if rel in self.debouncer:
            self.debouncer.close(rel, time.monotonic())
        self._root_of.pop(str(d), None)

    async def _read(self) -> None:
        from asyncinotify import Mask

        ino = self._inotify
        assert ino is not None
        async for ev in ino:  # type: ignore[attr-defined]
            if ev.mask & Mask.Q_OVERFLOW or ev.path is None:
                continue
            root = self._root_of.get(str(ev.path.parent))
            if root is None:
                continue
            if ev.mask & Mask.CREATE and ev.mask & Mask.ISDIR:
                depth = len(ev.path.relative_to(root).parts)
                self._watch_tree(root, ev.path, depth, announce=True)
            elif ev.mask & Mask.DELETE and ev.mask & Mask.ISDIR:
                self._removed(root, ev.path)
