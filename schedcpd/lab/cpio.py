"""A minimal writer for the newc cpio format the kernel unpacks as an initramfs.

The lab appends a small per-run archive (the job script, the scheduler object, the loader)
to the cached base image; the kernel unpacks concatenated archives in order.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    path: str  # relative, no leading slash
    data: bytes = b""
    mode: int = 0o100644  # regular file; 0o040755 for a directory
    symlink: str | None = None


def _header(ino: int, mode: int, size: int, name: bytes) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def archive(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    for ino, e in enumerate([*entries, Entry(_TRAILER, mode=0)], start=1):
        name = e.path.lstrip("/").encode()
        data = e.symlink.encode() if e.symlink is not None else e.data
        mode = 0o120777 if e.symlink is not None else e.mode
        hdr = _header(ino, mode, len(data), name) + name + b"\0"
        out.write(hdr + _pad(len(hdr)))
        out.write(data + _pad(len(data)))
    return out.getvalue()


def directories(path: str) -> list[Entry]:
    """Entries for every parent directory of ``path`` (cpio does not create them)."""
    parts = path.strip("/").split("/")[:-1]
    return [Entry("/".join(parts[: i + 1]), mode=0o040755) for i in range(len(parts))]
