"""Policy Repository search at scale: 10,000 synthetic policies and 100,000 history rows.

Measures, in one run on one fresh database:
- model load time and the process RSS it adds;
- top-5 search latency p50/p99 (query embedding included; every query is distinct, so the
  query-vector cache never hits), against two baselines measured in the same run on the
  same queries: the FTS5 keyword query alone and the query embedding alone;
- best-policy-for-a-profile latency over the 100,000 runs;
- the cost of reloading the in-memory vector index after a change;
- the float32 model's query embedding, for the int8 model the repository uses.
Target: search p99 <= 20 ms once the model is loaded.

Synthetic policies are built from pools of real-sounding phrases (500 summaries, 600
workload lines), so the embedding cache computes ~1,100 texts instead of 40,000; they are
written through the repository's own insert path. History rows are bulk-inserted with SQL
(the same columns ``record_run`` writes) to keep set-up short.

    .venv/bin/python benchmarks/repository.py [--policies 10000] [--runs 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from schedcpd.repository import Profile, Repository
from schedcpd.repository.catalog import PolicyDraft, insert_policy
from schedcpd.repository.embeddings import Embedder, save_vectors, vectors_for
from schedcpd.store import Store

TARGET_P99_MS = 20.0
SUBJECTS = ["compile jobs", "game frames", "audio buffers", "database queries", "web requests",
            "video encodes", "ML training steps", "test suites", "container builds",
            "batch ETL stages", "RPC handlers", "log shippers", "render tasks", "CI runners",
            "JVM threads", "Go goroutines", "Python workers", "message consumers",
            "cron jobs", "scientific simulations"]
GOALS = ["finish sooner", "stay responsive", "meet deadlines", "use less power",
         "share the CPU fairly", "keep caches warm", "avoid stutter", "raise throughput",
         "cut tail latency", "stop starving each other"]
MECHS = ["a global FIFO", "per-CPU queues with stealing", "virtual-time ordering",
         "deadline ordering", "wakeup boosts", "long slices", "short slices",
         "cgroup weights", "CPU packing", "runtime-ordered queues"]
QUERY_TEMPLATES = ["my {s} {g}", "{s} are slow, need to {g}", "how to make {s} {g}",
                   "{s} beside {t}: {g}", "help {s} {g} on {n} cores",
                   "{n} {s} and one long {t}"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pools(rng: random.Random) -> tuple[list[str], list[str]]:
    summaries: set[str] = set()
    while len(summaries) < 500:
        summaries.add(f"Schedules {rng.choice(SUBJECTS)} with {rng.choice(MECHS)} so they "
                      f"{rng.choice(GOALS)}; tuned for {rng.choice(SUBJECTS)}.")
    workloads: set[str] = set()
    while len(workloads) < 600:
        workloads.add(f"{rng.choice(SUBJECTS)} that must {rng.choice(GOALS)} "
                      f"beside {rng.choice(SUBJECTS)}")
    return sorted(summaries), sorted(workloads)


async def add_policies(store: Store, emb: Embedder, n: int, rng: random.Random) -> float:
    summaries, workloads = pools(rng)
    t = time.monotonic()
    vecs = await vectors_for(store, emb, [*summaries, *workloads])
    embed_s = time.monotonic() - t
    now = time.time()
    for start in range(0, n, 500):
        async with store.transaction() as tx:
            for i in range(start, min(n, start + 500)):
                s = rng.choice(summaries)
                desc, algo = s.split(" so they ", 1)
                d = PolicyDraft(
                    name=f"syn_{i:05d}", description=desc, algorithm="so they " + algo,
                    workloads=tuple(rng.sample(workloads, 3)), avoid=(rng.choice(workloads),),
                    source=f"// synthetic {i}\n",
                    tags=(rng.choice(["batch", "latency", "fair", "power"]),),
                    provenance="agent").validated()
                assert d.search_texts()["summary"] == s  # so every text is in the pool
                await insert_policy(tx, d, rng.choice(["candidate", "verified", "promoted"]),
                                    vecs, now)
    return embed_s


async def add_runs(store: Store, emb: Embedder, n: int, rng: random.Random) -> None:
    _, workloads = pools(random.Random(7))
    profiles = [Profile(w, f"fp{i:04d}", {"tasks": float(rng.randint(1, 400)),
                                          "cpu_util": rng.random()})
                for i, w in enumerate(rng.sample(workloads, 200))]
    vecs = await vectors_for(store, emb, [p.description for p in profiles])
    ids = [r[0] for r in await store.fetchall("SELECT id FROM policies")]
    async with store.transaction() as tx:
        await save_vectors(tx, vecs.values())
        await tx.executemany(
            "INSERT INTO profiles (fingerprint, description, characteristics, text_hash) "
            "VALUES (?, ?, ?, ?)",
            [(p.fingerprint, p.description, json.dumps(dict(p.characteristics)),
              vecs[p.description][0]) for p in profiles])
    prof_ids = [r[0] for r in await store.fetchall("SELECT id FROM profiles")]
    for start in range(0, n, 10_000):
        rows = []
        for _ in range(start, min(n, start + 10_000)):
            ratio = rng.lognormvariate(0, 0.15)
            lo, hi = ratio * 0.93, ratio * 1.07
            outcome = "improved" if hi < 1 else "regressed" if lo > 1 else "neutral"
            rows.append((rng.choice(ids), rng.choice(prof_ids), "{}", "makespan_s", 1, 10.0,
                         10 * ratio, ratio, lo, hi, 8, outcome, "synthetic", "7.3.4", 2,
                         time.time() - rng.random() * 1e7))
        async with store.transaction() as tx:
            await tx.executemany(
                "INSERT INTO runs (policy_id, profile_id, params, metric, lower_is_better, "
                "baseline_value, value, ratio, ci_low, ci_high, samples, outcome, reason, "
                "host_kernel, host_cpus, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def queries(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(rng.choice(QUERY_TEMPLATES).format(
            s=rng.choice(SUBJECTS), g=rng.choice(GOALS), t=rng.choice(SUBJECTS),
            n=rng.randint(2, 128)))
    return sorted(out)


async def timed(fn: Callable[[str], Awaitable[Any]], qs: list[str]) -> list[float]:
    out = []
    for q in qs:
        t = time.perf_counter()
        await fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(max(ms), 2)}


async def main(n_policies: int, n_runs: int, n_queries: int) -> dict[str, Any]:
    rng = random.Random(1)
    res: dict[str, Any] = {"policies": n_policies, "runs": n_runs, "queries": n_queries}
    rss0 = rss_mb()
    emb = Embedder()
    emb.load()
    res["model_load_s"] = round(emb.load_seconds or 0, 2)
    res["model_rss_mb"] = round(rss_mb() - rss0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        async with await Store.open(Path(tmp) / "bench.db") as store:
            repo = await Repository.open(store, emb)
            t = time.monotonic()
            res["setup_embed_s"] = round(await add_policies(store, emb, n_policies, rng), 1)
            await add_runs(store, emb, n_runs, rng)
            res["setup_total_s"] = round(time.monotonic() - t, 1)
            t = time.perf_counter()
            await repo.engine.index()
            res["index_load_ms"] = round((time.perf_counter() - t) * 1000, 1)
            res["rss_after_index_mb"] = round(rss_mb(), 1)
            res["db_mb"] = round((Path(tmp) / "bench.db").stat().st_size / 2**20, 1)
            qs = queries(n_queries * 3 + 10, rng)
            await timed(lambda q: repo.search(q, k=5), qs[:10])  # warm-up: index, allocator
            a, b, c = qs[10:10 + n_queries], qs[10 + n_queries:10 + 2 * n_queries], \
                qs[10 + 2 * n_queries:]
            res["search_top5"] = pct(await timed(lambda q: repo.search(q, k=5), a))
            res["baseline_fts_only"] = pct(await timed(repo.engine.keyword_scores, b))
            res["baseline_embed_only"] = pct(await timed(
                lambda q: emb.encode_async([q]), c))
            fp32 = Embedder(quantized=False)
            fp32.load()
            res["baseline_embed_fp32_only"] = pct(await timed(
                lambda q: fp32.encode_async([q]), c))
            s, f, e = res["search_top5"], res["baseline_fts_only"], res["baseline_embed_only"]
            res["ratio_search_to_fts_p50"] = round(s["p50_ms"] / f["p50_ms"], 2)
            res["ratio_search_to_embed_p50"] = round(s["p50_ms"] / e["p50_ms"], 2)
            res["ratio_search_to_embed_p99"] = round(s["p99_ms"] / e["p99_ms"], 2)
            profs = [Profile(q, f"bench{i}", {"tasks": 40.0}) for i, q in enumerate(a[:40])]
            it = iter(profs)
            res["best_for"] = pct(await timed(lambda _q: repo.best_for(next(it)),
                                              [p.description for p in profs]))
            res["target_p99_ms"] = TARGET_P99_MS
            res["meets_target"] = s["p99_ms"] <= TARGET_P99_MS
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    res = asyncio.run(main(args.policies, args.runs, args.queries))
    out = Path(__file__).parent / "results" / "repository.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    s, f, e = res["search_top5"], res["baseline_fts_only"], res["baseline_embed_only"]
    print(f"model (int8): load {res['model_load_s']} s, +{res['model_rss_mb']} MB RSS")
    print(f"search top-5 over {res['policies']} policies / {res['runs']} runs: "
          f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms (target p99 <= {TARGET_P99_MS} ms)")
    print(f"baselines: FTS only p50 {f['p50_ms']} ms p99 {f['p99_ms']} ms; "
          f"embedding only p50 {e['p50_ms']} ms p99 {e['p99_ms']} ms; search/embed p50 "
          f"{res['ratio_search_to_embed_p50']}x, search/FTS p50 {res['ratio_search_to_fts_p50']}x")
    print(f"float32 model embedding only: p50 {res['baseline_embed_fp32_only']['p50_ms']} ms "
          f"p99 {res['baseline_embed_fp32_only']['p99_ms']} ms")
    print(f"best_for: p50 {res['best_for']['p50_ms']} ms p99 {res['best_for']['p99_ms']} ms; "
          f"index load {res['index_load_ms']} ms")
    print(json.dumps(res))
