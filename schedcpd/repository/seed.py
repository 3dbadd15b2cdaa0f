"""Keep the repository in step with the policy library in ``policies/``.

Each library policy is compared by content hash (its metadata and source): new ones are
added as promoted, changed ones are updated in place (their history and status stay), ones
gone from the library are retired, and ones that come back are promoted again (a policy
someone retired on evidence stays retired). When nothing changed
no model is loaded and nothing is written, so syncing at every start-up is cheap. All
changes of one sync land in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from schedcpd import paths
from schedcpd.bpf.policy import PolicyError, PolicySpec, load_library, load_policy
from schedcpd.repository import catalog
from schedcpd.repository.catalog import PolicyDraft
from schedcpd.repository.embeddings import Embedder, vectors_for
from schedcpd.repository.promotion import write_change
from schedcpd.repository.records import RepositoryError
from schedcpd.store import Store

ACTOR = "library-sync"


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired or self.restored)


def read_library(root: Path) -> tuple[list[PolicySpec], dict[str, str]]:
    """The library's policies, and an error per policy that does not load (the others
    still sync: one broken policy.toml must not hide the whole library)."""
    try:
        return load_library(root), {}
    except PolicyError:
        pass
    specs, errors = [], {}
    for d in sorted(root.iterdir()):
        if (d / "policy.toml").is_file():
            try:
                specs.append(load_policy(d))
            except PolicyError as exc:
                errors[d.name] = str(exc)
    return specs, errors


def _drafts(specs: list[PolicySpec], errors: dict[str, str]) -> dict[str, PolicyDraft]:
    drafts = {}
    for spec in specs:
        try:
            drafts[spec.name] = PolicyDraft.from_spec(spec).validated()
        except (OSError, RepositoryError) as exc:
            errors[spec.name] = str(exc)
    return drafts


def _retired_by_sync(row: tuple[object, ...]) -> bool:
    """Retired because it left the library (not by someone's decision, which stands)."""
    return row[3] == "retired" and row[4] == ACTOR


async def sync_library(store: Store, embedder: Embedder, root: Path | None = None) -> SyncReport:
    root = root or paths.policies_dir()
    rep = SyncReport()
    specs, rep.errors = read_library(root) if root.is_dir() else ([], {})
    drafts = _drafts(specs, rep.errors)
    rows = {r[0]: r for r in await store.fetchall(
        "SELECT p.name, p.content_hash, p.provenance, p.status, (SELECT c.actor FROM "
        "status_changes c WHERE c.policy_id = p.id ORDER BY c.id DESC LIMIT 1) "
        "FROM policies p")}
    todo: list[PolicyDraft] = []
    for name, d in drafts.items():
        row = rows.get(name)
        if row is not None and row[2] != "library":
            rep.errors[name] = (f"a {row[2]} policy named {name} is already in the repository; "
                                "rename one of them")
        elif row is None or row[1] != d.content_hash():
            todo.append(d)
        elif _retired_by_sync(row):
            rep.restored.append(name)
        else:
            rep.unchanged.append(name)
    gone = [n for n, r in rows.items() if r[2] == "library" and r[3] != "retired"
            and n not in drafts and n not in rep.errors]
    if not (todo or gone or rep.restored):
        return rep
    texts = [t for d in todo for t in d.all_texts().values()]
    vectors = await vectors_for(store, embedder, texts) if texts else {}
    now = time.time()
    async with store.transaction() as tx:
        for d in todo:
            pid = await catalog.id_of(tx, d.name)
            if pid is None:
                pid = await catalog.insert_policy(tx, d, "promoted", vectors, now)
                await write_change(tx, pid, None, "promoted", "shipped in the policy library",
                                   {"content_hash": d.content_hash()}, ACTOR, now)
                rep.added.append(d.name)
            else:
                await catalog.update_policy(tx, pid, d, vectors, now)
                if _retired_by_sync(rows[d.name]):
                    await write_change(tx, pid, "retired", "promoted",
                                       "back in the policy library", {}, ACTOR, now)
                rep.updated.append(d.name)
        for name in rep.restored:
            pid = await catalog.id_of(tx, name)
            assert pid is not None
            await write_change(tx, pid, "retired", "promoted", "back in the policy library",
                               {}, ACTOR, now)
        for name in gone:
            pid = await catalog.id_of(tx, name)
            assert pid is not None
            await write_change(tx, pid, rows[name][3], "retired",
                               "removed from the policy library", {}, ACTOR, now)
            rep.retired.append(name)
    return rep
