"""Container starts on a real podman engine: the Docker API stream and the cgroup tree."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from schedcpd.events.cgroups import CgroupSource, cgroup2_roots, classify
from schedcpd.events.docker_events import DockerEventSource
from schedcpd.events.episodes import EpisodeEvent
from schedcpd.events.source import EventSource, EventSourceError
from tests.events.conftest import podman_env


async def run_container(image: str, name: str, seconds: float) -> None:
    proc = await asyncio.create_subprocess_exec(
        "podman", "run", "--rm", "--name", name, image, "sleep", str(seconds),
        env=podman_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def collect(src: EventSource, quiet_s: float) -> list[EpisodeEvent]:
    out = []
    while (ev := await src.next(timeout=quiet_s)) is not None:
        out.append(ev)
    return out


async def test_podman_start_is_one_episode_naming_the_container(
        podman_socket: str, busybox_image: str) -> None:
    name = f"schedcp-ep-{uuid.uuid4().hex[:8]}"
    async with DockerEventSource(podman_socket) as src:
        await run_container(busybox_image, name, 1.5)
        events = await collect(src, 1.0)
    starts = [e for e in events if e.action == "start"]
    assert [(e.episode.kind, e.episode.name) for e in starts] == [("container", name)], events
    assert len(starts[0].episode.detail["id"]) == 64
    ends = [e for e in events if e.action == "end"]
    assert [e.episode.name for e in ends] == [name]
    assert src.seen > 1, "the engine sent several events for one start; one episode came out"


async def test_cgroup_watch_sees_the_container_once(busybox_image: str) -> None:
    roots = cgroup2_roots()
    if not roots:
        pytest.skip("no cgroup2 hierarchy")
    name = f"schedcp-cg-{uuid.uuid4().hex[:8]}"
    async with CgroupSource(roots, settle_s=0.3) as src:
        await run_container(busybox_image, name, 1.0)
        events = await collect(src, 0.8)
    containers = [e for e in events if e.episode.kind == "container"]
    assert [e.action for e in containers] == ["start", "end"], events
    assert containers[0].episode.name.startswith("container ")
    assert containers[0].episode.cgroup.startswith("/")


async def test_nested_cgroups_made_together_are_one_episode() -> None:
    roots = cgroup2_roots()
    if not roots:
        pytest.skip("no cgroup2 hierarchy")
    top = roots[0] / f"schedcp-test-{uuid.uuid4().hex[:8]}"
    async with CgroupSource(roots, settle_s=0.2) as src:
        try:
            top.mkdir()
            for child in ("a", "b", "a/deeper"):
                (top / child).mkdir()
            started = await src.next(timeout=3)
        finally:
            for child in ("a/deeper", "a", "b", ""):
                (top / child).rmdir() if (top / child).exists() else None
        ended = await src.next(timeout=3)
        extra = await collect(src, 0.5)
    assert started is not None and started.action == "start"
    assert started.episode.name == top.name and started.episode.kind == "cgroup"
    assert ended is not None and ended.action == "end" and ended.episode.key == top.name
    assert extra == []


def test_container_cgroup_names() -> None:
    cid = "0123456789ab" + "c" * 52
    assert classify(f"libpod_parent/libpod-{cid}") == ("container", "container 0123456789ab")
    assert classify(f"system.slice/docker-{cid}.scope")[0] == "container"
    assert classify("user.slice/user-0.slice") == ("cgroup", "user-0.slice")


async def test_bad_roots_and_dead_engines_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EventSourceError, match="not a cgroup hierarchy"):
        async with CgroupSource([tmp_path / "nope"]):
            pass
    with pytest.raises(EventSourceError, match="no Docker API"):
        async with DockerEventSource(f"unix://{tmp_path}/none.sock"):
            pass
    assert not os.path.exists(tmp_path / "nope")
