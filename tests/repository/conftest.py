"""Real SQLite files under tmp_path and the real embedding model (loaded once per session)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schedcpd import paths
from schedcpd.repository import Profile, Repository
from schedcpd.repository.embeddings import Embedder
from schedcpd.store import Store

LIBRARY = paths.REPO_ROOT / "policies"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    e = Embedder()
    e.load()
    return e


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    """fifo and vtime from the real library, in a directory the test may change."""
    root = tmp_path / "policies"
    root.mkdir()
    for name in ("fifo", "vtime"):
        shutil.copytree(LIBRARY / name, root / name)
    return root


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "schedcp.db") as s:
        yield s


@pytest.fixture
async def repo(store: Store, embedder: Embedder, library_copy: Path) -> Repository:
    return await Repository.open(store, embedder, library_copy)


def profile(desc: str = "39 short busy loops and one long one on 2 CPUs",
            fp: str = "fp-longtail", **chars: float) -> Profile:
    return Profile(desc, fp, chars or {"tasks": 40.0, "cpu_util": 0.95})


async def table_dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: compared before and after to prove nothing changed."""
    names = [r[0] for r in await store.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'policies_fts%'"
        " ORDER BY name")]
    return {n: await store.fetchall(f"SELECT * FROM {n} ORDER BY rowid") for n in names}
