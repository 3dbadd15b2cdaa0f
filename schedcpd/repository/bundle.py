"""Policies as a JSON bundle, to share them between machines and users.

A bundle carries policies (metadata, tunables, source and its hash, parent) and the runs
measured with them. Import checks everything before it writes anything, then writes in one
transaction: a bad bundle is refused with the first problem named and the repository is
left exactly as it was. Imported policies enter as ``user`` candidates whatever they were
at home: they are verified and measured here before they can be promoted. A policy already
present with identical content is skipped (importing twice is harmless); one present with
different content is a conflict, and the bundle is refused.

Export writes to a temporary file in the same directory, fsyncs it and renames it over the
destination, so a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schedcpd.repository import catalog
from schedcpd.repository.catalog import PolicyDraft, sha256, tunable_from_json
from schedcpd.repository.embeddings import Embedder, vectors_for
from schedcpd.repository.history import SELECT_RUNS, RunInput, check_run, insert_run, run_from_row
from schedcpd.repository.promotion import write_change
from schedcpd.repository.records import (
    HistoryRecord,
    Host,
    Measurement,
    Profile,
    RepositoryError,
)
from schedcpd.store import Store

FORMAT = "schedcp-policy-bundle"
VERSION = 1
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_POLICIES = 1000
MAX_RUNS = 100_000


class BundleError(RepositoryError):
    """The bundle is malformed, inconsistent or conflicts with the repository."""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # identical content already present
    runs: int = 0


def _obj(v: object, what: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise BundleError(f"{what} must be a JSON object")
    return v


def _list(v: object, what: str, limit: int) -> list[Any]:
    if not isinstance(v, list) or len(v) > limit:
        raise BundleError(f"{what} must be a list of at most {limit} items")
    return v


def _run_json(r: HistoryRecord, chars: Mapping[str, float]) -> dict[str, Any]:
    return {"policy": r.policy, "params": dict(r.params),
            "profile": {"fingerprint": r.profile_fingerprint,
                        "description": r.profile_description, "characteristics": dict(chars)},
            "metric": r.metric, "lower_is_better": r.lower_is_better,
            "baseline_value": r.baseline_value, "value": r.value, "ci_low": r.ci_low,
            "ci_high": r.ci_high, "samples": r.samples, "outcome": r.outcome,
            "reason": r.reason, "host": {"kernel": r.host_kernel, "cpus": r.host_cpus},
            "created_at": r.created_at}


async def build_bundle(store: Store, names: Sequence[str]) -> dict[str, Any]:
    """The named policies and every run measured with them."""
    policies, runs = [], []
    chars = {r[0]: json.loads(r[1]) for r in await store.fetchall(
        "SELECT fingerprint, characteristics FROM profiles")}
    for name in dict.fromkeys(names):
        rec = await catalog.get_record(store, name)
        if rec is None:
            raise BundleError(f"no policy named {name!r} to export")
        d = rec.as_json()
        policies.append({k: d[k] for k in (
            "name", "description", "algorithm", "workloads", "avoid", "tags",
            "kernel_features", "tunables", "source", "source_hash", "parent", "provenance",
            "status", "object_hash")})
        for row in await store.fetchall(f"{SELECT_RUNS} WHERE p.name = ? ORDER BY r.id",
                                        (name,)):
            r = run_from_row(row)
            runs.append(_run_json(r, chars.get(r.profile_fingerprint, {})))
    return {"format": FORMAT, "version": VERSION, "exported_at": time.time(),
            "policies": policies, "runs": runs}


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _draft(raw: object, i: int) -> PolicyDraft:
    p = _obj(raw, f"policies[{i}]")
    where = f"policies[{i}] ({p.get('name')!r})"
    try:
        tunables = tuple(tunable_from_json(t) for t in _list(p.get("tunables", []),
                                                                 f"{where}.tunables", 64))
        d = PolicyDraft(
            name=p.get("name"),  # type: ignore[arg-type]
            description=p.get("description"),  # type: ignore[arg-type]
            algorithm=p.get("algorithm"),  # type: ignore[arg-type]
            workloads=p.get("workloads"),  # type: ignore[arg-type]
            source=p.get("source"),  # type: ignore[arg-type]
            avoid=p.get("avoid", []), tags=p.get("tags", []),
            kernel_features=p.get("kernel_features", ["sched_ext"]),
            tunables=tunables, parent=p.get("parent"), provenance="user",
            object_hash=p.get("object_hash")).validated()
    except RepositoryError as exc:
        raise BundleError(f"{where}: {exc}") from None
    if p.get("source_hash") != sha256(d.source):
        raise BundleError(f"{where}: source_hash does not match the source (corrupted or "
                          "edited bundle)")
    return d


def _run(raw: object, i: int, drafts: Mapping[str, PolicyDraft]) -> RunInput:
    r = _obj(raw, f"runs[{i}]")
    where = f"runs[{i}]"
    name = r.get("policy")
    d = drafts.get(name) if isinstance(name, str) else None
    if d is None:
        raise BundleError(f"{where}: policy {r.get('policy')!r} is not in the bundle")
    prof = _obj(r.get("profile"), f"{where}.profile")
    host = _obj(r.get("host"), f"{where}.host")
    measured = r.get("outcome") != "failed"
    try:
        m = Measurement(
            metric=r.get("metric"), lower_is_better=r.get("lower_is_better"),  # type: ignore[arg-type]
            baseline=r.get("baseline_value"), value=r.get("value"),  # type: ignore[arg-type]
            ci_low=r.get("ci_low"), ci_high=r.get("ci_high"),  # type: ignore[arg-type]
            samples=r.get("samples")) if measured else None  # type: ignore[arg-type]
        return check_run(
            d.tunables, d.name, r.get("params"),
            Profile(prof.get("description"), prof.get("fingerprint"),  # type: ignore[arg-type]
                    prof.get("characteristics", {})),
            m, failure=None if measured else r.get("reason"),
            host=Host(host.get("kernel"), host.get("cpus")),  # type: ignore[arg-type]
            at=r.get("created_at"))
    except RepositoryError as exc:
        raise BundleError(f"{where}: {exc}") from None


def parse_bundle(data: bytes | str) -> tuple[list[PolicyDraft], list[RunInput]]:
    """Every policy and run in the bundle, checked; BundleError names the first problem."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle is not valid JSON: {exc}") from None
    top = _obj(raw, "bundle")
    if top.get("format") != FORMAT:
        raise BundleError(f"not a schedcp policy bundle (format must be {FORMAT!r})")
    if top.get("version") != VERSION:
        raise BundleError(f"bundle version {top.get('version')!r} is not supported "
                          f"(this schedcp reads version {VERSION})")
    drafts = [_draft(p, i) for i, p in enumerate(_list(top.get("policies"), "policies",
                                                        MAX_POLICIES))]
    by_name: dict[str, PolicyDraft] = {}
    for d in drafts:
        if d.name in by_name:
            raise BundleError(f"policy {d.name} appears twice in the bundle")
        by_name[d.name] = d
    runs = [_run(r, i, by_name) for i, r in enumerate(_list(top.get("runs", []), "runs",
                                                             MAX_RUNS))]
    return _parents_first(drafts), runs


