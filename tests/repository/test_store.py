"""The store on real SQLite files: migrations, concurrent readers, crashes mid-write."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiosqlite
import pytest

from schedcpd.store import MIGRATIONS, Migration, Store, StoreError, split_statements

PY = sys.executable
# A scratch table for the tests, added the way any component adds its tables.
SCRATCH = Migration(len(MIGRATIONS) + 1, "test scratch table",
                    "CREATE TABLE scratch (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, "
                    "payload BLOB NOT NULL);")
WITH_SCRATCH = [*MIGRATIONS, SCRATCH]


async def tables(store: Store) -> set[str]:
    return {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_migrates_from_empty(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db") as s:
        assert await s.schema_version() == len(MIGRATIONS)
        assert {"policies", "embeddings", "policy_vectors", "runs", "profiles",
                "status_changes", "schema_migrations"} <= await tables(s)
        assert (await s.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await s.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        assert await s.integrity_problems() == []


async def test_migrates_an_older_database_without_loss(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    async with await Store.open(db, MIGRATIONS[:1]) as old:  # a version-1 database
        assert await old.schema_version() == 1
        assert "runs" not in await tables(old)
        async with old.transaction() as tx:
            await tx.execute(
                "INSERT INTO policies (name, description, algorithm, workloads, avoid, tags, "
                "kernel_features, tunables, source, source_hash, content_hash, provenance, "
                "status, created_at, updated_at) VALUES ('oldpol', 'd', 'a', '[\"w\"]', '[]', "
                "'[]', '[\"sched_ext\"]', '[]', 'src', 'h', 'c', 'library', 'promoted', 1, 1)")
    async with await Store.open(db) as new:
        assert await new.schema_version() == len(MIGRATIONS)
        assert await new.fetchall("SELECT name, status FROM policies") == [("oldpol", "promoted")]
        async with new.transaction() as tx:  # the new tables work with the old rows
            await tx.execute("INSERT INTO profiles (fingerprint, description, characteristics) "
                             "VALUES ('fp', 'x', '{}')")
            await tx.execute(
                "INSERT INTO runs (policy_id, profile_id, params, metric, lower_is_better, "
                "samples, outcome, reason, host_kernel, host_cpus, created_at) VALUES "
                "(1, 1, '{}', 'm', 1, 0, 'failed', 'r', 'k', 2, 1)")
        assert await new.integrity_problems() == []
        names = await new.fetchall("SELECT version, name FROM schema_migrations ORDER BY 1")
        assert [v for v, _ in names] == list(range(1, len(MIGRATIONS) + 1))


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db", WITH_SCRATCH):
        pass
    with pytest.raises(StoreError, match="newer than this schedcp"):
        await Store.open(tmp_path / "db")


async def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    bad = Migration(len(MIGRATIONS) + 1, "broken",
                    "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(StoreError, match=r"migration .* failed"):
        await Store.open(tmp_path / "db", [*MIGRATIONS, bad])
    async with await Store.open(tmp_path / "db") as s:
        assert await s.schema_version() == len(MIGRATIONS)
        assert "half" not in await tables(s)  # the first statement was rolled back too


async def test_python_data_migration_runs_in_its_transaction(tmp_path: Path) -> None:
    async def fill(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO scratch (batch, payload) VALUES (7, x'00')")

    data = Migration(SCRATCH.version + 1, "fill scratch", apply=fill)
    async with await Store.open(tmp_path / "db", [*WITH_SCRATCH, data]) as s:
        assert await s.fetchall("SELECT batch FROM scratch") == [(7,)]


def test_split_keeps_trigger_bodies_whole() -> None:
    stmts = split_statements("CREATE TABLE a(x); CREATE TRIGGER t AFTER INSERT ON a BEGIN "
                             "UPDATE a SET x = 1; DELETE FROM a WHERE x = 2; END; SELECT 1;")
    assert len(stmts) == 3 and stmts[1].count(";") == 3
    with pytest.raises(StoreError, match="incomplete"):
        split_statements("SELECT 1; CREATE TABLE b(")


async def test_rollback_on_error_keeps_nothing(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db", WITH_SCRATCH) as s:
        with pytest.raises(RuntimeError):
            async with s.transaction() as tx:
                await tx.execute("INSERT INTO scratch (batch, payload) VALUES (1, x'00')")
                raise RuntimeError("boom")
        assert await s.fetchval("SELECT COUNT(*) FROM scratch") == 0


WRITER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.repository.test_store import WITH_SCRATCH
    from schedcpd.store import Store

    async def main():
        async with await Store.open(Path(sys.argv[1]), WITH_SCRATCH) as s:
            for batch in range(int(sys.argv[2])):
                async with s.transaction() as tx:
                    await tx.executemany(
                        "INSERT INTO scratch (batch, payload) VALUES (?, ?)",
                        [(batch, bytes(int(sys.argv[3]))) for _ in range(10)])
                print(batch, flush=True)
            if sys.argv[4] == "hang":
                async with s.transaction() as tx:
                    for i in range(4000):  # ~16 MB: far beyond the page cache, so pages spill
                        await tx.execute("INSERT INTO scratch (batch, payload) VALUES (-1, ?)",
                                         (bytes(4096),))
                    print("MID-WRITE", flush=True)
                    await asyncio.sleep(60)
    asyncio.run(main())
""")


