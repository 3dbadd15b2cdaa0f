"""The daemon's event sources: each enabled source runs in its own task and every workload
episode that starts is handed to the daemon.

A source that cannot open here (no proc connector without CAP_NET_ADMIN, no Docker-
compatible socket, no udev) is logged and left out: the others still run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from schedcpd.config import EventsConfig
from schedcpd.events.cgroups import CgroupSource
from schedcpd.events.docker_events import DockerEventSource
from schedcpd.events.drift import DriftSource
from schedcpd.events.episodes import EpisodeEvent
from schedcpd.events.proc_connector import ProcConnectorSource
from schedcpd.events.source import EventSource
from schedcpd.events.udev import UdevSource

log = logging.getLogger("schedcpd.events")

# Docker-compatible API sockets, podman's first (the one tested here).
ENGINE_SOCKETS = ("/run/podman/podman.sock", "/var/run/docker.sock")


def enabled_sources(cfg: EventsConfig) -> list[EventSource]:
    out: list[EventSource] = []
    if cfg.containers:
        out.append(CgroupSource(settle_s=cfg.debounce_s))
        sock = next((s for s in ENGINE_SOCKETS if Path(s).exists()), None)
        if sock is not None:
            out.append(DockerEventSource(f"unix://{sock}", settle_s=cfg.debounce_s))
    if cfg.processes:
        out.append(ProcConnectorSource(settle_s=cfg.debounce_s))
    if cfg.udev:
        out.append(UdevSource(settle_s=cfg.debounce_s))
    if cfg.drift:
        out.append(DriftSource())
    return out


async def run_source(src: EventSource, on_start: Callable[[EpisodeEvent], None]) -> None:
    name = type(src).__name__
    try:
        async with src:
            log.info("event source %s watching", name)
            async for ev in src:
                if ev.action == "start":
                    on_start(ev)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one source failing must not stop the daemon or the others
        log.warning("event source %s is off: %s", name, exc)


def start_sources(cfg: EventsConfig, on_start: Callable[[EpisodeEvent], None],
                  spawn: Callable[..., asyncio.Task[None]]) -> int:
    sources = enabled_sources(cfg)
    for src in sources:
        spawn(run_source(src, on_start))
    return len(sources)
