"""The repository tools' own logic (list_policies, get_policy), in this process on a real
store synced from the real policy library, with the real embedding model.

What goes over D-Bus and MCP is tested against the daemon in test_interfaces.py and
test_dbus_surface.py; here: ranking, filters, the history summary, and that reading
without a query never loads the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from schedcpd import paths
from schedcpd.bpf.policy import load_library
from schedcpd.errors import RequestError
from schedcpd.repository import Measurement, Profile, Repository
from schedcpd.repository.embeddings import Embedder
from schedcpd.store import Store
from schedcpd.tools import ACTIVE, get_policy, list_policies

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIBRARY = paths.REPO_ROOT / "policies"
NAMES = sorted(p.name for p in load_library(LIBRARY))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path_factory.mktemp("tools") / "schedcp.db") as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def repo(store: Store) -> Repository:
    """Synced (the sync embeds the library: the model loads here, once)."""
    return await Repository.open(store, Embedder(), LIBRARY)


async def test_reading_without_a_query_never_loads_the_model(repo: Repository,
                                                              store: Store) -> None:
    cold = Embedder()  # a second repository on the same synced store, its model not loaded
    fresh = await Repository.open(store, cold, LIBRARY)
    listed = await list_policies(fresh, "", ACTIVE, None)
    assert [p["name"] for p in listed] == NAMES
    fifo = await get_policy(fresh, "fifo")
    assert not cold.loaded
    slice_us = next(t for t in fifo["tunables"] if t["name"] == "slice_us")
    assert slice_us == {"name": "slice_us", "type": "u64", "default": 20000, "min": 500,
                        "max": 100000, "description": "time slice in microseconds"}
    assert fifo["status"] == "promoted" and fifo["provenance"] == "library"
    assert "a baseline to compare other policies against" in fifo["use_when"]
    assert any("interactive" in line for line in fifo["avoid_when"])
    assert "source" not in fifo
    assert "struct sched_ext_ops" in (await get_policy(fresh, "fifo", True))["source"]
    assert (await list_policies(fresh, "  ", ACTIVE, 3)) == listed[:3]


async def test_a_query_ranks_best_first_and_explains_the_match(repo: Repository) -> None:
    hits = await list_policies(repo, "39 short jobs and one long job", ACTIVE, len(NAMES))
    assert sorted(h["name"] for h in hits) == NAMES
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert {"matched", "semantic", "keyword_rank", "tunables", "status"} <= set(hits[0])
    assert (await list_policies(repo, "show me edf", ACTIVE, 3))[0]["name"] == "edf"
    assert len(await list_policies(repo, "batch", ACTIVE, 2)) == 2


async def test_unknown_names_and_bad_queries_are_named_errors(repo: Repository) -> None:
    with pytest.raises(RequestError) as err:
        await get_policy(repo, "no_such_policy")
    assert err.value.kind == "NotFound" and "no_such_policy" in err.value.message
    with pytest.raises(RequestError) as err:
        await get_policy(repo, "Not A Name")
    assert err.value.kind == "NotFound"
    with pytest.raises(RequestError) as err:
        await list_policies(repo, "x" * 1001, ACTIVE, 5)
    assert err.value.kind == "InvalidArgument"


async def test_history_and_status_show_in_the_details_and_the_filter(
        repo: Repository) -> None:
    prof = Profile("39 short busy loops and one long one on 2 CPUs", "fp-tools",
                   {"tasks": 40.0})
    better = await repo.record_run("fifo", {"slice_us": 5000}, prof,
                                   Measurement("makespan_s", True, 10.0, 8.0, 0.75, 0.85, 8))
    await repo.record_run("fifo", {}, prof, None, failure="ejected: runnable task stall")
    fifo = await get_policy(repo, "fifo")
    h = fifo["history"]
    assert h["runs"] == 2 and h["outcomes"] == {"improved": 1, "failed": 1}
    assert h["best_run"] == better.id and h["best_gain"] == pytest.approx(0.2)
    assert h["recent"][0]["outcome"] == "failed"  # newest first
    assert h["recent"][1]["params"] == {"slice_us": 5000} and h["metrics"] == ["makespan_s"]

    await repo.retire("powersave", reason="tools test")
    assert "powersave" not in [p["name"] for p in await list_policies(repo, "", ACTIVE, None)]
    retired = await list_policies(repo, "", ["retired"], None)
    assert [p["name"] for p in retired] == ["powersave"]
    got = await get_policy(repo, "powersave")
    assert got["status"] == "retired" and got["status_changes"][-1]["reason"] == "tools test"
