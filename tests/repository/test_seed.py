"""Syncing the repository with policies/: add, update by content hash, retire, restore."""

from __future__ import annotations

import shutil
from pathlib import Path

from schedcpd.repository import Repository
from schedcpd.repository.embeddings import Embedder
from schedcpd.store import Store

from .conftest import profile


async def test_first_sync_adds_the_library_as_promoted(repo: Repository,
                                                       library_copy: Path) -> None:
    recs = await repo.policies()
    assert [r.name for r in recs] == ["fifo", "vtime"]
    fifo = await repo.get("fifo")
    assert fifo.status == "promoted" and fifo.provenance == "library"
    assert fifo.source == (library_copy / "fifo" / "fifo.bpf.c").read_text()
    assert [t.name for t in fifo.tunables] == ["slice_us"]
    changes = await repo.status_changes("fifo")
    assert [(c.to_status, c.actor) for c in changes] == [("promoted", "library-sync")]


async def test_unchanged_library_loads_no_model_and_writes_nothing(
        repo: Repository, store: Store, library_copy: Path) -> None:
    fresh = Embedder()  # a second, unloaded model: a sync that needs vectors would load it
    gen = await store.fetchval("SELECT value FROM generations WHERE name = 'policies'")
    again = await Repository.open(store, fresh, library_copy)
    assert not fresh.loaded
    rep = await again.sync_library()
    assert not rep.changed and sorted(rep.unchanged) == ["fifo", "vtime"]
    assert await store.fetchval("SELECT value FROM generations WHERE name = 'policies'") == gen


async def test_changed_files_update_in_place_keeping_history(
        repo: Repository, library_copy: Path) -> None:
    run = await repo.record_run("fifo", {}, profile(), None, failure="stalled")
    old = await repo.get("fifo")
    toml = library_copy / "fifo" / "policy.toml"
    toml.write_text(toml.read_text().replace(
        "a baseline to compare other policies against",
        "video transcoding farms with identical jobs"))
    rep = await repo.sync_library()
    assert rep.updated == ["fifo"] and rep.unchanged == ["vtime"]
    new = await repo.get("fifo")
    assert new.content_hash != old.content_hash and new.source_hash == old.source_hash
    assert new.status == "promoted" and new.created_at == old.created_at
    assert [r.id for r in await repo.runs("fifo")] == [run.id]
    hits = await repo.search("video transcoding farm", k=1)
    assert hits[0].name == "fifo" and "transcoding" in hits[0].matched
    src = library_copy / "fifo" / "fifo.bpf.c"
    src.write_text(src.read_text() + "\n// tweak\n")
    assert (await repo.sync_library()).updated == ["fifo"]
    assert (await repo.get("fifo")).source.endswith("// tweak\n")


async def test_removed_policy_is_retired_and_restored_when_back(
        repo: Repository, library_copy: Path, tmp_path: Path) -> None:
    shutil.move(library_copy / "vtime", tmp_path / "vtime.away")
    assert (await repo.sync_library()).retired == ["vtime"]
    assert (await repo.get("vtime")).status == "retired"
    shutil.move(tmp_path / "vtime.away", library_copy / "vtime")
    assert (await repo.sync_library()).restored == ["vtime"]
    assert (await repo.get("vtime")).status == "promoted"


async def test_a_retirement_decided_on_evidence_survives_sync(repo: Repository) -> None:
    await repo.retire("fifo", reason="regressed on every measured workload")
    rep = await repo.sync_library()
    assert not rep.changed and (await repo.get("fifo")).status == "retired"


async def test_one_broken_policy_does_not_block_the_others(
        store: Store, embedder: Embedder, library_copy: Path) -> None:
    bad = library_copy / "broken"
    bad.mkdir()
    (bad / "policy.toml").write_text('name = "broken"\n')
    repo = await Repository.open(store, embedder, library_copy)
    rep = await repo.sync_library()
    assert "broken" in rep.errors and "missing" in rep.errors["broken"]
    assert [r.name for r in await repo.policies()] == ["fifo", "vtime"]


async def test_generated_policy_named_like_a_new_library_policy_is_reported(
        repo: Repository, library_copy: Path) -> None:
    await repo.add_generated("// mine", "fifo", name="mine")
    shutil.copytree(library_copy / "fifo", library_copy / "mine")
    toml = library_copy / "mine" / "policy.toml"
    toml.write_text(toml.read_text().replace('name = "fifo"', 'name = "mine"'))
    (library_copy / "mine" / "fifo.bpf.c").rename(library_copy / "mine" / "mine.bpf.c")
    rep = await repo.sync_library()
    assert "already in the repository" in rep.errors["mine"]
    assert (await repo.get("mine")).provenance == "agent"
