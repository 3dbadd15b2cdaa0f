"""The daemon's one repository, opened on first use.

Opening loads the embedding model and syncs the library: seconds the daemon's start-up
should not wait for, and memory its idle path should not hold. The planner and the
learner share it, so the library is synced and the search engine built once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from schedcpd.repository.repo import Repository
from schedcpd.store import Store


class LazyRepository:
    def __init__(self, open_: Callable[[], Awaitable[Repository]]) -> None:
        self._open = open_
        self._repo: Repository | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def on_store(cls, store: Store) -> LazyRepository:
        return cls(lambda: Repository.open(store))

    @classmethod
    def ready(cls, repo: Repository) -> LazyRepository:
        async def opened() -> Repository:
            return repo
        return cls(opened)

    async def get(self) -> Repository:
        async with self._lock:
            if self._repo is None:
                self._repo = await self._open()
            return self._repo
