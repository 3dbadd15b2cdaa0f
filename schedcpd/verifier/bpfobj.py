"""Reading a compiled BPF object: ELF sections, symbols, relocations, instructions, BTF.

Pure parsing of the relocatable ELF clang writes (little-endian ELF64), plus two tools for
what the ELF alone does not say plainly: ``bpftool btf dump`` for the layout of
``struct sched_ext_ops`` and ``llvm-objdump -l`` for the source line of each instruction.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BPFTOOL = "bpftool"
OBJDUMP = "llvm-objdump-19"

SHT_SYMTAB, SHT_REL = 2, 9
R_BPF_64_64, R_BPF_64_32 = 1, 10
STT_OBJECT, STT_FUNC = 1, 2


class ObjectError(ValueError):
    """The file is not a BPF object this verifier can read."""


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int
    data: bytes


@dataclass(frozen=True)
class Symbol:
    name: str
    type: int
    shndx: int
    value: int
    size: int

    @property
    def undefined(self) -> bool:
        return self.shndx == 0


@dataclass(frozen=True)
class Insn:
    """One BPF instruction; ``imm64`` holds the whole constant of a two-slot ``lddw``."""

    pc: int
    code: int
    dst: int
    src: int
    off: int
    imm: int
    imm64: int = 0

    @property
    def is_call(self) -> bool:
        return self.code == 0x85

    @property
    def is_exit(self) -> bool:
        return self.code == 0x95

    @property
    def is_lddw(self) -> bool:
        return self.code == 0x18

    @property
    def is_jump(self) -> bool:
        cls, op = self.code & 0x07, self.code & 0xF0
        return cls in (0x05, 0x06) and op not in (0x80, 0x90)

    @property
    def is_uncond(self) -> bool:
        return self.is_jump and self.code & 0xF0 == 0x00

    @property
    def target(self) -> int:
        # gotol (JMP32|JA) keeps its offset in imm.
        return self.pc + 1 + (self.imm if self.code == 0x06 else self.off)


@dataclass
class Function:
    """A program or subprogram: its instructions and what its calls and loads refer to."""

    name: str
    section: str
    insns: list[Insn]
    calls: dict[int, str] = field(default_factory=dict)  # pc -> kfunc or subprog name
    loads: dict[int, str] = field(default_factory=dict)  # lddw pc -> symbol (maps, globals)
    lines: dict[int, int] = field(default_factory=dict)  # pc -> source line

    def line_at(self, pc: int) -> int | None:
        best = [ln for p, ln in self.lines.items() if p <= pc]
        return best[-1] if best else None


@dataclass
class BpfObject:
    path: Path
    sections: list[Section]
    symbols: list[Symbol]
    functions: dict[str, Function]
    struct_ops: dict[str, str]  # member name -> function name
    ops_fields: dict[str, int]  # numeric members that are set (timeout_ms, flags, ...)
    ops_name: str
    ops_var: str
    rodata: dict[str, bytes]  # const volatile global -> its initial bytes
    license: str

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


def _cstr(buf: bytes, off: int) -> str:
    end = buf.find(b"\0", off)
    return buf[off:end if end >= 0 else len(buf)].decode(errors="replace")


def _sections(raw: bytes) -> list[Section]:
    if raw[:4] != b"\x7fELF" or raw[4] != 2 or raw[5] != 1:
        raise ObjectError("not a little-endian 64-bit ELF file")
    if struct.unpack_from("<H", raw, 0x12)[0] != 247:  # EM_BPF
        raise ObjectError("not a BPF object (ELF machine is not BPF)")
    shoff = struct.unpack_from("<Q", raw, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<HH", raw, 0x3C)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", raw, shoff + i * 64) for i in range(shnum)]
    strtab = raw[hdrs[shstrndx][4]:hdrs[shstrndx][4] + hdrs[shstrndx][5]]
    out = []
    for i, (name, typ, _f, _a, off, size, link, info, _al, _es) in enumerate(hdrs):
        data = raw[off:off + size] if typ != 8 else b""  # SHT_NOBITS has no bytes
        out.append(Section(i, _cstr(strtab, name), typ, off, size, link, info, data))
    return out


def _symbols(secs: list[Section]) -> list[Symbol]:
    symtab = next((s for s in secs if s.type == SHT_SYMTAB), None)
    if symtab is None:
        raise ObjectError("the object has no symbol table")
    names = secs[symtab.link].data
    out = []
    for off in range(0, len(symtab.data), 24):
        name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab.data, off)
        out.append(Symbol(_cstr(names, name), info & 0xF, shndx, value, size))
    return out


def decode(code: bytes, base_pc: int = 0) -> list[Insn]:
    insns, i = [], 0
    while i + 8 <= len(code):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, i)
        pc = base_pc + i // 8
        if op == 0x18 and i + 16 <= len(code):
            hi = struct.unpack_from("<i", code, i + 12)[0]
            insns.append(Insn(pc, op, regs & 0xF, regs >> 4, off, imm,
                              (imm & 0xFFFFFFFF) | ((hi & 0xFFFFFFFF) << 32)))
            i += 16
            continue
        insns.append(Insn(pc, op, regs & 0xF, regs >> 4, off, imm))
        i += 8
    return insns


def _relocs(secs: list[Section], syms: list[Symbol], target: int) -> list[tuple[int, Symbol]]:
    out = []
    for s in secs:
        if s.type == SHT_REL and s.info == target:
            for off in range(0, len(s.data), 16):
                r_off, r_info = struct.unpack_from("<QQ", s.data, off)
                out.append((r_off, syms[r_info >> 32]))
    return out


def _functions(secs: list[Section], syms: list[Symbol]) -> dict[str, Function]:
    funcs: dict[str, Function] = {}
    for sec in secs:
        if not sec.data or sec.type != 1 or not (sec.name.startswith(("struct_ops", ".text"))):
            continue
        relocs = _relocs(secs, syms, sec.index)
        for sym in syms:
            if sym.type != STT_FUNC or sym.shndx != sec.index:
                continue
            start = sym.value
            end = start + (sym.size or len(sec.data) - start)
            f = Function(sym.name, sec.name, decode(sec.data[start:end], start // 8))
            for r_off, rsym in relocs:
                pc = r_off // 8
                if not start // 8 <= pc < end // 8:
                    continue
                if rsym.type == 3:  # STT_SECTION: a call into .text, a load of .bss/.rodata
                    rsym = Symbol(secs[rsym.shndx].name, rsym.type, rsym.shndx, 0, 0)
                insn = next((x for x in f.insns if x.pc == pc), None)
                if insn and insn.is_call:
                    f.calls[pc] = rsym.name
                elif insn and insn.is_lddw:
                    f.loads[pc] = rsym.name
            funcs[sym.name] = f
    return funcs


def ops_layout(path: Path) -> dict[str, tuple[int, int]]:
    """``struct sched_ext_ops`` members: name -> (byte offset, byte size or 0 if unknown)."""
    res = subprocess.run([BPFTOOL, "btf", "dump", "file", str(path), "format", "raw"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise ObjectError(f"bpftool cannot read the object's BTF: {res.stderr.strip()}")
    m = re.search(r"STRUCT 'sched_ext_ops' size=\d+ vlen=(\d+)\n((?:\t.*\n?)*)", res.stdout)
    if not m:
        return {}
    members = re.findall(r"'(\w+)' type_id=\d+ bits_offset=(\d+)", m.group(2))
    offs = [int(b) // 8 for _, b in members]
    return {name: (off, (offs[i + 1] - off) if i + 1 < len(offs) else 0)
            for i, ((name, _), off) in enumerate(zip(members, offs, strict=True))}


def _struct_ops(path: Path, secs: list[Section], syms: list[Symbol]
                ) -> tuple[dict[str, str], dict[str, int], str, str]:
    sec = next((s for s in secs if s.name in (".struct_ops.link", ".struct_ops")), None)
    if sec is None:
        return {}, {}, "", ""
    var = next((s for s in syms if s.shndx == sec.index and s.type == STT_OBJECT), None)
    base = var.value if var else 0
    layout = ops_layout(path)
    by_off = {off: name for name, (off, _) in layout.items()}
    ops = {by_off.get(r_off - base, f"+{r_off - base}"): sym.name
           for r_off, sym in _relocs(secs, syms, sec.index)}
    fields: dict[str, int] = {}
    for name in ("timeout_ms", "flags", "dispatch_max_batch", "exit_dump_len"):
        if name in layout:
            off, size = layout[name]
            size = size if size in (4, 8) else 4
            fields[name] = int.from_bytes(sec.data[base + off:base + off + size], "little")
    name = ""
    if "name" in layout:
        off = layout["name"][0]
        name = _cstr(sec.data, base + off)[:128]
    return ops, fields, name, var.name if var else ""


def _line_table(path: Path, funcs: dict[str, Function]) -> None:
    """Attach llvm-objdump's source lines (the nearest annotation above each instruction)."""
    res = subprocess.run([OBJDUMP, "-d", "-l", "--no-show-raw-insn", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        return
    cur: Function | None = None
    line: int | None = None
    for text in res.stdout.splitlines():
        if m := re.match(r"^[0-9a-f]+ <(\w+)>:", text):
            cur, line = funcs.get(m.group(1)), None
        elif m := re.match(r"^; \S+\.c:(\d+)", text):
            line = int(m.group(1))
        elif (m := re.match(r"^\s+(\d+):", text)) and cur is not None and line is not None:
            # objdump numbers instructions within the section, as Insn.pc does.
            cur.lines[int(m.group(1))] = line


def load(path: Path) -> BpfObject:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ObjectError(f"cannot read {path}: {exc}") from exc
    secs = _sections(raw)
    syms = _symbols(secs)
    funcs = _functions(secs, syms)
    _line_table(path, funcs)
    ops, fields, ops_name, ops_var = _struct_ops(path, secs, syms)
    ro = next((s for s in secs if s.name == ".rodata"), None)
    rodata = {s.name: ro.data[s.value:s.value + s.size] for s in syms
              if ro and s.shndx == ro.index and s.type == STT_OBJECT and s.size}
    lic = next((s for s in secs if s.name == "license"), None)
    return BpfObject(path, secs, syms, funcs, ops, fields, ops_name, ops_var, rodata,
                     _cstr(lic.data, 0) if lic else "")
