"""Search by meaning and by keyword, fused.

Meaning: every policy is represented by several vectors (its summary and each target
workload); its semantic score is the best cosine similarity between the query and any of
them, so a query that paraphrases one listed workload finds the policy even when the rest
of its description is about something else. The vectors live in memory as one matrix,
reloaded only when the ``policies`` generation counter in the store moves (bumped by
triggers, so changes made by other processes are seen too).

Where not: a policy whose ``avoid`` lines are closer to the query than its targets loses
``AVOID_WEIGHT`` times the difference ("interactive work" in batch's avoid list keeps batch
from winning "game stutters while a compile runs" on the word compile). Queries are first
expanded with the scheduling terms their symptoms imply (``vocabulary.expand_query``).

Keyword: FTS5 with BM25 over name, description, algorithm, workloads and tags. Its score
is normalised to the best keyword hit of the query and added with a small weight: it
breaks ties between semantically close policies and rescues exact names ("edf",
"cgroup"), without letting one shared common word outrank a better meaning.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schedcpd.repository.embeddings import DIM, Embedder, Vector, from_blob
from schedcpd.repository.records import (
    Provenance,
    RepositoryError,
    SearchFilters,
    SearchHit,
    Status,
)
from schedcpd.repository.vocabulary import expand_query
from schedcpd.store import Store

KEYWORD_WEIGHT = 0.12
AVOID_WEIGHT = 0.5
NAME_BONUS = 0.5  # a query word that is a policy's name
KEYWORD_LIMIT = 200
COMMON_FLOOR = 200  # below this many policies every word counts
COMMON_FRACTION = 0.05
EXACT_CANDIDATES = 256  # policies scored on every vector; the rest by centroid first
MAX_QUERY = 1000
# Words that carry no meaning for a keyword match and would match almost every policy.
_STOP = ("a an and are as at be but by for from has have i in is it its my of on or our so "
         "than that the their them then there these they this to too very was we were what "
         "when where which while who why will with you your")
STOPWORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[A-Za-z0-9_]+")


@dataclass
class _Index:
    generation: int
    ids: npt.NDArray[np.int64]  # policy ids, in index order
    names: list[str]
    statuses: list[Status]
    provenances: list[Provenance]
    descriptions: list[str]
    tags: list[frozenset[str]]
    features: list[frozenset[str]]
    matrix: npt.NDArray[np.float32]  # (vectors, DIM), grouped by policy
    owners: npt.NDArray[np.int64]  # the policy (index order) of each row of matrix
    avoid_matrix: npt.NDArray[np.float32]  # the policies' "avoid" lines
    avoid_owners: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]  # (policies, DIM): normalised mean of each policy's rows
    texts: list[str]  # the text behind each row, for "matched"
    row_of_id: dict[int, int]
    row_of_name: dict[str, int]
    status_masks: dict[str, npt.NDArray[np.bool_]]
    tag_masks: dict[str, npt.NDArray[np.bool_]]
    feature_masks: dict[frozenset[str], npt.NDArray[np.bool_]] = field(default_factory=dict)


def query_words(text: str) -> list[str]:
    """The query's meaningful words: lower-case, no stopwords, no repeats, at most 32.

    They are OR-ed as quoted FTS5 strings, so user text is never parsed as FTS5 syntax.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS and len(w) > 1][:32]


def _field_text(prow: tuple[object, ...], field: str, cache: dict[int, list[str]]) -> str:
    """The text a vector was made from (see ``PolicyDraft.search_texts``)."""
    if field.startswith("workload"):
        pid = int(prow[0])  # type: ignore[call-overload]
        if (workloads := cache.get(pid)) is None:
            workloads = cache[pid] = json.loads(str(prow[8]))
        i = int(field.removeprefix("workload"))
        return str(workloads[i]) if i < len(workloads) else ""
    return f"{prow[4]} {prow[7]}"


