"""The shipped GGUF model is joined into schedcp's cache, checked, and replaced when a
file of the wrong size is in its place (an interrupted run)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from schedcpd.agent.llm.models import gemma3_270m, models_dir

EXPECTED = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def test_the_model_is_joined_into_the_cache_and_a_truncated_file_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CACHE_DIR", str(tmp_path))
    target = models_dir() / "gemma-3-270m-q4_k_m.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF, cut off")
    path = gemma3_270m()
    assert path == target and path.is_relative_to(tmp_path)
    assert sha256(path) == EXPECTED
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary left
    mtime = path.stat().st_mtime_ns
    assert gemma3_270m() == path and path.stat().st_mtime_ns == mtime  # not joined again
