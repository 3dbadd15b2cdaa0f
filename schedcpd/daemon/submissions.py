"""Scheduler sources written outside the library: kept, then verified, never trusted.

An agent (the daemon's own, or one on MCP) submits BPF C text. It becomes a candidate in
the Policy Repository (provenance ``agent``, its parent if it patches one) and a file under
the state directory; the Execution Verifier runs on it in the background; the result says
where it failed and why, or gives the name under which ``optimize`` can deploy it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schedcpd.errors import RequestError
from schedcpd.repository import RepositoryError
from schedcpd.repository.catalog import sha256
from schedcpd.repository.lazy import LazyRepository

if TYPE_CHECKING:
    from schedcpd.daemon.service import Checked, Verifier

log = logging.getLogger("schedcpd.submissions")
MAX_SOURCE = 64 * 1024  # the library's largest policy is about 6 KB
KEEP = 100  # finished submissions remembered for their results


def source_path(state_dir: Path, name: str) -> Path:
    return state_dir / "generated" / f"{name}.bpf.c"


async def keep_source(repository: LazyRepository, state_dir: Path, source: str,
                      parent: str | None, description: str, workload: str) -> tuple[str, Path]:
    """The source as a candidate policy and as a file to build: (its name, the file)."""
    if not isinstance(source, str) or not source.strip():
        raise RequestError("InvalidArgument", "no source to verify")
    if len(source) > MAX_SOURCE:
        raise RequestError("InvalidArgument",
                           f"the source has {len(source)} characters (at most {MAX_SOURCE})")
    repo = await repository.get()
    name = f"{parent or 'gen'}_{sha256(source)[:8]}"
    try:
        await repo.get(name)  # the same text was kept before
    except RepositoryError:
        try:
            await repo.add_generated(
                source, parent, name=name, description=None if parent else description[:2000],
                algorithm=None if parent else "written by an agent",
                workloads=None if parent else [workload[:200] or "the workload it was "
                                                                 "written for"])
        except RepositoryError as exc:
            raise RequestError("InvalidArgument", str(exc)) from None
    path = source_path(state_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(source)
    os.replace(tmp, path)
    return name, path


async def mark_verified(repository: LazyRepository, name: str, checked: Checked) -> None:
    """candidate -> verified in the repository, citing the verdict."""
    if checked.verified is None:
        return
    try:
        repo = await repository.get()
        if (await repo.get(name)).status == "candidate":
            await repo.verify(name, {"summary": checked.verdict.get("summary", "cached"),
                                     "kernel": checked.verdict.get("kernel_release", "")},
                              reason="passed the Execution Verifier")
    except RepositoryError as exc:
        log.warning("could not mark %s verified: %s", name, exc)


@dataclass
class Submission:
    id: str
    policy: str
    params: dict[str, Any]
    submitted_by: str
    at: float = field(default_factory=time.time)
    state: str = "verifying"  # verifying | passed | failed
    stage: str = ""
    findings: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "params": self.params,
                "submitted_by": self.submitted_by, "at": self.at, "state": self.state,
                "failed_stage": self.stage, "findings": list(self.findings),
                "seconds": round(self.seconds, 2)}


class Submissions:
    def __init__(self, repository: LazyRepository, verifier: Verifier, state_dir: Path) -> None:
        self.repository = repository
        self.verifier = verifier
        self.state_dir = state_dir
        self._all: dict[str, Submission] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, source: str, parent: str | None, params: dict[str, Any],
                     who: str) -> Submission:
        name, path = await keep_source(self.repository, self.state_dir, source, parent,
                                       f"submitted by {who}", "")
        sub = Submission(uuid.uuid4().hex[:12], name, dict(params), who)
        self._all[sub.id] = sub
        task = asyncio.create_task(self._verify(sub, path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for old in sorted(self._all.values(), key=lambda s: s.at)[:-KEEP]:
            if old.state != "verifying":
                del self._all[old.id]
        return sub

    async def _verify(self, sub: Submission, path: Path) -> None:
        t0 = time.monotonic()
        try:
            out = await self.verifier.check(sub.policy, sub.params, path)
        except RequestError as exc:
            sub.state, sub.stage, sub.findings = "failed", "request", (exc.message,)
        except Exception as exc:  # a lab failure must reach the submitter, not the loop
            sub.state, sub.stage, sub.findings = "failed", "lab", (f"{type(exc).__name__}: "
                                                                    f"{exc}",)
        else:
            sub.state = "passed" if out.verified is not None else "failed"
            sub.stage, sub.findings = out.stage, out.findings
            await mark_verified(self.repository, sub.policy, out)
        sub.seconds = time.monotonic() - t0

    def get(self, sid: str) -> Submission:
        try:
            return self._all[sid]
        except KeyError:
            raise RequestError("NotFound", f"no submission {sid!r}") from None

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
