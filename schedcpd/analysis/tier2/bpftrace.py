"""bpftrace one-liners for agents: allowed probe types only, a time limit, bounded output.

Refused: kprobes, uprobes, USDT, fentry and watchpoints (they reach kernel or process
internals), the builtins that touch the system (``system``, ``cat``, ``signal``,
``override``), ``--unsafe`` (never passed), preprocessor lines. Allowed: tracepoints,
raw tracepoints, profile/interval timers, software/hardware events, BEGIN/END. The
program ends by itself at the limit (an ``interval`` probe calls ``exit()``, so maps are
printed) and is killed shortly after if it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from typing import Any

from schedcpd.analysis.tier2 import MAX_OUTPUT_BYTES, MAX_SECONDS, ProbeError

ALIASES = {"t": "tracepoint", "rt": "rawtracepoint", "p": "profile", "i": "interval",
           "s": "software", "h": "hardware", "k": "kprobe", "kr": "kretprobe",
           "u": "uprobe", "ur": "uretprobe", "U": "usdt", "f": "kfunc", "fr": "kretfunc",
           "w": "watchpoint"}
ALLOWED = frozenset({"tracepoint", "rawtracepoint", "profile", "interval", "software",
                     "hardware", "BEGIN", "END"})
FORBIDDEN_CALLS = re.compile(r"\b(system|cat|signal|override|unwatch)\s*\(")
MAX_PROGRAM = 2000


def _headers(program: str) -> list[str]:
    """The probe headers (text before each top-level block), strings skipped."""
    headers, cur, depth, i = [], [], 0, 0
    while i < len(program):
        ch = program[i]
        if ch == '"':
            j = i + 1
            while j < len(program) and program[j] != '"':
                j += 2 if program[j] == "\\" else 1
            if depth == 0:
                cur.append(program[i:j + 1])
            i = j + 1
            continue
        if ch == "{":
            if depth == 0:
                headers.append("".join(cur))
                cur = []
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise ProbeError("unbalanced braces")
        elif depth == 0:
            cur.append(ch)
        i += 1
    if depth != 0 or "".join(cur).strip():
        raise ProbeError("a probe without a body, or unbalanced braces")
    return headers


def probe_types(program: str) -> list[str]:
    types = []
    for header in _headers(program):
        spec = header.split("/", 1)[0]  # a predicate /.../ follows the probe list
        for probe in filter(None, (p.strip() for p in spec.split(","))):
            kind = probe.split(":", 1)[0]
            types.append(ALIASES.get(kind, kind))
    if not types:
        raise ProbeError("no probe in the program")
    return types


def check_program(program: str) -> None:
    if len(program) > MAX_PROGRAM:
        raise ProbeError(f"program longer than {MAX_PROGRAM} characters")
    if re.search(r"^\s*#", program, re.M) or "/*" in program or "//" in program:
        raise ProbeError("preprocessor lines and comments are not accepted")
    if m := FORBIDDEN_CALLS.search(program):
        raise ProbeError(f"{m.group(1)}() is not allowed")
    bad = sorted({t for t in probe_types(program) if t not in ALLOWED})
    if bad:
        raise ProbeError(f"probe type(s) not allowed: {', '.join(bad)} "
                         f"(allowed: {', '.join(sorted(ALLOWED))})")


TRACEFS = "/sys/kernel/tracing"


async def _read_bounded(stream: asyncio.StreamReader, chunks: list[bytes]) -> bytes:
    """Read to EOF or one byte past the bound, whichever comes first."""
    size = 0
    while size <= MAX_OUTPUT_BYTES and (chunk := await stream.read(65536)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def ensure_tracefs() -> None:
    """bpftrace finds tracepoints through tracefs; systemd mounts it, a bare init may not."""
    if os.path.exists(f"{TRACEFS}/available_events"):
        return
    res = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise ProbeError(f"tracefs is not mounted and cannot be: {res.stderr.strip()}")


async def run_bpftrace(program: str, seconds: float = 2.0) -> dict[str, Any]:
    check_program(program)
    if not 0 < seconds <= MAX_SECONDS:
        raise ProbeError(f"seconds must be in (0, {MAX_SECONDS}]")
    await asyncio.to_thread(ensure_tracefs)
    ms = max(1, round(seconds * 1000))
    full = f"{program}\ninterval:ms:{ms} {{ exit(); }}"
    try:
        proc = await asyncio.create_subprocess_exec(
            "bpftrace", "-e", full, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise ProbeError("bpftrace is not installed") from None
    assert proc.stdout is not None and proc.stderr is not None
    chunks: list[bytes] = []
    try:
        out = await asyncio.wait_for(_read_bounded(proc.stdout, chunks), seconds + 15)
        timed_out = False
    except TimeoutError:
        out, timed_out = b"".join(chunks), True
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # past the limit, or more output than we keep
    err = await proc.stderr.read(4000)
    rc = await proc.wait()
    if rc not in (0, -9) and not out:
        raise ProbeError(f"bpftrace failed: {err.decode(errors='replace').strip()}")
    return {"probe": "bpftrace", "seconds": seconds, "timed_out": timed_out,
            "truncated": len(out) > MAX_OUTPUT_BYTES,
            "output": out[:MAX_OUTPUT_BYTES].decode(errors="replace")}
