"""What every event source shares: an asyncio lifetime and a queue of episode events.

A source is an async context manager; inside it, ``async for ev in source`` yields
``EpisodeEvent``s (or ``await source.next(timeout)``). The queue is bounded: when nobody
reads, the oldest events are dropped and counted, so a stalled consumer cannot make the
daemon grow without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from schedcpd.events.episodes import Debouncer, EpisodeEvent


class EventSourceError(RuntimeError):
    """A source cannot run here (missing privilege, kernel feature or service)."""


class EventSource:
    """Base: subclasses implement ``_open``/``_close`` and feed ``self.debouncer``."""

    def __init__(self, settle_s: float = 0.5, tick_s: float | None = None,
                 queue_size: int = 1024) -> None:
        self.debouncer = Debouncer(settle_s)
        self.tick_s = tick_s if tick_s is not None else max(0.05, settle_s / 4)
        self.dropped = 0
        self._queue: asyncio.Queue[EpisodeEvent] = asyncio.Queue(queue_size)
        self._ticker: asyncio.Task[None] | None = None
        self._wall_offset = time.time() - time.monotonic()

    async def __aenter__(self) -> Self:
        await self._open()
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self._close()

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def _before_tick(self, now: float) -> None:
        """Hook: sources that need periodic work (re-reads, expiry) do it here."""

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.flush()

    def flush(self) -> None:
        now = time.monotonic()
        self._before_tick(now)
        for ev in self.debouncer.due(now, wall_offset=self._wall_offset):
            self.emit(ev)

    def emit(self, ev: EpisodeEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(ev)

    async def next(self, timeout: float | None = None) -> EpisodeEvent | None:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def pending(self) -> list[EpisodeEvent]:
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def __aiter__(self) -> AsyncIterator[EpisodeEvent]:
        while True:
            yield await self._queue.get()
