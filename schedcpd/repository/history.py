"""Measured history: every run as numbers, and what it teaches.

A run is one policy (with parameters) measured on one workload profile against a baseline.
Its outcome follows from the confidence interval, never from a single ratio: improved or
regressed only when the interval excludes 1, failed when the run itself broke (verifier
rejection, watchdog kick-out, crash), neutral otherwise.

Profiles are matched by similarity, not only by identical fingerprints: the same fingerprint
scores 1.0; otherwise half the cosine similarity of the descriptions and half the closeness
of the shared numeric characteristics (1 - |a-b| / (|a|+|b|), averaged).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiosqlite
import numpy as np

from schedcpd.bpf.policy import PolicyError
from schedcpd.repository import catalog
from schedcpd.repository.embeddings import Embedder, Vector, from_blob, save_vectors, vectors_for
from schedcpd.repository.records import (
    Antipattern,
    Characteristic,
    HistoryRecord,
    Host,
    Measurement,
    Outcome,
    Profile,
    ProfileLike,
    Recommendation,
    RepositoryError,
    Trend,
    TrendPoint,
)
from schedcpd.store import Store

MAX_REASON = 2000
RUN_COLUMNS = (
    "r.id, p.name, r.params, pr.fingerprint, pr.description, r.metric, r.lower_is_better, "
    "r.baseline_value, r.value, r.ratio, r.ci_low, r.ci_high, r.samples, r.outcome, r.reason, "
    "r.host_kernel, r.host_cpus, r.created_at")
SELECT_RUNS = (f"SELECT {RUN_COLUMNS} FROM runs r JOIN policies p ON p.id = r.policy_id "
               "JOIN profiles pr ON pr.id = r.profile_id")


def run_from_row(row: tuple[Any, ...]) -> HistoryRecord:
    (rid, name, params, fp, desc, metric, lib, base, value, ratio, lo, hi, n, outcome,
     reason, kernel, cpus, at) = row
    return HistoryRecord(
        id=rid, policy=name, params=json.loads(params), profile_fingerprint=fp,
        profile_description=desc, metric=metric, lower_is_better=bool(lib),
        baseline_value=base, value=value, ratio=ratio, ci_low=lo, ci_high=hi, samples=n,
        outcome=outcome, reason=reason, host_kernel=kernel, host_cpus=cpus, created_at=at)


def outcome_of(m: Measurement | None, failure: str | None) -> Outcome:
    if failure is not None or m is None:
        return "failed"
    if m.better:
        return "improved"
    return "regressed" if m.worse else "neutral"


def describe(m: Measurement) -> str:
    return (f"{m.metric} ratio {m.ratio:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}] over "
            f"{m.samples} samples ({'lower' if m.lower_is_better else 'higher'} is better)")


def _checked_params(record_tunables: tuple[Any, ...], name: str,
                    params: object) -> dict[str, int | bool | str]:
    if not isinstance(params, Mapping):
        raise RepositoryError("params must be a mapping of tunable name to value")
    out: dict[str, int | bool | str] = {}
    known = {t.name: t for t in record_tunables}
    for k, v in params.items():
        if k not in known:
            raise RepositoryError(f"policy {name} has no parameter {k!r} "
                                  f"(known: {', '.join(known) or 'none'})")
        try:
            out[k] = known[k].validate(v)
        except PolicyError as exc:
            raise RepositoryError(str(exc)) from None
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class RunInput:
    """A run checked and ready to store."""

    policy: str
    params: dict[str, int | bool | str]
    profile: Profile
    measurement: Measurement | None
    outcome: Outcome
    reason: str
    host: Host
    at: float


def check_run(tunables: tuple[Any, ...], policy: str, params: object, profile: ProfileLike,
              measurement: object, *, failure: object = None, note: object = "",
              host: object = None, at: object = None) -> RunInput:
    """Every field of a run checked; RepositoryError names the first bad one."""
    checked = _checked_params(tunables, policy, params)
    prof = Profile.of(profile)
    if measurement is not None:
        if not isinstance(measurement, Measurement):
            raise RepositoryError("measurement must be a Measurement (or None for a failed run)")
        measurement.validate()
    if failure is not None and (not isinstance(failure, str) or not failure.strip()):
        raise RepositoryError("failure must be a non-empty reason")
    if measurement is None and failure is None:
        raise RepositoryError("a run needs a measurement, or a failure reason")
    if not isinstance(note, str) or len(note) > MAX_REASON:
        raise RepositoryError(f"note must be text of at most {MAX_REASON} characters")
    host = Host.current() if host is None else host
    if not isinstance(host, Host) or not isinstance(host.kernel, str) or not host.kernel \
            or isinstance(host.cpus, bool) or not isinstance(host.cpus, int) or host.cpus < 1:
        raise RepositoryError("host needs a kernel release and a positive CPU count")
    at = time.time() if at is None else at
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise RepositoryError("at must be a finite UNIX time")
    reason = "; ".join(x for x in (
        failure.strip() if isinstance(failure, str) else "",
        describe(measurement) if measurement else "", note.strip()) if x)[:MAX_REASON]
    return RunInput(policy, checked, prof, measurement, outcome_of(measurement, failure),
                    reason, host, float(at))


async def insert_run(tx: aiosqlite.Connection, run: RunInput,
                     profile_vector: tuple[str, Vector]) -> int:
    pid = await catalog.id_of(tx, run.policy)
    if pid is None:  # deleted since it was checked
        raise RepositoryError(f"no policy named {run.policy!r} in the repository")
    await save_vectors(tx, [profile_vector])
    prof, m = run.profile, run.measurement
    await tx.execute(
        "INSERT INTO profiles (fingerprint, description, characteristics, text_hash) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(fingerprint) DO UPDATE SET "
        "description = excluded.description, characteristics = excluded.characteristics, "
        "text_hash = excluded.text_hash",
        (prof.fingerprint, prof.description, json.dumps(dict(prof.characteristics)),
         profile_vector[0]))
    cur = await tx.execute(
        "INSERT INTO runs (policy_id, profile_id, params, metric, lower_is_better, "
        "baseline_value, value, ratio, ci_low, ci_high, samples, outcome, reason, "
        "host_kernel, host_cpus, created_at) VALUES (?, "
        "(SELECT id FROM profiles WHERE fingerprint = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?)",
        (pid, prof.fingerprint, json.dumps(run.params),
         m.metric if m else "failed", int(m.lower_is_better) if m else 1,
         m.baseline if m else None, m.value if m else None, m.ratio if m else None,
         m.ci_low if m else None, m.ci_high if m else None, m.samples if m else 0,
         run.outcome, run.reason, run.host.kernel, run.host.cpus, run.at))
    return int(cur.lastrowid or 0)


@dataclass(frozen=True)
class _StoredProfile:
    id: int
    fingerprint: str
    description: str
    characteristics: dict[str, Characteristic]
    vector: Vector | None


def characteristic_closeness(a: Mapping[str, Characteristic],
                             b: Mapping[str, Characteristic]) -> float | None:
    """Mean closeness over shared characteristics: numbers 1 - |x-y| / (|x|+|y|), strings
    1 when equal, else 0. None when the two share none."""
    shared = a.keys() & b.keys()
    if not shared:
        return None
    vals = []
    for key in shared:
        x, y = a[key], b[key]
        if isinstance(x, str) or isinstance(y, str):
            vals.append(1.0 if x == y else 0.0)
            continue
        denom = abs(x) + abs(y)
        vals.append(1.0 if denom == 0 else 1.0 - abs(x - y) / denom)
    return float(np.mean(vals))


def profile_similarity(p: Profile, pv: Vector, other: _StoredProfile) -> float:
    if p.fingerprint == other.fingerprint:
        return 1.0
    text = float(pv @ other.vector) if other.vector is not None else 0.0
    num = characteristic_closeness(p.characteristics, other.characteristics)
    return text if num is None else 0.5 * text + 0.5 * num


class History:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    async def record_run(self, policy: str, params: Mapping[str, Any], profile: ProfileLike,
                         measurement: Measurement | None, *, failure: str | None = None,
                         note: str = "", host: Host | None = None,
                         at: float | None = None) -> HistoryRecord:
        """Store one run. Bad input raises RepositoryError and stores nothing."""
        rec = await catalog.get_record(self.store, policy) if isinstance(policy, str) else None
        if rec is None:
            raise RepositoryError(f"no policy named {policy!r} in the repository")
        run = check_run(rec.tunables, rec.name, params, profile, measurement, failure=failure,
                        note=note, host=host, at=at)
        vecs = await vectors_for(self.store, self.embedder, [run.profile.description])
        async with self.store.transaction() as tx:
            run_id = await insert_run(tx, run, vecs[run.profile.description])
        row = await self.store.fetchone(f"{SELECT_RUNS} WHERE r.id = ?", (run_id,))
        assert row is not None
        return run_from_row(row)

    async def runs(self, policy: str, limit: int = 100) -> list[HistoryRecord]:
        rows = await self.store.fetchall(
            f"{SELECT_RUNS} WHERE p.name = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
            (policy, limit))
        return [run_from_row(r) for r in rows]

    async def _similar_profiles(self, profile: ProfileLike,
                                min_similarity: float) -> dict[int, tuple[float, str, str]]:
        """profile id -> (similarity, fingerprint, description), for similar enough ones."""
        prof = Profile.of(profile)
        pv = (await vectors_for(self.store, self.embedder, [prof.description]))[
            prof.description][1]
        rows = await self.store.fetchall(
            "SELECT pr.id, pr.fingerprint, pr.description, pr.characteristics, e.vector "
            "FROM profiles pr LEFT JOIN embeddings e ON e.text_hash = pr.text_hash")
        out: dict[int, tuple[float, str, str]] = {}
        for pid, fp, desc, chars, vec in rows:
            sp = _StoredProfile(pid, fp, desc, json.loads(chars),
                                from_blob(vec) if vec is not None else None)
            sim = profile_similarity(prof, pv, sp)
            if sim >= min_similarity:
                out[pid] = (sim, fp, desc)
        return out

    async def _runs_on(self, profile_ids: list[int], outcomes: tuple[str, ...],
                       metric: str | None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(profile_ids), 500):
            chunk = profile_ids[i:i + 500]
            sql = (f"SELECT r.id, p.name, r.params, r.profile_id, r.metric, r.lower_is_better, "
                   f"r.ratio, r.outcome, r.reason, r.created_at, p.status FROM runs r "
                   f"JOIN policies p ON p.id = r.policy_id "
                   f"WHERE r.profile_id IN ({','.join('?' * len(chunk))}) "
                   f"AND r.outcome IN ({','.join('?' * len(outcomes))})")
            args: list[Any] = [*chunk, *outcomes]
            if metric is not None:
                sql += " AND r.metric = ?"
                args.append(metric)
            rows += await self.store.fetchall(sql, args)
        return rows

    async def best_for(self, profile: ProfileLike, *, metric: str | None = None, k: int = 5,
                       min_similarity: float = 0.6) -> list[Recommendation]:
        """Policies (with parameters) that measured better on similar workloads, best first.

        Each group's gain is the similarity-weighted mean over all its measured runs
        (neutral and regressed ones pull it down); a group needs at least one significant
        improvement and a positive mean to be recommended. Retired policies are left out.
        """
        sims = await self._similar_profiles(profile, min_similarity)
        groups: dict[tuple[int, str, str, str], list[float]] = defaultdict(
            lambda: [0.0, 0.0, 0, 0, 0.0])  # weighted gain sum, weight sum, runs, improved, sim
        for pid, name, params, met, prof, n, gain_sum, improved in await self._aggregate(
                list(sims), metric):
            sim = sims[prof][0]
            g = groups[(pid, name, params, met)]
            g[0] += sim * gain_sum
            g[1] += sim * n
            g[2] += n
            g[3] += improved
            g[4] = max(g[4], sim)
        recs = []
        for (pid, name, params, met), (wsum, wtotal, n, improved, sim) in groups.items():
            gain = wsum / wtotal if wtotal else 0.0
            if gain > 0 and improved:
                recs.append((pid, params, Recommendation(
                    policy=name, params=json.loads(params), metric=met, gain=round(gain, 4),
                    similarity=round(sim, 4), runs=int(n), run_ids=())))
        recs.sort(key=lambda r: (-r[2].gain * r[2].similarity, -r[2].runs, r[2].policy))
        return [replace(rec, run_ids=await self._improved_ids(pid, params, rec.metric,
                                                              list(sims)))
                for pid, params, rec in recs[:k]]

    async def _aggregate(self, profile_ids: list[int],
                         metric: str | None) -> list[tuple[Any, ...]]:
        """Measured runs on these profiles summed per policy, params, metric and profile
        (SQLite sums 100,000 runs far faster than Python walks them)."""
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(profile_ids), 500):
            chunk = profile_ids[i:i + 500]
            sql = ("SELECT p.id, p.name, r.params, r.metric, r.profile_id, COUNT(*), "
                   "SUM(CASE WHEN r.lower_is_better THEN 1.0 - r.ratio ELSE r.ratio - 1.0 END), "
                   "SUM(r.outcome = 'improved') FROM runs r "
                   "JOIN policies p ON p.id = r.policy_id "
                   f"WHERE r.profile_id IN ({','.join('?' * len(chunk))}) "
                   "AND r.outcome != 'failed' AND p.status != 'retired'")
            args: list[Any] = list(chunk)
            if metric is not None:
                sql += " AND r.metric = ?"
                args.append(metric)
            out += await self.store.fetchall(
                sql + " GROUP BY r.policy_id, r.params, r.metric, r.profile_id", args)
        return out

    async def _improved_ids(self, pid: int, params: str, metric: str,
                            profile_ids: list[int]) -> tuple[int, ...]:
        """The latest improved runs behind a recommendation (at most 20): its evidence."""
        ids = profile_ids[:30_000]  # under SQLite's limit on bound variables
        rows = await self.store.fetchall(
            "SELECT id FROM runs WHERE policy_id = ? AND params = ? AND metric = ? "
            f"AND outcome = 'improved' AND profile_id IN ({','.join('?' * len(ids))}) "
            "ORDER BY created_at DESC, id DESC LIMIT 20", [pid, params, metric, *ids])
        return tuple(sorted(int(r[0]) for r in rows))

    async def antipatterns(self, profile: ProfileLike, *,
                           min_similarity: float = 0.6) -> list[Antipattern]:
        """Policy and workload pairs that failed or regressed, most similar and most often
        first, with the latest reason."""
        sims = await self._similar_profiles(profile, min_similarity)
        rows = await self._runs_on(list(sims), ("failed", "regressed"), None)
        groups: dict[tuple[str, str, int], list[tuple[Any, ...]]] = defaultdict(list)
        for r in rows:
            groups[(r[1], r[2], r[3])].append(r)
        out = []
        for (name, params, prof_id), runs in groups.items():
            last = max(runs, key=lambda r: (r[9], r[0]))
            ratios = [r[6] for r in runs if r[6] is not None]
            worst = (max(ratios) if last[5] else min(ratios)) if ratios else None
            sim, fp, desc = sims[prof_id]
            out.append(Antipattern(
                policy=name, params=json.loads(params), profile_fingerprint=fp,
                profile_description=desc, similarity=round(sim, 4), outcome=last[7],
                reason=last[8], count=len(runs), worst_ratio=worst, last_at=last[9]))
        out.sort(key=lambda a: (-a.similarity, -a.count, a.policy))
        return out

    async def trend(self, policy: str, *, metric: str | None = None,
                    limit: int = 200) -> Trend:
        sql = f"{SELECT_RUNS} WHERE p.name = ?"
        args: list[Any] = [policy]
        if metric is not None:
            sql += " AND r.metric = ?"
            args.append(metric)
        rows = await self.store.fetchall(
            f"SELECT * FROM ({sql} ORDER BY r.created_at DESC, r.id DESC LIMIT ?) "
            "ORDER BY 18, 1", [*args, limit])
        runs = [run_from_row(r) for r in rows]
        points = tuple(TrendPoint(run_id=r.id, at=r.created_at, metric=r.metric,
                                  ratio=r.ratio, ci_low=r.ci_low, ci_high=r.ci_high,
                                  outcome=r.outcome, profile_fingerprint=r.profile_fingerprint)
                       for r in runs)
        gains = [r.gain for r in runs if r.gain is not None]
        slope = float(np.polyfit(np.arange(len(gains)), gains, 1)[0]) if len(gains) >= 2 \
            else None
        return Trend(policy=policy, points=points, slope=slope)


async def recent_runs(store: Store, limit: int = 50) -> list[HistoryRecord]:
    """The latest measured runs, newest first: a plain read (no embedding model)."""
    rows = await store.fetchall(f"{SELECT_RUNS} ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                                (limit,))
    return [run_from_row(r) for r in rows]
