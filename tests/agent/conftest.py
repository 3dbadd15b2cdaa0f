"""A real SQLite store and a repository seeded from the real policy library, with the real
embedding model (one per process, as the daemon has it)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schedcpd.repository import Repository
from schedcpd.repository.embeddings import Embedder, shared_embedder
from schedcpd.store import Store
from tests.agent.profiles import LIBRARY_ROOT


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    e = shared_embedder()
    e.load()
    return e


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The library synced into a store once; each test gets a copy (seeding embeds every
    policy text, seconds that every test would otherwise pay)."""
    path = tmp_path_factory.mktemp("seeded") / "schedcp.db"

    async def seed() -> None:
        async with await Store.open(path) as s:
            await Repository.open(s, embedder, LIBRARY_ROOT)

    asyncio.run(seed())
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "schedcp.db") as s:
        yield s


@pytest.fixture
async def repo(tmp_path: Path, seeded_db: Path, embedder: Embedder) -> AsyncIterator[Repository]:
    copy = tmp_path / "seeded.db"
    shutil.copyfile(seeded_db, copy)
    async with await Store.open(copy) as s:
        yield await Repository.open(s, embedder, LIBRARY_ROOT)
