"""The Verifier end to end: static, kernel verifier, dynamic, then a signed token.

Stages run in order and stop at the first failure. The kernel and dynamic stages share one
lab boot (a LabSession; pass one in to share it across many verifications, as the tests
and the benchmark do). A token is issued only when all three stages passed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path

from schedcpd import paths
from schedcpd.bpf.policy import PolicyError, PolicySpec, load_policy
from schedcpd.lab.job import SchedulerLoad
from schedcpd.lab.session import GuestPanic, LabSession, SessionError
from schedcpd.lab.vm import LAB_ATTEMPTS
from schedcpd.verifier import dynamic, kernel, static, token
from schedcpd.verifier.dynamic import DynamicSettings
from schedcpd.verifier.verdict import (
    ERROR,
    WARNING,
    Finding,
    StageVerdict,
    Verdict,
    stage_result,
)


def library_policy(source: Path) -> PolicySpec | None:
    """The library policy whose source this is, if any (its tunables then apply)."""
    d = source.resolve().parent
    if (d / "policy.toml").is_file() and source.name == f"{d.name}.bpf.c":
        try:
            return load_policy(d)
        except PolicyError:
            return None
    return None


def typed_params(spec: PolicySpec | None, raw: Mapping[str, object]
                 ) -> dict[str, int | bool | str]:
    """Validated against the policy's tunables, or (agent code) ints where they parse."""
    if spec is not None:
        return spec.resolve_params(raw)
    out: dict[str, int | bool | str] = {}
    for k, v in raw.items():
        if isinstance(v, bool | int):
            out[k] = v
            continue
        try:
            out[k] = int(str(v), 0)
        except ValueError:
            out[k] = str(v)
    return out


def settings_for(spec: PolicySpec | None, base: DynamicSettings) -> DynamicSettings:
    """A library policy may declare in policy.toml ``[verifier] max_slowdown = 0.5`` (e.g.
    powersave, which trades speed for fewer busy CPUs) or ``fairness_min_ratio = 0.1`` (e.g.
    ljf, which runs long jobs first on purpose). It can only loosen what it declares, and
    only for its own library entry; starvation and ejection bounds stay."""
    conf = spec.extra.get("verifier") if spec else None
    if not isinstance(conf, dict):
        return base
    out = base
    if isinstance(conf.get("max_slowdown"), int | float):
        out = replace(out, max_slowdown=max(out.max_slowdown, float(conf["max_slowdown"])))
    if isinstance(conf.get("fairness_min_ratio"), int | float):
        out = replace(out, fairness_min_ratio=min(out.fairness_min_ratio,
                                                  float(conf["fairness_min_ratio"])))
    return out


def objects_dir() -> Path:
    return paths.cache_dir() / "verifier" / "objects"


def keep_object(obj: Path, sha256: str) -> Path:
    """Store the verified object under its hash, atomically, for deployment to pick up."""
    dest = objects_dir() / f"{sha256}.bpf.o"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        shutil.copyfile(obj, tmp)
        tmp.replace(dest)
    return dest


@contextlib.asynccontextmanager
async def _session(given: LabSession | None) -> AsyncIterator[tuple[LabSession, float]]:
    if given is not None:
        yield given, 0.0
        return
    t0 = time.monotonic()
    async with LabSession() as s:
        yield s, time.monotonic() - t0


async def verify(source: Path, params: Mapping[str, object] | None = None, *,
                 settings: DynamicSettings | None = None, static_only: bool = False,
                 session: LabSession | None = None, limits: static.Limits | None = None,
                 ttl_s: int = token.DEFAULT_TTL_S) -> Verdict:
    """Verify one scheduler source with its parameters; the token is set only on a pass."""
    spec = library_policy(source)
    settings = settings_for(spec, settings or DynamicSettings())
    with tempfile.TemporaryDirectory(prefix="schedcp-verify-") as tmp:
        try:
            typed = typed_params(spec, params or {})
        except PolicyError as exc:
            bad = stage_result(static.STAGE, [Finding(static.STAGE, ERROR, str(exc), None,
                                                      "params")], 0.0)
            return Verdict(str(source), "", token.canonical_params(params or {}), "", (bad,),
                           policy=spec.name if spec else "")
        canon = token.canonical_params(typed)
        st, obj = static.run(source, canon, Path(tmp), limits)
        sha = token.sha256_file(obj) if obj else ""
        base = Verdict(str(source), sha, canon, "", (st,), policy=spec.name if spec else "")
        if not st.passed or obj is None:
            return base
        load = SchedulerLoad(object_path=obj, params=typed)
        return await _in_lab(base, load, settings, static_only, session, ttl_s)


async def _in_lab(base: Verdict, load: SchedulerLoad, settings: DynamicSettings,
                  static_only: bool, session: LabSession | None, ttl_s: int) -> Verdict:
    out = await _in_lab_once(base, load, settings, static_only, session, ttl_s)
    if session is not None:
        return out
    for _ in range(LAB_ATTEMPTS - 1):
        panicked = [f for s in out.stages for f in s.findings if f.check == "lab-panic"]
        if not panicked:
            break
        # A guest kernel panic under TCG is a lab fault (see schedcpd.lab.vm.run_steps),
        # not a verdict on the scheduler: again in a fresh boot, with the retry on record.
        out = await _in_lab_once(base, load, settings, static_only, None, ttl_s)
        note = Finding(out.stages[-1].stage, WARNING,
                       f"retried in a fresh lab boot after a guest kernel panic: "
                       f"{panicked[0].message}", None, "lab-retry")
        last = out.stages[-1]
        out = replace(out, stages=(*out.stages[:-1],
                                   replace(last, findings=(*last.findings, note))))
    return out


async def _in_lab_once(base: Verdict, load: SchedulerLoad, settings: DynamicSettings,
                       static_only: bool, session: LabSession | None, ttl_s: int) -> Verdict:
    stages: list[StageVerdict] = list(base.stages)
    try:
        async with _session(session) as (s, boot_s):
            base = replace(base, kernel_release=s.kernel, boot_seconds=boot_s)
            kv = await kernel.run(s, load)
            stages.append(kv)
            if not kv.passed or static_only:
                with contextlib.suppress(SessionError, ConnectionError):
                    await s.detach()
                return replace(base, stages=tuple(stages))
            stages.append(await dynamic.run(s, load, settings))
    except (SessionError, ConnectionError) as exc:  # the guest died in the running stage
        failed = kernel.STAGE if len(stages) == 1 else dynamic.STAGE
        check = "lab-panic" if isinstance(exc, GuestPanic) else "lab"
        stages.append(stage_result(failed, [Finding(failed, ERROR,
                                                    f"the lab guest failed: {exc}", None,
                                                    check)], 0.0))
        return replace(base, stages=tuple(stages))
    out = replace(base, stages=tuple(stages))
    if not out.passed:
        return out
    kept = keep_object(load.object_path, out.object_sha256)
    tok = token.issue(out.object_sha256, out.params, out.summary(), out.kernel_release,
                      policy=out.policy, ttl_s=ttl_s)
    return replace(out, token=tok, source=out.source, object_path=str(kept))
