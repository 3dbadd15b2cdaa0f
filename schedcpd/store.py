"""The project's one SQLite database: WAL, foreign keys, versioned migrations at open.

Every component that persists something (the Policy Repository, later the audit log,
proposals and episodes) keeps its tables here, so one file holds the machine's whole memory
and one transaction can span components.

Adding a migration
------------------
Append a ``Migration`` to ``MIGRATIONS`` with the next version number; never edit or
reorder one that has shipped, because databases in the field have already applied it.
``sql`` is a script of statements (triggers allowed); ``apply`` is an optional async
function for data migrations that SQL alone cannot express. Each migration runs in its own
``BEGIN IMMEDIATE`` transaction together with its row in ``schema_migrations``, so a crash
mid-migration leaves the database at the previous version and the next open retries it. A
database newer than this code (a version it does not know) is refused rather than guessed at.

Connections
-----------
A ``Store`` holds two connections: a writer, used only inside ``transaction()`` under an
asyncio lock (so coroutines never interleave statements in one transaction), and a reader
for everything else. Under WAL the reader sees the last committed state and never waits
for the writer, and other processes may open the same file at the same time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from schedcpd import paths
from schedcpd.daemon.schema import DAEMON_TABLES, EPISODE_TABLES

Params = Sequence[Any] | dict[str, Any]
Row = tuple[Any, ...]
BUSY_TIMEOUT_MS = 10_000


class StoreError(RuntimeError):
    """The database cannot be opened or migrated."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = ""
    apply: Callable[[aiosqlite.Connection], Awaitable[None]] | None = None


# Version 1: the Policy Repository's policies, their search data and the embedding cache.
_V1_POLICIES = """
CREATE TABLE policies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    workloads TEXT NOT NULL,        -- JSON list of strings
    avoid TEXT NOT NULL,            -- JSON list of strings
    tags TEXT NOT NULL,             -- JSON list of strings
    kernel_features TEXT NOT NULL,  -- JSON list of strings
    tunables TEXT NOT NULL,         -- JSON list of objects
    source TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    content_hash TEXT NOT NULL,     -- metadata and source together: what the seeder compares
    object_hash TEXT,               -- of the compiled BPF object, once built
    parent_id INTEGER REFERENCES policies(id) ON DELETE RESTRICT,
    provenance TEXT NOT NULL CHECK (provenance IN ('library', 'agent', 'user')),
    status TEXT NOT NULL CHECK (status IN ('candidate', 'verified', 'promoted', 'retired')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE embeddings (
    text_hash TEXT PRIMARY KEY,     -- sha256 of model id and text
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL            -- float32, L2-normalised
);
CREATE TABLE policy_vectors (
    policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    text_hash TEXT NOT NULL REFERENCES embeddings(text_hash),
    PRIMARY KEY (policy_id, field)
);
CREATE VIRTUAL TABLE policies_fts USING fts5(
    name, description, algorithm, workloads, tags,
    content='policies', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER policies_fts_ai AFTER INSERT ON policies BEGIN
    INSERT INTO policies_fts(rowid, name, description, algorithm, workloads, tags)
    VALUES (new.id, new.name, new.description, new.algorithm, new.workloads, new.tags);
END;
CREATE TRIGGER policies_fts_ad AFTER DELETE ON policies BEGIN
    INSERT INTO policies_fts(policies_fts, rowid, name, description, algorithm, workloads, tags)
    VALUES ('delete', old.id, old.name, old.description, old.algorithm, old.workloads, old.tags);
END;
CREATE TRIGGER policies_fts_au AFTER UPDATE ON policies BEGIN
    INSERT INTO policies_fts(policies_fts, rowid, name, description, algorithm, workloads, tags)
    VALUES ('delete', old.id, old.name, old.description, old.algorithm, old.workloads, old.tags);
    INSERT INTO policies_fts(rowid, name, description, algorithm, workloads, tags)
    VALUES (new.id, new.name, new.description, new.algorithm, new.workloads, new.tags);
END;
-- A counter bumped by every change to the searchable data, so a search index cached in
-- memory (in this or another process) knows when to reload.
CREATE TABLE generations (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO generations VALUES ('policies', 0);
CREATE TRIGGER policies_gen_ai AFTER INSERT ON policies BEGIN
    UPDATE generations SET value = value + 1 WHERE name = 'policies';
END;
CREATE TRIGGER policies_gen_au AFTER UPDATE ON policies BEGIN
    UPDATE generations SET value = value + 1 WHERE name = 'policies';
END;
CREATE TRIGGER policies_gen_ad AFTER DELETE ON policies BEGIN
    UPDATE generations SET value = value + 1 WHERE name = 'policies';
END;
CREATE TRIGGER policy_vectors_gen AFTER INSERT ON policy_vectors BEGIN
    UPDATE generations SET value = value + 1 WHERE name = 'policies';
END;
"""