class SearchEngine:
    def __init__(self, store: Store, embedder: Embedder, cache_size: int = 256) -> None:
        self.store = store
        self.embedder = embedder
        self._index: _Index | None = None
        self._load_lock = asyncio.Lock()
        self._queries: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._df: dict[str, int] = {}
        self._df_generation = -1

    async def generation(self) -> int:
        return int(await self.store.fetchval(
            "SELECT value FROM generations WHERE name = 'policies'"))

    async def index(self, gen: int | None = None) -> _Index:
        """The in-memory index, reloaded if the store's generation moved (``gen``: already
        read by the caller)."""
        gen = await self.generation() if gen is None else gen
        if self._index is not None and self._index.generation == gen:
            return self._index
        async with self._load_lock:
            if self._index is None or self._index.generation != gen:
                self._index = await self._load(gen)
        return self._index

    async def _load(self, gen: int) -> _Index:
        prows = await self.store.fetchall(
            "SELECT id, name, status, provenance, description, tags, kernel_features, "
            "algorithm, workloads "
            "FROM policies ORDER BY id")
        vrows = await self.store.fetchall(
            "SELECT v.policy_id, v.field, e.vector FROM policy_vectors v "
            "JOIN embeddings e ON e.text_hash = v.text_hash ORDER BY v.policy_id, v.field")
        row_of_id = {int(r[0]): i for i, r in enumerate(prows)}
        vrows = [r for r in vrows if int(r[0]) in row_of_id]
        pos = [r for r in vrows if not r[1].startswith("avoid")]
        neg = [r for r in vrows if r[1].startswith("avoid")]
        matrix, owners = _rows(pos, row_of_id)
        avoid_matrix, avoid_owners = _rows(neg, row_of_id)
        workloads: dict[int, list[str]] = {}  # parsed once per policy, not once per row
        texts = [_field_text(prows[row_of_id[int(r[0])]], r[1], workloads) for r in pos]
        n = len(prows)
        statuses = [r[2] for r in prows]
        tags = [frozenset(json.loads(r[5])) for r in prows]
        return _Index(
            generation=gen, ids=np.array([r[0] for r in prows], dtype=np.int64),
            names=[r[1] for r in prows], statuses=statuses,
            provenances=[r[3] for r in prows], descriptions=[r[4] for r in prows],
            tags=tags, features=[frozenset(json.loads(r[6])) for r in prows],
            matrix=matrix, owners=owners, avoid_matrix=avoid_matrix, avoid_owners=avoid_owners,
            centroids=_centroids(matrix, owners, n), texts=texts, row_of_id=row_of_id,
            row_of_name={str(r[1]): i for i, r in enumerate(prows)},
            status_masks={st: np.array([x == st for x in statuses], dtype=bool)
                          for st in set(statuses)},
            tag_masks={t: np.array([t in ts for ts in tags], dtype=bool)
                       for t in set().union(*tags)})

    async def query_vector(self, query: str) -> Vector:
        if (hit := self._queries.get(query)) is not None:
            self._queries.move_to_end(query)
            return hit
        v: Vector = (await self.embedder.encode_async([expand_query(query)]))[0]
        self._queries[query] = v
        if len(self._queries) > self._cache_size:
            self._queries.popitem(last=False)
        return v

    async def _doc_freq(self, word: str, gen: int) -> int:
        if self._df_generation != gen:
            self._df, self._df_generation = {}, gen
        if (n := self._df.get(word)) is None:
            n = self._df[word] = int(await self.store.fetchval(
                "SELECT COUNT(*) FROM policies_fts WHERE policies_fts MATCH ?", (f'"{word}"',)))
        return n

    async def keyword_scores(self, query: str) -> dict[int, float]:
        """policy id -> BM25 relevance normalised to the best hit (1.0)."""
        return (await self._keyword_pass(query))[1]

    async def _keyword_pass(self, query: str) -> tuple[int, dict[int, float]]:
        """The store's generation and the keyword scores, in one round trip to SQLite
        (each trip is a thread hand-off, which costs milliseconds on a loaded machine).

        In a large library, words found in more than ``COMMON_FRACTION`` of the policies
        are dropped first: their BM25 weight is close to nothing, but scoring the thousands
        of rows they match was most of the keyword query's time (measured).
        """
        words = query_words(expand_query(query))
        ix = self._index or await self.index()  # at worst one change old: fine for pruning
        if len(ix.names) > COMMON_FLOOR:
            limit = max(COMMON_FLOOR, COMMON_FRACTION * len(ix.names))
            words = [w for w in words if await self._doc_freq(w, ix.generation) <= limit]
        gen_sql = "SELECT -1, value FROM generations WHERE name = 'policies'"
        if not words:
            return int(await self.store.fetchval(gen_sql.replace("-1, ", ""))), {}
        rows = await self.store.fetchall(
            f"{gen_sql} UNION ALL SELECT * FROM (SELECT rowid, "
            "bm25(policies_fts, 4.0, 1.0, 1.0, 1.5, 2.0) AS s FROM policies_fts "
            "WHERE policies_fts MATCH ? ORDER BY s LIMIT ?)",
            (" OR ".join(f'"{w}"' for w in words), KEYWORD_LIMIT))
        gen = int(rows[0][1])
        if len(rows) == 1:
            return gen, {}
        best = float(rows[1][1])  # most negative is best
        return gen, {int(r[0]): float(r[1]) / best if best else 0.0 for r in rows[1:]}

    def _mask(self, ix: _Index, f: SearchFilters) -> npt.NDArray[np.bool_]:
        n = len(ix.names)
        mask = np.zeros(n, dtype=bool)
        for st in f.statuses:
            if (m := ix.status_masks.get(st)) is not None:
                mask |= m
        for t in f.tags:
            mask &= ix.tag_masks.get(t, np.zeros(n, dtype=bool))
        if f.kernel_features is not None:
            have = f.kernel_features
            if (fm := ix.feature_masks.get(have)) is None:
                fm = ix.feature_masks[have] = np.fromiter(
                    (feats <= have for feats in ix.features), bool, n)
            mask &= fm
        return mask

    async def search(self, query: str, filters: SearchFilters | None = None,
                     k: int = 5) -> list[SearchHit]:
        if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
            raise RepositoryError(f"query must be non-empty text of at most {MAX_QUERY} "
                                  "characters")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise RepositoryError("k must be an integer in [1, 1000]")
        filters = filters or SearchFilters()
        # The query embedding (torch, in a thread) overlaps the keyword search and the
        # index check (SQLite, in aiosqlite's thread).
        embedding = asyncio.ensure_future(self.query_vector(query))
        try:
            gen, kw = await self._keyword_pass(query)
            ix = await self.index(gen)
            qv = await embedding
        finally:
            embedding.cancel()  # no-op once done; on error, do not leave it running
        named = [r for w in _WORD.findall(query.lower())
                 if (r := ix.row_of_name.get(w)) is not None]
        return self._rank(ix, qv, kw, filters, k, named)

    @staticmethod
    def _avoid_penalty(ix: _Index, qv: Vector, in_cand: npt.NDArray[np.bool_],
                       sem: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """AVOID_WEIGHT times how much closer the query is to a policy's "avoid" lines than
        to its targets (0 when the targets are closer)."""
        worst = np.full(len(sem), -1.0, dtype=np.float32)
        rows = np.flatnonzero(in_cand[ix.avoid_owners])
        if len(rows):
            np.maximum.at(worst, ix.avoid_owners[rows], matvec(ix.avoid_matrix[rows], qv))
        return np.asarray(AVOID_WEIGHT * np.maximum(0.0, worst - sem), dtype=np.float32)

    def _rank(self, ix: _Index, qv: Vector, kw: dict[int, float], filters: SearchFilters,
              k: int, named: list[int]) -> list[SearchHit]:
        n = len(ix.names)
        kwv = np.zeros(n, dtype=np.float32)
        for pid, s in kw.items():
            if (r := ix.row_of_id.get(pid)) is not None:
                kwv[r] = s
        kwv[named] += NAME_BONUS / KEYWORD_WEIGHT  # asked for by name: first among matches
        mask = self._mask(ix, filters)
        cand = np.flatnonzero(mask)
        if len(cand) > EXACT_CANDIDATES:
            # Stage 1 on one vector per policy: streaming every row of a large library
            # through memory per query costs more than the rest of the search together.
            coarse = matvec(ix.centroids, qv) + KEYWORD_WEIGHT * kwv
            coarse[~mask] = -np.inf
            cand = np.argpartition(-coarse, EXACT_CANDIDATES - 1)[:EXACT_CANDIDATES]
        if len(cand) == 0:
            return []
        in_cand = np.zeros(n, dtype=bool)
        in_cand[cand] = True
        rows = np.flatnonzero(in_cand[ix.owners])
        sims = matvec(ix.matrix[rows], qv)
        owners = ix.owners[rows]
        bounds = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(rows) \
            else np.zeros(0, dtype=np.int64)
        sem = np.full(n, -1.0, dtype=np.float32)
        if len(rows):
            sem[owners[bounds]] = np.maximum.reduceat(sims, bounds)
        penalty = self._avoid_penalty(ix, qv, in_cand, sem)
        score = np.full(n, -np.inf, dtype=np.float32)
        score[cand] = sem[cand] + KEYWORD_WEIGHT * kwv[cand] - penalty[cand]
        k = min(k, len(cand))
        top = cand[np.argpartition(-score[cand], k - 1)[:k]]
        top = top[np.argsort(-score[top], kind="stable")]
        kw_order = list(kw)

        def matched(i: int) -> str:
            lo, hi = np.searchsorted(owners, i), np.searchsorted(owners, i, side="right")
            return ix.texts[int(rows[lo + int(np.argmax(sims[lo:hi]))])] if hi > lo else ""

        def kw_rank(pid: int) -> int | None:
            return kw_order.index(pid) + 1 if pid in kw else None

        return [SearchHit(
            name=ix.names[i], score=round(float(score[i]), 4),
            semantic=round(float(sem[i]), 4), keyword_rank=kw_rank(int(ix.ids[i])),
            matched=matched(int(i)), status=ix.statuses[i], provenance=ix.provenances[i],
            description=ix.descriptions[i], tags=tuple(sorted(ix.tags[i])))
            for i in top]


def _rows(rows: list[tuple[object, ...]], row_of_id: dict[int, int]
          ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The vectors of some policy_vectors rows as a matrix, and the policy of each row."""
    if not rows:
        return np.zeros((0, DIM), dtype=np.float32), np.zeros(0, dtype=np.int64)
    matrix = np.ascontiguousarray(np.stack([from_blob(r[2]) for r in rows]))  # type: ignore[arg-type]
    owners = np.array([row_of_id[int(r[0])] for r in rows], dtype=np.int64)  # type: ignore[call-overload]
    return matrix, owners


def matvec(m: npt.NDArray[np.float32], v: Vector) -> npt.NDArray[np.float32]:
    """``m @ v`` without BLAS: numpy's threaded OpenBLAS made this product 40x slower
    (14 ms against 0.35 ms at p50, 10,000 x 384) when other work kept both cores busy."""
    out: npt.NDArray[np.float32] = np.einsum("ij,j->i", m, v)
    return out


def _centroids(matrix: npt.NDArray[np.float32], owners: npt.NDArray[np.int64],
               n: int) -> npt.NDArray[np.float32]:
    """Each policy's mean vector, normalised (zero for a policy without vectors)."""
    sums = np.zeros((n, DIM), dtype=np.float32)
    np.add.at(sums, owners, matrix)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.ascontiguousarray(sums / np.where(norms > 0, norms, 1.0), dtype=np.float32)