def _parents_first(drafts: list[PolicyDraft]) -> list[PolicyDraft]:
    """Drafts ordered so a parent in the bundle is inserted before its children."""
    by_name = {d.name: d for d in drafts}
    out: list[PolicyDraft] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(d: PolicyDraft) -> None:
        if state.get(d.name) == 2:
            return
        if state.get(d.name) == 1:
            raise BundleError(f"policy {d.name} is its own ancestor")
        state[d.name] = 1
        if d.parent in by_name:
            visit(by_name[d.parent])
        state[d.name] = 2
        out.append(d)

    for d in drafts:
        visit(d)
    return out


async def import_bundle(store: Store, embedder: Embedder, data: bytes | str) -> ImportReport:
    drafts, runs = parse_bundle(data)
    rep = ImportReport()
    names = {d.name for d in drafts}
    existing = {r[0]: r[1] for r in await store.fetchall(
        "SELECT name, content_hash FROM policies")}
    new = []
    for d in drafts:
        if d.name in existing:
            if existing[d.name] != d.content_hash():
                raise BundleError(f"policy {d.name} already exists here with different "
                                  "content; rename it in the bundle or retire ours first")
            rep.skipped.append(d.name)
        elif d.parent is not None and d.parent not in names and d.parent not in existing:
            raise BundleError(f"policy {d.name}: parent {d.parent!r} is neither in the bundle "
                              "nor in this repository")
        else:
            new.append(d)
    added = {d.name for d in new}
    runs = [r for r in runs if r.policy in added]  # runs of skipped policies are here already
    texts = [t for d in new for t in d.all_texts().values()]
    texts += [r.profile.description for r in runs]
    vectors = await vectors_for(store, embedder, texts) if texts else {}
    now = time.time()
    async with store.transaction() as tx:
        for d in new:
            if await catalog.id_of(tx, d.name) is not None:
                raise BundleError(f"policy {d.name} was added while importing; try again")
            pid = await catalog.insert_policy(tx, d, "candidate", vectors, now)
            await write_change(tx, pid, None, "candidate", "imported from a bundle",
                               {"content_hash": d.content_hash()}, "import", now)
        for r in runs:
            await insert_run(tx, r, vectors[r.profile.description])
    rep.added, rep.runs = [d.name for d in new], len(runs)
    return rep
