"""Small analyses over one BPF function's instructions: its control flow and constants.

The kernel verifier proves memory safety; it does not ask whether enqueue can drop a task
or what slice a task gets. These answer such questions on the compiled code, so they see
through macros and inlining: which paths reach ``exit`` without a given call, and which
constant a register holds at a call (following loads of ``const volatile`` tunables).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from schedcpd.verifier.bpfobj import Function, Insn

U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Ptr:
    """A pointer to a global: a symbol (or section) plus a byte offset."""

    symbol: str
    offset: int


@dataclass(frozen=True)
class Bits:
    """An unknown value with some bits known to be set (``SCX_DSQ_LOCAL_ON | cpu``)."""

    mask: int


Value = int | Ptr | Bits
State = dict[int, Value]


def successors(f: Function, insn: Insn) -> list[int]:
    nxt = insn.pc + (2 if insn.is_lddw else 1)
    if insn.is_exit:
        return []
    if insn.is_jump:
        return [insn.target] if insn.is_uncond else [nxt, insn.target]
    return [nxt]


def drop_path(f: Function, stops: Callable[[Insn], bool]) -> list[Insn] | None:
    """A path from entry to ``exit`` that passes no instruction in ``stops``, or None."""
    by_pc = {i.pc: i for i in f.insns}
    if not f.insns:
        return None
    parent: dict[int, int | None] = {f.insns[0].pc: None}
    queue = [f.insns[0].pc]
    while queue:
        pc = queue.pop(0)
        insn = by_pc.get(pc)
        if insn is None or stops(insn):
            continue
        if insn.is_exit:
            path: list[Insn] = []
            cur: int | None = pc
            while cur is not None:
                path.append(by_pc[cur])
                cur = parent[cur]
            return path[::-1]
        for nxt in successors(f, insn):
            if nxt not in parent:
                parent[nxt] = pc
                queue.append(nxt)
    return None


def back_edges(f: Function) -> list[Insn]:
    """Jumps to an earlier instruction: the compiled form of a loop."""
    return [i for i in f.insns if i.is_jump and i.target <= i.pc]


_ALU = {0x07: "add", 0x17: "sub", 0x27: "mul", 0x37: "div", 0x47: "or", 0x57: "and",
        0x67: "lsh", 0x77: "rsh"}
_LDX_SIZE = {0x79: 8, 0x61: 4, 0x69: 2, 0x71: 1}


def _alu(op: str, a: int, b: int) -> int | None:
    if op == "div":
        return a // b if b else None
    res: int = {"add": a + b, "sub": a - b, "mul": a * b, "or": a | b, "and": a & b,
           "lsh": a << (b & 63), "rsh": a >> (b & 63)}[op]
    return res & U64


def _or_bits(a: Value | None, b: Value | None) -> int:
    """The bits known set in ``a | b`` when the result itself is not known."""
    known = [v.mask if isinstance(v, Bits) else v for v in (a, b) if isinstance(v, int | Bits)]
    return 0 if len(known) == 2 and all(isinstance(v, int) for v in (a, b)) else (
        known[0] | (known[1] if len(known) > 1 else 0) if known else 0)


def _step(f: Function, insn: Insn, st: State, read: Callable[[Ptr, int], int | None]) -> State:
    out = dict(st)
    code, dst = insn.code, insn.dst
    if insn.is_lddw:
        sym = f.loads.get(insn.pc)
        out[dst] = Ptr(sym, insn.imm64) if sym else insn.imm64
    elif code == 0xB7:
        out[dst] = insn.imm & U64
    elif code == 0xB4:
        out[dst] = insn.imm & 0xFFFFFFFF
    elif code == 0xBF and insn.off == 0:
        if insn.src in st:
            out[dst] = st[insn.src]
        else:
            out.pop(dst, None)
    elif code in _ALU or (code - 8) in _ALU:
        a = st.get(dst)
        b: Value | None = insn.imm & U64 if code in _ALU else st.get(insn.src)
        op = _ALU[code] if code in _ALU else _ALU[code - 8]
        if isinstance(a, Ptr) and isinstance(b, int) and op == "add":
            out[dst] = Ptr(a.symbol, a.offset + b)
        elif op == "or" and (mask := _or_bits(a, b)):
            out[dst] = Bits(mask)
        elif isinstance(a, int) and isinstance(b, int) and (r := _alu(op, a, b)) is not None:
            out[dst] = r
        else:
            out.pop(dst, None)
    elif code in _LDX_SIZE:
        base = st.get(insn.src)
        val = read(Ptr(base.symbol, base.offset + insn.off), _LDX_SIZE[code]) \
            if isinstance(base, Ptr) else None
        if val is None:
            out.pop(dst, None)
        else:
            out[dst] = val
    elif insn.is_call:
        for r in range(6):
            out.pop(r, None)
    elif code & 0x07 in (0x04, 0x07, 0x01) or code == 0xDC:
        out.pop(dst, None)  # any other write to dst
    return out


def _meet(a: State, b: State) -> State:
    return {r: v for r, v in a.items() if b.get(r) == v}


def constants_at_calls(f: Function, read: Callable[[Ptr, int], int | None]
                       ) -> dict[int, State]:
    """For each call instruction, the registers whose value is known on every path to it."""
    by_pc = {i.pc: i for i in f.insns}
    states: dict[int, State] = {f.insns[0].pc: {}} if f.insns else {}
    work = list(states)
    while work:
        pc = work.pop()
        insn = by_pc.get(pc)
        if insn is None:
            continue
        out = _step(f, insn, states[pc], read)
        for nxt in successors(f, insn):
            new = out if nxt not in states else _meet(states[nxt], out)
            if nxt not in states or new != states[nxt]:
                states[nxt] = new
                work.append(nxt)
    return {pc: s for pc, s in states.items() if pc in by_pc and by_pc[pc].is_call}


def rodata_reader(rodata: Mapping[str, bytes], offsets: Mapping[str, int]
                  ) -> Callable[[Ptr, int], int | None]:
    """Reads tunables: ``rodata`` maps a global to its bytes, ``offsets`` to its place in
    .rodata (for loads the compiler made relative to the section)."""
    def read(p: Ptr, size: int) -> int | None:
        name, off = p.symbol, p.offset
        if name == ".rodata":
            hit = [(n, off - o) for n, o in offsets.items()
                   if 0 <= off - o < len(rodata.get(n, b""))]
            if not hit:
                return None
            name, off = hit[0]
        data = rodata.get(name)
        if data is None or off < 0 or off + size > len(data):
            return None
        return int.from_bytes(data[off:off + size], "little")
    return read
