"""JSON bundles: round trip, idempotent re-import, conflicts, and bad bundles change nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schedcpd.repository import BundleError, Measurement, Repository
from schedcpd.repository.embeddings import Embedder
from schedcpd.store import Store

from .conftest import profile, table_dump


async def make_bundle(repo: Repository, path: Path) -> dict[str, Any]:
    base = await repo.add_generated("// gen v1\n", "fifo", name="fifo_tuned",
                                    tags=["batch", "tuned"])
    child = await repo.add_generated("// gen v2\n", base.name, name="fifo_tuned2")
    m = Measurement("makespan_s", True, 10.0, 8.0, 0.75, 0.85, 8)
    await repo.record_run(base.name, {"slice_us": 4000}, profile(), m)
    await repo.record_run(child.name, {}, profile(), None, failure="watchdog stall")
    return await repo.export_bundle([child.name, base.name], path)


async def test_round_trip_into_another_repository(
        repo: Repository, tmp_path: Path, embedder: Embedder, library_copy: Path) -> None:
    path = tmp_path / "out" / "bundle.json"
    bundle = await make_bundle(repo, path)
    assert json.loads(path.read_text()) == bundle
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed away
    async with await Store.open(tmp_path / "other.db") as other_store:
        other = await Repository.open(other_store, embedder, library_copy)
        rep = await other.import_bundle(path)
        assert sorted(rep.added) == ["fifo_tuned", "fifo_tuned2"] and rep.runs == 2
        got, orig = await other.get("fifo_tuned2"), await repo.get("fifo_tuned2")
        assert got.parent == "fifo_tuned" and got.source == orig.source
        assert got.content_hash == orig.content_hash
        assert got.status == "candidate" and got.provenance == "user"
        runs = await other.runs("fifo_tuned")
        assert [(r.outcome, r.ratio, dict(r.params)) for r in runs] == [
            ("improved", 0.8, {"slice_us": 4000})]
        assert (await other.runs("fifo_tuned2"))[0].outcome == "failed"
        hits = await other.search("tuned fifo", k=10)
        assert {"fifo_tuned", "fifo_tuned2"} <= {h.name for h in hits}
        again = await other.import_bundle(path)  # idempotent
        assert again.added == [] and sorted(again.skipped) == ["fifo_tuned", "fifo_tuned2"]
        assert len(await other.runs("fifo_tuned")) == 1


async def test_conflicting_content_is_refused(repo: Repository, tmp_path: Path) -> None:
    bundle = await make_bundle(repo, tmp_path / "b.json")
    bundle["policies"][0]["source"] = "// changed\n"
    bundle["policies"][0]["source_hash"] = __import__("hashlib").sha256(
        b"// changed\n").hexdigest()
    before = await table_dump(repo.store)
    with pytest.raises(BundleError, match="already exists here with different content"):
        await repo.import_bundle(json.dumps(bundle))
    assert await table_dump(repo.store) == before


@pytest.mark.parametrize(("mutate", "msg"), [
    (lambda b: b.update(format="zip"), "not a schedcp policy bundle"),
    (lambda b: b.update(version=99), "version 99"),
    (lambda b: b["policies"][0].update(source_hash="0" * 64), "source_hash does not match"),
    (lambda b: b["policies"][1].update(parent="ghost"), "neither in the bundle"),
    (lambda b: b["policies"].append(copy.deepcopy(b["policies"][0])), "appears twice"),
    (lambda b: b["runs"][0].update(policy="vtime"), "not in the bundle"),
    (lambda b: b["runs"][0].update(params={"slice_us": 1}), "slice_us=1 is invalid"),
    (lambda b: b["policies"][0]["tunables"][0].update(min=10**30), "min and max"),
])
async def test_bad_bundles_name_the_problem(repo: Repository, tmp_path: Path,
                                            mutate: Any, msg: str) -> None:
    bundle = await make_bundle(repo, tmp_path / "b.json")
    async with repo.store.transaction() as tx:  # import into a repository without them
        await tx.execute("DELETE FROM runs")
        await tx.execute("DELETE FROM policies WHERE name = 'fifo_tuned2'")
        await tx.execute("DELETE FROM policies WHERE name = 'fifo_tuned'")
    mutate(bundle)
    before = await table_dump(repo.store)
    with pytest.raises(BundleError, match=msg):
        await repo.import_bundle(json.dumps(bundle))
    assert await table_dump(repo.store) == before


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                 st.text(max_size=20), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


def paths_of(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths_of(v, (*prefix, i))
    return out


def test_random_damage_to_a_bundle_is_refused_or_imported_whole(
        tmp_path: Path, embedder: Embedder, library_copy: Path) -> None:
    loop = asyncio.new_event_loop()
    src_store = loop.run_until_complete(Store.open(tmp_path / "src.db"))
    src = loop.run_until_complete(Repository.open(src_store, embedder, library_copy))
    bundle = loop.run_until_complete(make_bundle(src, tmp_path / "b.json"))
    spots = paths_of(bundle)
    dst: dict[str, Any] = {}

    def fresh_destination() -> None:
        if dst:
            loop.run_until_complete(dst["store"].close())
        dst["n"] = dst.get("n", 0) + 1
        dst["store"] = loop.run_until_complete(Store.open(tmp_path / f"dst{dst['n']}.db"))
        dst["repo"] = loop.run_until_complete(
            Repository.open(dst["store"], embedder, library_copy))
        dst["empty"] = loop.run_until_complete(table_dump(dst["store"]))

    fresh_destination()

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from(spots), JUNK), min_size=1, max_size=3),
           st.booleans())
    def check(damage: list[tuple[tuple[Any, ...], Any]], truncate: bool) -> None:
        b = copy.deepcopy(bundle)
        for path, junk in damage:
            node = b
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = junk
            except (KeyError, IndexError, TypeError):
                continue  # an earlier damage removed this spot
        data = json.dumps(b)
        if truncate:
            data = data[: len(data) // 2]
        try:
            rep = loop.run_until_complete(dst["repo"].import_bundle(data))
        except BundleError as exc:
            event("refused")
            assert str(exc)
            after = loop.run_until_complete(table_dump(dst["store"]))
            if after != dst["empty"]:
                fresh_destination()  # the next example must not inherit this one's failure
            assert after == dst["empty"]
            return
        # Damage that left a valid bundle (a changed description, say) is imported whole.
        event("imported")
        fresh_destination()
        assert sorted(rep.added) == sorted(p["name"] for p in b["policies"])
        assert rep.runs == len(b["runs"])

    try:
        check()
    finally:
        loop.run_until_complete(src_store.close())
        loop.run_until_complete(dst["store"].close())
        loop.close()
