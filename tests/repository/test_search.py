"""Search relevance against the real policy library with the real model, and search's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from schedcpd.bpf.policy import load_library
from schedcpd.repository import Repository, RepositoryError, SearchFilters
from schedcpd.repository.embeddings import Embedder
from schedcpd.repository.search import query_words
from schedcpd.store import Store

from .conftest import LIBRARY

# query -> policies acceptable as the first hit
RELEVANCE = [
    ("compile many small processes, finish the build sooner", {"batch", "locality"}),
    ("game stutters while a compile runs", {"interactive"}),
    ("39 short jobs and one long job", {"ljf"}),
    ("one slow test holds up the whole test suite", {"ljf"}),
    ("audio crackles when the machine is busy", {"interactive"}),
    ("several containers share a host and one starves the others", {"cgroup_weight"}),
    ("save battery on a lightly loaded laptop", {"powersave"}),
    ("minimise the mean completion time of jobs with very different lengths", {"sjf"}),
    ("a periodic control loop must meet its deadline every 10 ms", {"edf"}),
    ("keep caches warm for a thread pool of many short tasks", {"locality"}),
    ("CPU time should follow nice levels, shared fairly", {"vtime", "cgroup_weight"}),
    ("make -j on a big C++ codebase", {"batch", "locality"}),
    ("mouse cursor lags while ffmpeg encodes video", {"interactive"}),
    ("the UI is sluggish during a kernel build", {"interactive"}),
    ("finish the nightly data pipeline sooner; one stage dominates", {"ljf"}),
    ("my laptop fan is loud and the battery drains while idle", {"powersave"}),
    ("noisy neighbour container steals CPU from the database", {"cgroup_weight"}),
    ("a web server with quick and slow requests, cut mean response time", {"sjf"}),
    ("rendering farm, only throughput matters", {"batch"}),
    ("fifo", {"fifo"}),  # asked for by name
    ("show me edf", {"edf"}),
]
LIBRARY_NAMES = {p.name for p in load_library(LIBRARY)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def library_repo(tmp_path_factory: pytest.TempPathFactory,
                       embedder: Embedder) -> AsyncIterator[Repository]:
    async with await Store.open(tmp_path_factory.mktemp("lib") / "schedcp.db") as store:
        yield await Repository.open(store, embedder, LIBRARY)


@pytest.mark.parametrize(("query", "expected"), RELEVANCE, ids=[q for q, _ in RELEVANCE])
@pytest.mark.asyncio(loop_scope="module")
async def test_real_library_ranks_the_right_policy_first(
        library_repo: Repository, query: str, expected: set[str]) -> None:
    if not expected & LIBRARY_NAMES:
        pytest.fail(f"{'/'.join(sorted(expected))} not in policies/")
    hits = await library_repo.search(query, k=3)
    assert hits[0].name in expected, [(h.name, h.score) for h in hits]


@pytest.mark.asyncio(loop_scope="module")
async def test_hits_explain_themselves(library_repo: Repository) -> None:
    hits = await library_repo.search("39 short jobs and one long job", k=len(LIBRARY_NAMES))
    assert len(hits) == len(LIBRARY_NAMES)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = await library_repo.get(hits[0].name)
    assert hits[0].matched in (*top.workloads, f"{top.description} {top.algorithm}")
    assert all(h.status == "promoted" and h.provenance == "library" for h in hits)


async def test_filters_by_status_tag_and_kernel_features(repo: Repository) -> None:
    q = "fair sharing by weight"
    assert (await repo.search(q, k=1))[0].name == "vtime"
    await repo.retire("vtime", reason="regressed everywhere")
    assert "vtime" not in [h.name for h in await repo.search(q, k=5)]
    retired = await repo.search(q, SearchFilters(statuses=frozenset({"retired"})), k=5)
    assert [h.name for h in retired] == ["vtime"]
    by_tag = await repo.search(q, SearchFilters(tags=frozenset({"baseline"})), k=5)
    assert [h.name for h in by_tag] == ["fifo"]
    assert await repo.search(q, SearchFilters(kernel_features=frozenset()), k=5) == []
    with pytest.raises(RepositoryError, match="unknown status"):
        SearchFilters(statuses=frozenset({"gold"}))


async def test_sees_policies_added_through_another_store(
        repo: Repository, store: Store, embedder: Embedder, library_copy: Path) -> None:
    assert (await repo.search("video encoding farm", k=1))[0].name != "fifo_video"
    async with await Store.open(store.path) as other:
        repo2 = await Repository.open(other, embedder, library_copy)
        await repo2.add_generated("// src", "fifo", name="fifo_video",
                                  workloads=["video encoding farm with ffmpeg workers"])
    hits = await repo.search("video encoding farm", SearchFilters(
        statuses=frozenset({"candidate"})), k=1)
    assert hits[0].name == "fifo_video" and hits[0].status == "candidate"


@pytest.mark.parametrize("query", ['"unbalanced', "NEAR(a b) AND *", "col:x ^y", "--", "é ü"])
async def test_user_text_is_never_fts_syntax(repo: Repository, query: str) -> None:
    assert len(await repo.search(query, k=2)) == 2


@pytest.mark.parametrize(("query", "k"), [("", 5), ("   ", 5), ("x" * 1001, 5), ("ok", 0),
                                          ("ok", True)])
async def test_bad_queries_are_refused(repo: Repository, query: str, k: int) -> None:
    with pytest.raises(RepositoryError):
        await repo.search(query, k=k)


def test_query_words_drop_stopwords_and_repeats() -> None:
    assert query_words('the "build" is slow, slow') == ["build", "slow"]
    assert query_words("a the of") == []
