"""Container starts and stops from a Docker-compatible API's event stream (docker SDK).

Works against Docker and against podman's Docker-compatible service. The SDK's stream is
blocking, so one thread reads it and hands each event to the loop; the loop keeps only
container ``start`` (an episode named after the container) and ``die`` (its end). An
engine says "create", "init", "attach", "start" for one container start: only "start"
counts, so one start is one episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from schedcpd.events.source import EventSource, EventSourceError

API_VERSION = "1.41"
START, ENDS = "start", frozenset({"die", "stop", "kill", "remove"})


def _action(ev: Mapping[str, Any]) -> str:
    return str(ev.get("Action") or ev.get("status") or "")


class DockerEventSource(EventSource):
    """Container episodes from ``base_url`` (e.g. ``unix:///run/podman/podman.sock``)."""

    def __init__(self, base_url: str, settle_s: float = 0.2) -> None:
        super().__init__(settle_s)
        self.base_url = base_url
        self.seen = 0
        self._client: Any = None
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._names: dict[str, str] = {}

    async def _open(self) -> None:
        import docker

        try:
            self._client = await asyncio.to_thread(
                docker.DockerClient, base_url=self.base_url, version=API_VERSION, timeout=10)
            await asyncio.to_thread(self._client.ping)
            # ``since`` = now: events from before the source opened are not replayed.
            self._stream = await asyncio.to_thread(
                self._client.events, decode=True, since=int(time.time()),
                filters={"type": "container"})
        except (docker.errors.DockerException, OSError) as exc:  # requests errors are OSErrors
            raise EventSourceError(f"no Docker API at {self.base_url}: {exc}") from exc
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._pump, args=(loop,), daemon=True,
                                        name="docker-events")
        self._thread.start()

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for ev in self._stream:
                if loop.is_closed():
                    return
                loop.call_soon_threadsafe(self.handle, ev)

    async def _close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    def handle(self, ev: Mapping[str, Any]) -> None:
        self.seen += 1
        actor = ev.get("Actor") or {}
        cid = str(actor.get("ID") or ev.get("id") or "")
        attrs = actor.get("Attributes") or {}
        action = _action(ev)
        if not cid:
            return
        now = time.monotonic()
        if action == START:
            name = str(attrs.get("name") or cid[:12])
            self.debouncer.touch(cid, "container", name, now,
                                 detail={"id": cid, "image": str(attrs.get("image", ""))})
        elif action in ENDS:
            self.debouncer.close(cid, now)