# Version 2: measured history (runs against workload profiles) and status changes.
_V2_HISTORY = """
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    characteristics TEXT NOT NULL,  -- JSON object of numbers
    text_hash TEXT REFERENCES embeddings(text_hash)
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    profile_id INTEGER NOT NULL REFERENCES profiles(id),
    params TEXT NOT NULL,           -- JSON object
    metric TEXT NOT NULL,
    lower_is_better INTEGER NOT NULL CHECK (lower_is_better IN (0, 1)),
    baseline_value REAL,
    value REAL,
    ratio REAL,
    ci_low REAL,
    ci_high REAL,
    samples INTEGER NOT NULL CHECK (samples >= 0),
    outcome TEXT NOT NULL CHECK (outcome IN ('improved', 'neutral', 'regressed', 'failed')),
    reason TEXT NOT NULL,
    host_kernel TEXT NOT NULL,
    host_cpus INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX runs_policy_time ON runs(policy_id, created_at);
CREATE INDEX runs_profile ON runs(profile_id, outcome);
CREATE TABLE status_changes (
    id INTEGER PRIMARY KEY,
    policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,         -- JSON: run ids, verifier verdicts, ...
    actor TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX status_changes_policy ON status_changes(policy_id, created_at);
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "policies, embeddings, keyword index", _V1_POLICIES),
    Migration(2, "run history, workload profiles, status changes", _V2_HISTORY),
    Migration(3, "daemon: proposals, deployments, audit log, settings", DAEMON_TABLES),
    Migration(4, "sched-agent episodes and their budgets", EPISODE_TABLES),
]


def default_path() -> Path:
    return paths.state_dir() / "schedcp.db"


def split_statements(script: str) -> list[str]:
    """The script's statements, each ending in ``;`` (trigger bodies keep their inner ones).

    ``executescript`` would commit the open transaction first, so migrations run their
    statements one by one inside their own transaction instead.
    """
    out: list[str] = []
    buf = ""
    pieces = script.split(";")
    for i, piece in enumerate(pieces):
        buf += piece + (";" if i < len(pieces) - 1 else "")
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;"):
        raise StoreError(f"incomplete SQL statement at the end of a migration: {buf.strip()!r}")
    return out


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, much faster
    return conn


class Store:
    """An open database. Use ``await Store.open(path)`` or ``async with await Store.open()``."""

    def __init__(self, path: Path, writer: aiosqlite.Connection,
                 reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()  # binds to a loop on first use, not here

    @classmethod
    async def open(cls, path: Path | None = None,
                   migrations: Sequence[Migration] = MIGRATIONS) -> Store:
        path = path or default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        try:
            mode = await (await writer.execute("PRAGMA journal_mode = WAL")).fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL (journal_mode={mode})")
            await migrate(writer, migrations, path)
            reader = await _connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer, inside ``BEGIN IMMEDIATE``; commits on success, rolls back on error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._reader.execute(sql, params) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._reader.execute(sql, params) as cur:
            row = await cur.fetchone()
        return None if row is None else tuple(row)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def schema_version(self) -> int:
        return int(await self.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def integrity_problems(self) -> list[str]:
        """Empty when SQLite's integrity and foreign-key checks both pass."""
        problems = [str(r[0]) for r in await self.fetchall("PRAGMA integrity_check")]
        problems = [p for p in problems if p != "ok"]
        fk = await self.fetchall("PRAGMA foreign_key_check")
        problems += [f"foreign key: {r}" for r in fk]
        return problems


async def migrate(conn: aiosqlite.Connection, migrations: Sequence[Migration],
                  where: Path) -> list[int]:
    """Apply the migrations this database lacks, in order; the versions applied."""
    _check_sequence(migrations)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    async with conn.execute("SELECT version FROM schema_migrations") as cur:
        have = {int(r[0]) for r in await cur.fetchall()}
    known = {m.version for m in migrations}
    if unknown := sorted(have - known):
        raise StoreError(f"{where}: schema versions {unknown} are newer than this schedcp; "
                         "upgrade schedcp instead of opening the database with an old one")
    done: list[int] = []
    for m in migrations:
        if m.version in have:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            async with conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                                    (m.version,)) as cur:
                if await cur.fetchone():
                    await conn.execute("ROLLBACK")
                    continue
            for stmt in split_statements(m.sql):
                await conn.execute(stmt)
            if m.apply is not None:
                await m.apply(conn)
            await conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                               (m.version, m.name, time.time()))
        except BaseException as exc:
            await conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{where}: migration {m.version} ({m.name}) failed: {exc}") \
                    from exc
            raise
        await conn.execute("COMMIT")
        done.append(m.version)
    return done


def _check_sequence(migrations: Iterable[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")
