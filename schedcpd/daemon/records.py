"""What the daemon remembers: proposals, deployments, the audit log and its own settings.

Plain dataclasses and the SQL behind them. Each state change is one transaction, written
before the action it describes is taken (intent first), so a SIGKILL at any point leaves
records that the next start can reconcile with what the kernel actually runs.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from schedcpd.store import Row, Store

LIVE_STATES = ("attaching", "canary", "good")


@dataclass(frozen=True)
class Proposal:
    id: str
    created_at: float
    policy: str
    params: dict[str, Any]
    object_sha256: str
    object_path: str
    token: str
    rationale: str
    status: str = "pending"
    decided_by: str = ""
    decided_at: float | None = None
    note: str = ""
    expires_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "policy": self.policy,
                "params": self.params, "object_sha256": self.object_sha256,
                "rationale": self.rationale, "status": self.status,
                "decided_by": self.decided_by, "decided_at": self.decided_at,
                "note": self.note, "expires_at": self.expires_at}


@dataclass(frozen=True)
class Deployment:
    id: int
    proposal_id: str | None
    policy: str
    params: dict[str, Any]
    object_sha256: str
    object_path: str
    token: str
    target: str
    state: str
    cause: str
    baseline: float | None
    started_at: float
    ended_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "proposal_id": self.proposal_id, "policy": self.policy,
                "params": self.params, "object_sha256": self.object_sha256,
                "target": self.target, "state": self.state, "cause": self.cause,
                "baseline": self.baseline, "started_at": self.started_at,
                "ended_at": self.ended_at}


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    action: str
    actor: str
    subject: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "action": self.action, "actor": self.actor,
                "subject": self.subject, "reason": self.reason, "details": self.details}


_P_COLS = ("id, created_at, policy, params, object_sha256, object_path, token, rationale, "
           "status, decided_by, decided_at, note, expires_at")
_D_COLS = ("id, proposal_id, policy, params, object_sha256, object_path, token, target, state, "
           "cause, baseline, started_at, ended_at")


@dataclass(frozen=True)
class EpisodeRow:
    """An episode as stored: its outcome, what it spent, and its whole record."""

    id: str
    target: str
    backend: str
    state: str
    detail: str
    stop_reason: str
    started_at: float
    ended_at: float | None
    iterations: int
    wall_s: float
    llm_calls: int
    tokens: int
    cost: float
    record: dict[str, Any]

    def as_dict(self, with_record: bool = False) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "record"}
        if with_record:
            d["record"] = self.record
        return d


_E_COLS = ("id, target, backend, state, detail, stop_reason, started_at, ended_at, "
           "iterations, wall_s, llm_calls, tokens, cost, record")


def _episode(r: Row) -> EpisodeRow:
    return EpisodeRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                      float(r[6]), None if r[7] is None else float(r[7]), int(r[8]),
                      float(r[9]), int(r[10]), int(r[11]), float(r[12]), json.loads(r[13]))


def _proposal(r: Row) -> Proposal:
    return Proposal(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                    r[10], r[11], r[12])


def _deployment(r: Row) -> Deployment:
    return Deployment(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                      r[10], r[11], r[12])


class DaemonRecords:
    """The daemon's tables in the shared store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- proposals ---
    async def add_proposal(self, *, policy: str, params: dict[str, Any], object_sha256: str,
                           object_path: str, token: str, rationale: str,
                           timeout_s: float | None, actor: str) -> Proposal:
        now = time.time()
        p = Proposal(uuid.uuid4().hex[:12], now, policy, dict(params), object_sha256,
                     object_path, token, rationale,
                     expires_at=now + timeout_s if timeout_s else None)
        async with self.store.transaction() as db:
            await db.execute(f"INSERT INTO proposals ({_P_COLS}) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (p.id, p.created_at, p.policy, json.dumps(p.params),
                              p.object_sha256, p.object_path, p.token, p.rationale, p.status,
                              "", None, "", p.expires_at))
            await _audit(db, "propose", actor, p.id, rationale,
                         {"policy": policy, "params": params})
        return p

    async def proposal(self, pid: str) -> Proposal | None:
        r = await self.store.fetchone(f"SELECT {_P_COLS} FROM proposals WHERE id = ?", (pid,))
        return _proposal(r) if r else None

    async def proposals(self, status: str | None = None, limit: int = 100) -> list[Proposal]:
        where, args = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
        rows = await self.store.fetchall(
            f"SELECT {_P_COLS} FROM proposals {where} ORDER BY created_at DESC LIMIT ?", args)
        return [_proposal(r) for r in rows]

    async def decide(self, pid: str, *, status: str, actor: str, note: str,
                     expect: tuple[str, ...] = ("pending",)) -> Proposal | None:
        """Move a proposal on, only from an expected status; None if it was not there."""
        async with self.store.transaction() as db:
            cur = await db.execute(
                f"UPDATE proposals SET status = ?, decided_by = ?, decided_at = ?, note = ? "
                f"WHERE id = ? AND status IN ({', '.join('?' * len(expect))})",
                (status, actor, time.time(), note, pid, *expect))
            if cur.rowcount != 1:
                return None
            await _audit(db, status, actor, pid, note, {})
        return await self.proposal(pid)

    # --- deployments ---
    async def start_deployment(self, *, proposal_id: str | None, policy: str,
                               params: dict[str, Any], object_sha256: str, object_path: str,
                               token: str, target: str, actor: str, reason: str) -> Deployment:
        async with self.store.transaction() as db:
            cur = await db.execute(
                f"INSERT INTO deployments ({_D_COLS}) VALUES "
                "(NULL, ?, ?, ?, ?, ?, ?, ?, 'attaching', '', NULL, ?, NULL)",
                (proposal_id, policy, json.dumps(params), object_sha256, object_path, token,
                 target, time.time()))
            did = cur.lastrowid
            await _audit(db, "deploy", actor, policy, reason,
                         {"deployment": did, "proposal": proposal_id, "params": params})
        d = await self.deployment(int(did or 0))
        assert d is not None
        return d

    async def deployment(self, did: int) -> Deployment | None:
        r = await self.store.fetchone(f"SELECT {_D_COLS} FROM deployments WHERE id = ?", (did,))
        return _deployment(r) if r else None

    async def deployments(self, states: tuple[str, ...] | None = None,
                          limit: int = 100) -> list[Deployment]:
        if states:
            rows = await self.store.fetchall(
                f"SELECT {_D_COLS} FROM deployments WHERE state IN "
                f"({', '.join('?' * len(states))}) ORDER BY id DESC LIMIT ?", (*states, limit))
        else:
            rows = await self.store.fetchall(
                f"SELECT {_D_COLS} FROM deployments ORDER BY id DESC LIMIT ?", (limit,))
        return [_deployment(r) for r in rows]

    async def set_deployment(self, did: int, *, state: str, cause: str = "",
                             baseline: float | None = None, actor: str = "daemon",
                             audit_action: str = "") -> None:
        ended = None if state in LIVE_STATES else time.time()
        async with self.store.transaction() as db:
            await db.execute(
                "UPDATE deployments SET state = ?, cause = CASE WHEN ? = '' THEN cause ELSE ? "
                "END, baseline = COALESCE(?, baseline), ended_at = COALESCE(?, ended_at) "
                "WHERE id = ?", (state, cause, cause, baseline, ended, did))
            if audit_action:
                await _audit(db, audit_action, actor, str(did), cause, {"state": state})

    async def last_good(self) -> Deployment | None:
        """The most recent deployment that survived its canary window."""
        v = await self.setting("last_good")
        return await self.deployment(int(v)) if v else None

    async def set_last_good(self, did: int | None) -> None:
        await self.set_setting("last_good", "" if did is None else str(did))

    # --- verdict cache ---
    async def remember_verified(self, *, object_sha256: str, params: dict[str, Any],
                                kernel: str, policy: str, token: str, object_path: str,
                                summary: str) -> None:
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO verified_objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (object_sha256, json.dumps(params, sort_keys=True), kernel, policy, token,
                 object_path, summary, time.time()))

    async def verified(self, object_sha256: str, params: dict[str, Any],
                       kernel: str) -> tuple[str, str, str] | None:
        """(token, object_path, summary) of an earlier pass, if there was one."""
        r = await self.store.fetchone(
            "SELECT token, object_path, summary FROM verified_objects WHERE "
            "object_sha256 = ? AND params = ? AND kernel = ?",
            (object_sha256, json.dumps(params, sort_keys=True), kernel))
        return (r[0], r[1], r[2]) if r else None

    # --- episodes ---
    async def save_episode(self, ep: EpisodeRow) -> None:
        """Insert or update one episode (written when it starts and when it ends)."""
        async with self.store.transaction() as db:
            await db.execute(
                f"INSERT INTO episodes ({_E_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?) ON CONFLICT(id) DO UPDATE SET backend = excluded.backend, state = "
                "excluded.state, detail = "
                "excluded.detail, stop_reason = excluded.stop_reason, ended_at = "
                "excluded.ended_at, iterations = excluded.iterations, wall_s = "
                "excluded.wall_s, llm_calls = excluded.llm_calls, tokens = excluded.tokens, "
                "cost = excluded.cost, record = excluded.record",
                (ep.id, ep.target, ep.backend, ep.state, ep.detail, ep.stop_reason,
                 ep.started_at, ep.ended_at, ep.iterations, ep.wall_s, ep.llm_calls,
                 ep.tokens, ep.cost, json.dumps(ep.record, default=str)))

    async def episodes(self, limit: int = 50) -> list[EpisodeRow]:
        rows = await self.store.fetchall(
            f"SELECT {_E_COLS} FROM episodes ORDER BY started_at DESC LIMIT ?", (limit,))
        return [_episode(r) for r in rows]

    async def episode(self, eid: str) -> EpisodeRow | None:
        r = await self.store.fetchone(f"SELECT {_E_COLS} FROM episodes WHERE id = ?", (eid,))
        return _episode(r) if r else None

    async def end_running_episodes(self, why: str) -> int:
        """A restarted daemon runs no episode: the ones on record as running ended."""
        async with self.store.transaction() as db:
            cur = await db.execute(
                "UPDATE episodes SET state = 'cancelled', detail = ?, ended_at = ? "
                "WHERE state = 'running'", (why, time.time()))
            return int(cur.rowcount or 0)

    # --- audit and settings ---
    async def audit(self, action: str, actor: str, subject: str, reason: str,
                    details: dict[str, Any] | None = None) -> None:
        async with self.store.transaction() as db:
            await _audit(db, action, actor, subject, reason, details or {})

    async def audit_log(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        where, args = ("WHERE action = ?", (action, limit)) if action else ("", (limit,))
        rows = await self.store.fetchall(
            "SELECT id, at, action, actor, subject, reason, details FROM audit "
            f"{where} ORDER BY id DESC LIMIT ?", args)
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    async def setting(self, key: str) -> str:
        return str(await self.store.fetchval(
            "SELECT value FROM daemon_settings WHERE key = ?", (key,)) or "")

    async def set_setting(self, key: str, value: str) -> None:
        async with self.store.transaction() as db:
            await db.execute("INSERT INTO daemon_settings VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (key, value))


async def _audit(db: Any, action: str, actor: str, subject: str, reason: str,
                 details: dict[str, Any]) -> None:
    await db.execute("INSERT INTO audit (at, action, actor, subject, reason, details) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (time.time(), action, actor, subject, reason, json.dumps(details)))
