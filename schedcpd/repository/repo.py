"""The Policy Repository's one entry point, for the daemon, the tool registry and the agent.

    store = await Store.open(path)
    repo = await Repository.open(store)          # syncs policies/ into the store
    hits = await repo.search("game stutters while a compile runs", k=5)

Every method validates its input and raises ``RepositoryError`` (a ValueError) with a
clear message before anything is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schedcpd.bpf.policy import Tunable
from schedcpd.repository import catalog
from schedcpd.repository.bundle import ImportReport, build_bundle, import_bundle, write_atomic
from schedcpd.repository.catalog import SELECT_POLICY, PolicyDraft, record_from_row, sha256
from schedcpd.repository.embeddings import Embedder, shared_embedder, vectors_for
from schedcpd.repository.history import History
from schedcpd.repository.promotion import Promotion, write_change
from schedcpd.repository.records import (
    Antipattern,
    HistoryRecord,
    Host,
    Measurement,
    PolicyRecord,
    ProfileLike,
    Provenance,
    Recommendation,
    RepositoryError,
    SearchFilters,
    SearchHit,
    StatusChange,
    Trend,
)
from schedcpd.repository.search import SearchEngine
from schedcpd.repository.seed import SyncReport, sync_library
from schedcpd.store import Store


class Repository:
    def __init__(self, store: Store, embedder: Embedder | None = None,
                 policies_root: Path | None = None) -> None:
        self.store = store
        self.embedder = embedder or shared_embedder()
        self.policies_root = policies_root
        self.engine = SearchEngine(store, self.embedder)
        self.history = History(store, self.embedder)
        self.promotion = Promotion(store)

    @classmethod
    async def open(cls, store: Store, embedder: Embedder | None = None,
                   policies_root: Path | None = None, sync: bool = True) -> Repository:
        repo = cls(store, embedder, policies_root)
        if sync:
            await repo.sync_library()
        return repo

    async def sync_library(self) -> SyncReport:
        return await sync_library(self.store, self.embedder, self.policies_root)

    # -- policies ---------------------------------------------------------------------
    async def search(self, query: str, filters: SearchFilters | None = None,
                     k: int = 5) -> list[SearchHit]:
        return await self.engine.search(query, filters, k)

    async def get(self, name: str) -> PolicyRecord:
        rec = await catalog.get_record(self.store, name)
        if rec is None:
            known = [r[0] for r in await self.store.fetchall(
                "SELECT name FROM policies ORDER BY name LIMIT 50")]
            raise RepositoryError(f"no policy named {name!r} (have: {', '.join(known)})")
        return rec

    async def policies(self, filters: SearchFilters | None = None) -> list[PolicyRecord]:
        f = filters or SearchFilters()
        marks = ",".join("?" * len(f.statuses))
        rows = await self.store.fetchall(
            f"{SELECT_POLICY} WHERE p.status IN ({marks}) ORDER BY p.name", list(f.statuses))
        recs = [record_from_row(r) for r in rows]
        return [r for r in recs if f.tags <= set(r.tags) and (
            f.kernel_features is None or set(r.kernel_features) <= f.kernel_features)]

    async def add_generated(
            self, source: str, parent: str | None, *, name: str | None = None,
            description: str | None = None, algorithm: str | None = None,
            workloads: Sequence[str] | None = None, tags: Sequence[str] | None = None,
            avoid: Sequence[str] | None = None, tunables: Sequence[Tunable] | None = None,
            kernel_features: Sequence[str] | None = None, object_hash: str | None = None,
            provenance: Provenance = "agent") -> PolicyRecord:
        """A new candidate policy. Fields left out are inherited from the parent; the name
        defaults to ``<parent>_<hash of the source>``."""
        base = await self.get(parent) if parent is not None else None
        if base is None and None in (description, algorithm, workloads):
            raise RepositoryError("a policy without a parent needs description, algorithm "
                                  "and workloads")
        if provenance not in ("agent", "user"):
            raise RepositoryError("added policies are agent or user policies")
        if not isinstance(source, str):
            raise RepositoryError("source must be BPF C text")

        def pick(given: Any, inherited: Any) -> Any:
            return inherited if given is None else given

        draft = PolicyDraft(
            name=name or f"{parent or 'gen'}_{sha256(source)[:8]}",
            description=pick(description, base and base.description),
            algorithm=pick(algorithm, base and base.algorithm),
            workloads=tuple(pick(workloads, base and base.workloads)), source=source,
            avoid=tuple(pick(avoid, base.avoid if base else ())),
            tags=tuple(pick(tags, base.tags if base else ())),
            kernel_features=tuple(pick(kernel_features,
                                       base.kernel_features if base else ("sched_ext",))),
            tunables=tuple(pick(tunables, base.tunables if base else ())), parent=parent,
            provenance=provenance, object_hash=object_hash).validated()
        vectors = await vectors_for(self.store, self.embedder, draft.all_texts().values())
        async with self.store.transaction() as tx:
            pid = await catalog.insert_policy(tx, draft, "candidate", vectors, time.time())
            await write_change(tx, pid, None, "candidate", f"added by {provenance}",
                               {"content_hash": draft.content_hash(), "parent": parent},
                               provenance, time.time())
        return await self.get(draft.name)

    # -- history ----------------------------------------------------------------------
    async def record_run(self, policy: str, params: Mapping[str, Any], profile: ProfileLike,
                         measurement: Measurement | None, *, failure: str | None = None,
                         note: str = "", host: Host | None = None,
                         at: float | None = None) -> HistoryRecord:
        return await self.history.record_run(policy, params, profile, measurement,
                                             failure=failure, note=note, host=host, at=at)

    async def runs(self, policy: str, limit: int = 100) -> list[HistoryRecord]:
        return await self.history.runs(policy, limit)

    async def best_for(self, profile: ProfileLike, *, metric: str | None = None,
                       k: int = 5) -> list[Recommendation]:
        return await self.history.best_for(profile, metric=metric, k=k)

    async def trend(self, policy: str, *, metric: str | None = None) -> Trend:
        await self.get(policy)
        return await self.history.trend(policy, metric=metric)

    async def antipatterns(self, profile: ProfileLike) -> list[Antipattern]:
        return await self.history.antipatterns(profile)

    # -- status -----------------------------------------------------------------------
    async def verify(self, name: str, verdict: Mapping[str, Any], *, reason: str,
                     actor: str = "verifier") -> StatusChange:
        return await self.promotion.verify(name, verdict, reason=reason, actor=actor)

    async def promote(self, name: str, run_ids: Sequence[int], *, reason: str,
                      actor: str = "agent") -> StatusChange:
        return await self.promotion.promote(name, run_ids, reason=reason, actor=actor)

    async def retire(self, name: str, *, reason: str, run_ids: Sequence[int] = (),
                     actor: str = "agent") -> StatusChange:
        return await self.promotion.retire(name, reason=reason, run_ids=run_ids, actor=actor)

    async def reinstate(self, name: str, *, reason: str, actor: str = "user") -> StatusChange:
        return await self.promotion.reinstate(name, reason=reason, actor=actor)

    async def status_changes(self, name: str) -> list[StatusChange]:
        return await self.promotion.changes(name)

    # -- bundles ----------------------------------------------------------------------
    async def export_bundle(self, names: Sequence[str], path: Path | None = None
                            ) -> dict[str, Any]:
        bundle = await build_bundle(self.store, names)
        if path is not None:
            write_atomic(path, json.dumps(bundle, indent=1).encode())
        return bundle

    async def import_bundle(self, data: bytes | str | Path) -> ImportReport:
        if isinstance(data, Path):
            try:
                data = data.read_bytes()
            except OSError as exc:
                raise RepositoryError(f"cannot read the bundle: {exc}") from None
        return await import_bundle(self.store, self.embedder, data)
