"""Stage 2, kernel verifier: load the object in the lab kernel and keep the verifier's log.

The loader (bpf/loader/schedcp-loader.c) prints libbpf's messages, including the kernel
verifier log, when a load fails. The whole log is kept in the stage's details; the
findings carry the few lines that say why, so a person does not read 500 lines of
register states.
"""

from __future__ import annotations

import re
import time

from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.result import SchedState
from schedcpd.lab.session import GuestPanic, LabSession, SessionError
from schedcpd.verifier.verdict import ERROR, Finding, StageVerdict, stage_result

STAGE = "kernel"
MAX_LOG_CHARS = 64_000

# Lines of a verifier log that state the problem rather than the register state.
_REASON = re.compile(
    r"invalid|unbounded|out of bounds|outside of|not allowed|unreleased|R\d+ !read_ok"
    r"|min value is negative|max value is outside|value_size|infinite loop|too large"
    r"|too complex|back-edge|unknown func|not supported|failed to|cannot|expected|denied"
    r"|may be NULL|is not|loop detected|-- END PROG LOAD LOG --|load failed|attach failed",
    re.I)
_SRC = re.compile(r"^; .*@ (\S+):(\d+)$")


def relevant_lines(log: str, limit: int = 12) -> list[str]:
    """The lines that say why the load failed, each with the source line just before."""
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    picked: list[str] = []
    for i, ln in enumerate(lines):
        if _REASON.search(ln) and "processed" not in ln and ln not in picked:
            src = next((lines[j] for j in range(i - 1, max(i - 8, -1), -1)
                        if lines[j].startswith("; ")), "")
            if src and src not in picked:
                picked.append(src)
            picked.append(ln)
    return picked[-limit:] if picked else lines[-limit:]


def source_line(lines: list[str]) -> int | None:
    """libbpf prints the C line the failing instruction came from as ``; code @ file:N``."""
    for ln in reversed(lines):
        if m := _SRC.match(ln):
            return int(m.group(2))
    return None


def loaded(state: SchedState) -> bool:
    err = state.loader_error
    return not ("load failed" in err or "attach failed" in err or "cannot open" in err
                or "no struct_ops map" in err)


def verdict_from(state: SchedState, seconds: float) -> StageVerdict:
    if loaded(state):
        return stage_result(STAGE, [], seconds, {"ops": state.ops, "state": state.state})
    log = state.loader_error
    lines = relevant_lines(log)
    why = next((ln for ln in lines if not ln.startswith(";") and "libbpf:" not in ln
                and "END PROG" not in ln and "load failed" not in ln), lines[-1] if lines else "")
    msg = f"the kernel verifier refused the scheduler: {why.strip()}"
    return stage_result(STAGE, [Finding(STAGE, ERROR, msg, source_line(lines), "verifier")],
                        seconds, {"verifier_log": log[-MAX_LOG_CHARS:], "log_excerpt": lines})


async def run(session: LabSession, load: SchedulerLoad) -> StageVerdict:
    """Attach in the session; on success the scheduler stays attached for the next stage."""
    t0 = time.monotonic()
    try:
        state = await session.attach(load)
    except SessionError as exc:
        check = "lab-panic" if isinstance(exc, GuestPanic) else "lab"
        return stage_result(STAGE, [Finding(STAGE, ERROR, f"the lab could not load it: {exc}",
                                            None, check)], time.monotonic() - t0)
    return verdict_from(state, time.monotonic() - t0)
