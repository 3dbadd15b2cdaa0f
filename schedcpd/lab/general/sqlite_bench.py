"""g-sqlite: one SQLite database (WAL mode) shared by READERS reader processes and one
writer process for SECONDS. Readers run a mix of indexed lookups and per-category
aggregates back to back and time each query; the writer commits transactions of 20
updates and one insert. Prints the readers' p50/p99 query latency and the writer's
commits per second as SCHEDCP_METRIC lines.

usage: python3 sqlite_bench.py SECONDS READERS   (in a writable working directory)
Standard library only: the lab guest runs it with the host's /usr/bin/python3.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable

ROWS, CATEGORIES, SEED = 10000, 100, 20250901


def populate(path: str) -> None:
    rng = random.Random(SEED)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, cat INTEGER, price REAL, stock INTEGER,
                            name TEXT);
        CREATE INDEX items_cat ON items (cat);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, item INTEGER, qty INTEGER, ts REAL);
    """)
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                   ((i, rng.randrange(CATEGORIES), rng.uniform(1, 500), rng.randrange(1000),
                     f"item-{i:06d}-{rng.getrandbits(48):012x}") for i in range(ROWS)))
    db.commit()
    db.close()


def reader(path: str, end: float, seed: int, out: str) -> None:
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    lat = []
    while time.monotonic() < end:
        t = time.perf_counter()
        if rng.random() < 0.7:
            ids = [rng.randrange(ROWS) for _ in range(20)]
            marks = ",".join("?" * len(ids))
            db.execute(f"SELECT id, price, stock FROM items WHERE id IN ({marks})",
                       ids).fetchall()
        else:
            db.execute("SELECT count(*), avg(price), max(name), sum(stock) FROM items "
                       "WHERE cat = ?", (rng.randrange(CATEGORIES),)).fetchone()
        lat.append(time.perf_counter() - t)
    with open(out, "w") as f:
        f.write("\n".join(f"{x:.7f}" for x in lat))


def writer(path: str, end: float, seed: int, out: str) -> None:
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=NORMAL")
    commits = 0
    while time.monotonic() < end:
        with db:
            for _ in range(20):
                db.execute("UPDATE items SET stock = stock - 1, price = price * ? WHERE id = ?",
                           (rng.uniform(0.99, 1.01), rng.randrange(ROWS)))
            db.execute("INSERT INTO orders (item, qty, ts) VALUES (?, ?, ?)",
                       (rng.randrange(ROWS), rng.randint(1, 5), time.time()))
        commits += 1
    with open(out, "w") as f:
        f.write(str(commits))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main(seconds: float, readers: int) -> int:
    path = os.path.abspath("bench.db")
    populate(path)
    print("@@measured", flush=True)
    start = time.monotonic()
    end = start + seconds
    pids = []
    for k in range(readers + 1):
        pid = os.fork()
        if pid == 0:
            try:
                role: Callable[[str, float, int, str], None] = (
                    writer if k == readers else reader)
                role(path, end, SEED + k, f"out.{k}")
                os._exit(0)
            except BaseException as exc:
                print(f"worker {k}: {exc!r}", file=sys.stderr)
                os._exit(1)
        pids.append(pid)
    failed = sum(1 for pid in pids if os.waitpid(pid, 0)[1] != 0)
    took = time.monotonic() - start
    if failed:
        print(f"{failed} worker(s) failed", file=sys.stderr)
        return 1
    lat: list[float] = []
    for k in range(readers):
        with open(f"out.{k}") as f:
            lat += [float(x) for x in f.read().split()]
    with open(f"out.{readers}") as f:
        commits = int(f.read())
    if not lat or not commits:
        print("no queries or no commits", file=sys.stderr)
        return 1
    print(f"SCHEDCP_METRIC queries {len(lat)}")
    print(f"SCHEDCP_METRIC read_p50_ms {pct(lat, 50) * 1000:.3f}")
    print(f"SCHEDCP_METRIC read_p99_ms {pct(lat, 99) * 1000:.3f}")
    print(f"SCHEDCP_METRIC commits_per_s {commits / took:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2])))
