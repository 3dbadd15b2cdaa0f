"""The lab boots the uncompressed kernel through its PVH entry when the ELF has one."""

from __future__ import annotations

import struct
from pathlib import Path

from schedcpd.lab import kernel


def _elf_with_notes(path: Path, notes: bytes) -> Path:
    # A minimal ELF64: header, one PT_NOTE program header, the notes.
    phoff, phentsize = 64, 56
    head = bytearray(64)
    head[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", head, 32, phoff)
    struct.pack_into("<HH", head, 54, phentsize, 1)
    ph = struct.pack("<IIQQQQQQ", 4, 0, phoff + phentsize, 0, 0, len(notes), len(notes), 4)
    path.write_bytes(bytes(head) + ph + notes)
    return path


def _note(name: bytes, kind: int, desc: bytes) -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def test_pvh_note_is_found_after_other_notes(tmp_path: Path) -> None:
    notes = _note(b"GNU\0", 3, b"\1" * 20) + _note(b"Xen\0", 18, b"\0" * 8)
    assert kernel.has_pvh_entry(_elf_with_notes(tmp_path / "k", notes))


def test_no_pvh_note_or_not_an_elf(tmp_path: Path) -> None:
    notes = _note(b"Xen\0", 6, b"linux\0") + _note(b"GNU\0", 18, b"\0" * 8)
    assert not kernel.has_pvh_entry(_elf_with_notes(tmp_path / "k", notes))
    (tmp_path / "bz").write_bytes(b"MZ" + b"\0" * 200)
    assert not kernel.has_pvh_entry(tmp_path / "bz")
    assert not kernel.has_pvh_entry(tmp_path / "missing")
    (tmp_path / "short").write_bytes(b"\x7fELF\x02" + b"\0" * 10)
    assert not kernel.has_pvh_entry(tmp_path / "short")


def test_the_lab_kernel_boots_through_pvh() -> None:
    info = kernel.current()
    assert info.boot_image == info.vmlinux