def start_writer(db: Path, batches: int, payload: int, mode: str) -> subprocess.Popen[str]:
    root = str(Path(__file__).resolve().parents[2])
    return subprocess.Popen([PY, "-c", WRITER.format(root=root), str(db), str(batches),
                             str(payload), mode], stdout=subprocess.PIPE, text=True)


async def test_readers_see_only_whole_transactions_while_a_process_writes(
        tmp_path: Path) -> None:
    db = tmp_path / "db"
    async with await Store.open(db, WITH_SCRATCH) as reader:
        proc = start_writer(db, 300, 2000, "done")
        seen, last = set(), 0
        try:
            while proc.poll() is None:
                n = await reader.fetchval("SELECT COUNT(*) FROM scratch")
                per_batch = await reader.fetchall(
                    "SELECT COUNT(*) FROM scratch GROUP BY batch HAVING COUNT(*) != 10")
                assert n % 10 == 0 and per_batch == []  # never half a transaction
                assert n >= last  # never goes back
                last = n
                seen.add(n)
                await asyncio.sleep(0.002)
        finally:
            proc.wait(timeout=60)
        assert proc.returncode == 0
        assert await reader.fetchval("SELECT COUNT(*) FROM scratch") == 3000
        assert len(seen) > 3  # the reads really overlapped the writes


async def test_sigkill_in_the_middle_of_a_write_leaves_the_database_consistent(
        tmp_path: Path) -> None:
    db = tmp_path / "db"
    proc = start_writer(db, 5, 100, "hang")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(6)]
        assert lines[-1] == "MID-WRITE", lines
        wal = Path(f"{db}-wal")
        assert wal.stat().st_size > 4_000_000  # uncommitted pages really reached the disk
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    async with await Store.open(db, WITH_SCRATCH) as s:
        assert await s.integrity_problems() == []
        assert await s.fetchval("SELECT COUNT(*) FROM scratch WHERE batch = -1") == 0
        assert await s.fetchval("SELECT COUNT(*) FROM scratch") == 50  # the committed rows
        async with s.transaction() as tx:  # and it is writable again
            await tx.execute("INSERT INTO scratch (batch, payload) VALUES (99, x'00')")


async def test_two_stores_on_one_file_both_write(tmp_path: Path) -> None:
    db = tmp_path / "db"
    async with await Store.open(db, WITH_SCRATCH) as a, \
            await Store.open(db, WITH_SCRATCH) as b:

        async def write(s: Store, batch: int) -> None:
            for _ in range(20):
                async with s.transaction() as tx:
                    await tx.execute("INSERT INTO scratch (batch, payload) VALUES (?, x'00')",
                                     (batch,))

        t = time.monotonic()
        await asyncio.gather(write(a, 1), write(b, 2), write(a, 3))
        assert time.monotonic() - t < 60
        assert await a.fetchval("SELECT COUNT(*) FROM scratch") == 60


ADDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from schedcpd.repository import Repository
    from schedcpd.store import Store

    async def main():
        async with await Store.open(Path(sys.argv[1])) as s:
            repo = await Repository.open(s, policies_root=Path(sys.argv[2]))
            for i in range(10_000):
                await repo.add_generated(f"// variant {i}\\n", "fifo", name=f"gen_{i}",
                                         workloads=[f"workload number {i}", f"batch {i}"])
                print(i, flush=True)
    asyncio.run(main())
""")


async def test_sigkill_during_repository_writes_leaves_whole_policies(
        tmp_path: Path, library_copy: Path) -> None:
    """A real repository writer (policy row, vectors, FTS, status change: one transaction
    each) killed at an arbitrary moment: every policy left behind is complete."""
    db = tmp_path / "db"
    proc = subprocess.Popen([PY, "-c", ADDER, str(db), str(library_copy)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(8):
            assert proc.stdout.readline()
        time.sleep(0.013)  # land somewhere inside the next writes
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    async with await Store.open(db) as s:
        assert await s.integrity_problems() == []
        gens = await s.fetchall("SELECT id FROM policies WHERE name LIKE 'gen_%'")
        assert len(gens) >= 8
        # summary + 2 workloads + fifo's 2 avoid lines, and the status change, per policy
        incomplete = await s.fetchall(
            "SELECT p.name FROM policies p WHERE p.name LIKE 'gen_%' AND ("
            "(SELECT COUNT(*) FROM policy_vectors v WHERE v.policy_id = p.id) != 5 OR "
            "(SELECT COUNT(*) FROM status_changes c WHERE c.policy_id = p.id) != 1)")
        assert incomplete == []
        fts = await s.fetchval("SELECT COUNT(*) FROM policies_fts WHERE policies_fts MATCH "
                               "'workloads : number'")
        assert fts == len(gens)
        async with s.transaction() as tx:  # raises if the keyword index disagrees with rows
            await tx.execute("INSERT INTO policies_fts(policies_fts, rank) "
                             "VALUES ('integrity-check', 1)")
