"""A policy's status and how it changes, each change recorded with its evidence.

    candidate --verify--> verified --promote--> promoted
        \\                   \\                     \\
         `------------------`---------------------`--retire--> retired --reinstate--> candidate

Library policies are reviewed code and enter as promoted. A generated (agent) or imported
(user) policy is promoted only when it is verified and cites runs of its own that show a
significant gain measured over at least ``MIN_SAMPLES`` samples, and none of the runs it
cites failed or regressed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from schedcpd.repository.records import RepositoryError, Status, StatusChange
from schedcpd.store import Store

MIN_SAMPLES = 5
ALLOWED: dict[str, frozenset[str]] = {
    "candidate": frozenset({"verified", "retired"}),
    "verified": frozenset({"promoted", "retired"}),
    "promoted": frozenset({"retired"}),
    "retired": frozenset({"candidate"}),
}


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise RepositoryError("a status change needs a reason (1-2000 characters)")
    return reason.strip()


async def _current(tx: aiosqlite.Connection, name: str) -> tuple[int, Status, str]:
    async with tx.execute("SELECT id, status, provenance FROM policies WHERE name = ?",
                          (name,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise RepositoryError(f"no policy named {name!r} in the repository")
    return int(row[0]), row[1], row[2]


async def write_change(tx: aiosqlite.Connection, pid: int, old: Status | None, new: Status,
                       reason: str, evidence: Mapping[str, Any], actor: str,
                       now: float) -> None:
    await tx.execute("UPDATE policies SET status = ?, updated_at = ? WHERE id = ?",
                     (new, now, pid))
    await tx.execute(
        "INSERT INTO status_changes (policy_id, from_status, to_status, reason, evidence, "
        "actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (pid, old, new, reason, json.dumps(evidence, sort_keys=True), actor, now))


async def _check_gains(tx: aiosqlite.Connection, pid: int, name: str,
                       run_ids: Sequence[int]) -> None:
    if not run_ids or not all(isinstance(r, int) and not isinstance(r, bool) for r in run_ids):
        raise RepositoryError(f"promoting {name} needs the ids of the runs that show its gains")
    marks = ",".join("?" * len(run_ids))
    async with tx.execute(
            f"SELECT id, policy_id, outcome, samples FROM runs WHERE id IN ({marks})",
            list(run_ids)) as cur:
        rows = {int(r[0]): r for r in await cur.fetchall()}
    for rid in run_ids:
        if rid not in rows:
            raise RepositoryError(f"run {rid} does not exist")
        if rows[rid][1] != pid:
            raise RepositoryError(f"run {rid} measured another policy, not {name}")
    bad = [rid for rid, r in rows.items() if r[2] in ("failed", "regressed")]
    if bad:
        raise RepositoryError(f"cannot promote {name}: cited runs {sorted(bad)} failed or "
                              "regressed")
    if not any(r[2] == "improved" and r[3] >= MIN_SAMPLES for r in rows.values()):
        raise RepositoryError(
            f"cannot promote {name}: no cited run shows a significant gain over at least "
            f"{MIN_SAMPLES} samples")


class Promotion:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _change(self, name: str, new: Status, reason: str,
                      evidence: Mapping[str, Any], actor: str,
                      run_ids: Sequence[int] = ()) -> StatusChange:
        reason = _reason(reason)
        if not isinstance(actor, str) or not actor.strip():
            raise RepositoryError("actor must name who made the change")
        now = time.time()
        async with self.store.transaction() as tx:
            pid, old, provenance = await _current(tx, name)
            if new not in ALLOWED[old]:
                raise RepositoryError(f"{name} is {old}; it cannot become {new} "
                                      f"(allowed: {', '.join(sorted(ALLOWED[old]))})")
            if new == "promoted" and provenance != "library":
                await _check_gains(tx, pid, name, run_ids)
            ev = {**evidence, **({"runs": list(run_ids)} if run_ids else {})}
            await write_change(tx, pid, old, new, reason, ev, actor, now)
        return StatusChange(name, old, new, reason, ev, actor, now)

    async def verify(self, name: str, verdict: Mapping[str, Any], *, reason: str,
                     actor: str = "verifier") -> StatusChange:
        """candidate -> verified, citing the Execution Verifier's verdict."""
        if not isinstance(verdict, Mapping) or not verdict:
            raise RepositoryError("verification needs the verifier's verdict as evidence")
        try:
            json.dumps(verdict)
        except (TypeError, ValueError) as exc:
            raise RepositoryError(f"verdict must be JSON-serialisable: {exc}") from None
        return await self._change(name, "verified", reason, {"verdict": dict(verdict)}, actor)

    async def promote(self, name: str, run_ids: Sequence[int], *, reason: str,
                      actor: str = "agent") -> StatusChange:
        return await self._change(name, "promoted", reason, {}, actor, list(run_ids))

    async def retire(self, name: str, *, reason: str, run_ids: Sequence[int] = (),
                     actor: str = "agent") -> StatusChange:
        if not all(isinstance(r, int) and not isinstance(r, bool) for r in run_ids):
            raise RepositoryError("run ids must be integers")
        return await self._change(name, "retired", reason, {}, actor, list(run_ids))

    async def reinstate(self, name: str, *, reason: str, actor: str = "user") -> StatusChange:
        return await self._change(name, "candidate", reason, {}, actor)

    async def changes(self, name: str) -> list[StatusChange]:
        rows = await self.store.fetchall(
            "SELECT p.name, c.from_status, c.to_status, c.reason, c.evidence, c.actor, "
            "c.created_at FROM status_changes c JOIN policies p ON p.id = c.policy_id "
            "WHERE p.name = ? ORDER BY c.id", (name,))
        return [StatusChange(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])
                for r in rows]
