"""Policy rows: the validated draft that goes in, the record that comes out, and the texts
that stand for a policy in search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from schedcpd.bpf.policy import INT_TYPES, TYPES, PolicyError, PolicySpec, Tunable
from schedcpd.repository.embeddings import Vector, save_vectors
from schedcpd.repository.records import (
    PROVENANCES,
    PolicyRecord,
    Provenance,
    RepositoryError,
    Status,
    check_name,
    tunable_json,
)
from schedcpd.store import Store

MAX_SOURCE_BYTES = 512 * 1024
MAX_TEXT = 4000
MAX_ITEMS = 32

POLICY_COLUMNS = (
    "p.name, p.description, p.algorithm, p.workloads, p.avoid, p.tags, p.kernel_features, "
    "p.tunables, p.source, p.source_hash, p.content_hash, p.object_hash, parent.name, "
    "p.provenance, p.status, p.created_at, p.updated_at")
SELECT_POLICY = (f"SELECT {POLICY_COLUMNS} FROM policies p "
                 "LEFT JOIN policies parent ON parent.id = p.parent_id")


def sha256(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def _text(value: object, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise RepositoryError(f"{what} must be a non-empty string of at most {limit} characters")
    return value.strip()


def _texts(value: object, what: str, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_ITEMS:
        raise RepositoryError(f"{what} must be a list of at most {MAX_ITEMS} strings")
    out = tuple(_text(v, f"each of {what}", 400) for v in value)
    if not out and not allow_empty:
        raise RepositoryError(f"{what} must not be empty")
    return out


def tunable_from_json(raw: object) -> Tunable:
    """A tunable from its JSON form, checked like ``policy.toml`` tunables are."""
    if not isinstance(raw, Mapping):
        raise RepositoryError(f"a tunable must be an object, got {raw!r}")
    name = check_name(raw.get("name"), "tunable name")
    typ = raw.get("type")
    if typ not in TYPES:
        raise RepositoryError(f"tunable {name}: type must be one of {', '.join(TYPES)}")
    lo, hi, max_len = raw.get("min"), raw.get("max"), raw.get("max_len", 15)
    if typ in INT_TYPES:
        tlo, thi = INT_TYPES[typ]
        for v in (lo, hi):
            if isinstance(v, bool) or not isinstance(v, int) or not tlo <= v <= thi:
                raise RepositoryError(f"tunable {name}: min and max must be {typ} integers")
        assert isinstance(lo, int) and isinstance(hi, int)
        if lo > hi:
            raise RepositoryError(f"tunable {name}: min {lo} is above max {hi}")
    else:
        lo = hi = None
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 1 <= max_len <= 255:
        raise RepositoryError(f"tunable {name}: max_len must be an integer in [1, 255]")
    t = Tunable(name=name, type=str(typ), default=raw.get("default"),  # type: ignore[arg-type]
                description=str(raw.get("description", ""))[:MAX_TEXT], min=lo, max=hi,
                max_len=max_len)
    try:
        t.validate(t.default)
    except PolicyError as exc:
        raise RepositoryError(f"default of {exc}") from None
    if t.type in INT_TYPES and not isinstance(t.default, int):
        raise RepositoryError(f"tunable {name}: default must be an integer")
    return t


@dataclass(frozen=True)
class PolicyDraft:
    """Everything needed to store a policy; ``validated()`` checks every field."""

    name: str
    description: str
    algorithm: str
    workloads: tuple[str, ...]
    source: str
    avoid: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    kernel_features: tuple[str, ...] = ("sched_ext",)
    tunables: tuple[Tunable, ...] = ()
    parent: str | None = None
    provenance: Provenance = "agent"
    object_hash: str | None = None

    @classmethod
    def from_spec(cls, spec: PolicySpec) -> PolicyDraft:
        return cls(name=spec.name, description=spec.description, algorithm=spec.algorithm,
                   workloads=spec.workloads, source=spec.source.read_text(), avoid=spec.avoid,
                   tags=spec.tags, kernel_features=spec.kernel_features,
                   tunables=spec.tunables, provenance="library")

    def validated(self) -> PolicyDraft:
        check_name(self.name)
        if self.parent is not None:
            check_name(self.parent, "parent name")
        if self.provenance not in PROVENANCES:
            raise RepositoryError(f"provenance must be one of {', '.join(PROVENANCES)}")
        if not isinstance(self.source, str) or not self.source.strip() \
                or len(self.source.encode()) > MAX_SOURCE_BYTES:
            raise RepositoryError(f"source must be non-empty BPF C of at most "
                                  f"{MAX_SOURCE_BYTES} bytes")
        if "\0" in self.source:
            raise RepositoryError("source must not contain NUL bytes")
        names = [t.name for t in self.tunables]
        if len(set(names)) != len(names):
            raise RepositoryError(f"duplicate tunable names in {names}")
        if self.object_hash is not None:
            _text(self.object_hash, "object_hash", 128)
        return PolicyDraft(
            name=self.name, description=_text(self.description, "description"),
            algorithm=_text(self.algorithm, "algorithm"),
            workloads=_texts(self.workloads, "workloads", allow_empty=False),
            source=self.source, avoid=_texts(self.avoid, "avoid"),
            tags=tuple(_text(t, "each tag", 40) for t in _texts(self.tags, "tags")),
            kernel_features=_texts(self.kernel_features, "kernel_features"),
            tunables=tuple(self.tunables), parent=self.parent, provenance=self.provenance,
            object_hash=self.object_hash)

    def metadata_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "algorithm": self.algorithm, "workloads": list(self.workloads),
                "avoid": list(self.avoid), "tags": list(self.tags),
                "kernel_features": list(self.kernel_features),
                "tunables": [tunable_json(t) for t in self.tunables], "parent": self.parent}

    def content_hash(self) -> str:
        meta = json.dumps(self.metadata_json(), sort_keys=True, separators=(",", ":"))
        return sha256(meta + "\0" + self.source)

    def search_texts(self) -> dict[str, str]:
        """What search compares queries with: the summary and each target workload.

        ``avoid`` is left out on purpose: "bad for interactive desktops" must not make a
        policy match a query about interactive desktops.
        """
        texts = {"summary": f"{self.description} {self.algorithm}"}
        texts.update((f"workload{i}", w) for i, w in enumerate(self.workloads))
        return texts

    def avoid_texts(self) -> dict[str, str]:
        """Where the policy is the wrong choice: search lowers a policy whose ``avoid``
        lines match the query better than its own targets do."""
        return {f"avoid{i}": a for i, a in enumerate(self.avoid)}

    def all_texts(self) -> dict[str, str]:
        return {**self.search_texts(), **self.avoid_texts()}


def record_from_row(row: Sequence[Any]) -> PolicyRecord:
    (name, desc, algo, workloads, avoid, tags, feats, tunables, source, source_hash,
     content_hash, object_hash, parent, provenance, status, created, updated) = row
    return PolicyRecord(
        name=name, description=desc, algorithm=algo, workloads=tuple(json.loads(workloads)),
        avoid=tuple(json.loads(avoid)), tags=tuple(json.loads(tags)),
        kernel_features=tuple(json.loads(feats)),
        tunables=tuple(tunable_from_json(t) for t in json.loads(tunables)),
        source=source, source_hash=source_hash, content_hash=content_hash,
        object_hash=object_hash, parent=parent, provenance=provenance, status=status,
        created_at=created, updated_at=updated)


async def get_record(store: Store, name: str) -> PolicyRecord | None:
    row = await store.fetchone(f"{SELECT_POLICY} WHERE p.name = ?", (name,))
    return None if row is None else record_from_row(row)


async def id_of(conn: aiosqlite.Connection, name: str) -> int | None:
    async with conn.execute("SELECT id FROM policies WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


def _row_values(d: PolicyDraft) -> tuple[Any, ...]:
    return (d.description, d.algorithm, json.dumps(list(d.workloads)),
            json.dumps(list(d.avoid)), json.dumps(list(d.tags)),
            json.dumps(list(d.kernel_features)),
            json.dumps([tunable_json(t) for t in d.tunables]), d.source, sha256(d.source),
            d.content_hash(), d.object_hash)


async def _parent_id(tx: aiosqlite.Connection, d: PolicyDraft) -> int | None:
    if d.parent is None:
        return None
    pid = await id_of(tx, d.parent)
    if pid is None:
        raise RepositoryError(f"parent policy {d.parent!r} is not in the repository")
    return pid


async def insert_policy(tx: aiosqlite.Connection, d: PolicyDraft, status: Status,
                        vectors: Mapping[str, tuple[str, Vector]], now: float) -> int:
    """Insert a validated draft with its search vectors; returns the new id."""
    if await id_of(tx, d.name) is not None:
        raise RepositoryError(f"a policy named {d.name!r} already exists")
    parent_id = await _parent_id(tx, d)
    cur = await tx.execute(
        "INSERT INTO policies (description, algorithm, workloads, avoid, tags, "
        "kernel_features, tunables, source, source_hash, content_hash, object_hash, name, "
        "parent_id, provenance, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*_row_values(d), d.name, parent_id, d.provenance, status, now, now))
    pid = int(cur.lastrowid or 0)
    await _write_vectors(tx, pid, d, vectors)
    return pid


async def update_policy(tx: aiosqlite.Connection, pid: int, d: PolicyDraft,
                        vectors: Mapping[str, tuple[str, Vector]], now: float) -> None:
    """Replace a policy's content (status and provenance stay)."""
    parent_id = await _parent_id(tx, d)
    await tx.execute(
        "UPDATE policies SET description = ?, algorithm = ?, workloads = ?, avoid = ?, "
        "tags = ?, kernel_features = ?, tunables = ?, source = ?, source_hash = ?, "
        "content_hash = ?, object_hash = ?, parent_id = ?, updated_at = ? WHERE id = ?",
        (*_row_values(d), parent_id, now, pid))
    await tx.execute("DELETE FROM policy_vectors WHERE policy_id = ?", (pid,))
    await _write_vectors(tx, pid, d, vectors)


async def _write_vectors(tx: aiosqlite.Connection, pid: int, d: PolicyDraft,
                         vectors: Mapping[str, tuple[str, Vector]]) -> None:
    texts = d.all_texts()
    await save_vectors(tx, (vectors[t] for t in texts.values()))
    await tx.executemany(
        "INSERT INTO policy_vectors (policy_id, field, text_hash) VALUES (?, ?, ?)",
        [(pid, f, vectors[t][0]) for f, t in texts.items()])
