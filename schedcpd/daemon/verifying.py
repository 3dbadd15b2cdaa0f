"""The daemon's side of the Execution Verifier: verify a plan, check a token before deploy."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schedcpd.bpf.policy import PolicyError, find_policy
from schedcpd.bpf.toolchain import BuildError, build_object
from schedcpd.daemon.records import DaemonRecords
from schedcpd.daemon.service import Checked, Verified
from schedcpd.errors import RequestError

MAX_FINDINGS = 8  # what a rejection tells the agent: the errors first, then warnings


def _findings(verdict: Any) -> tuple[str, ...]:
    found = [f for s in verdict.stages for f in s.findings]
    errors = [f.text() for f in found if f.severity == "error"]
    warnings = [f.text() for f in found if f.severity == "warning"]
    return tuple((errors + warnings)[:MAX_FINDINGS])


class LabVerifier:
    """Runs the whole pipeline (static, kernel verifier and dynamic tests in its own lab
    boot, never in the guest the deployment target uses) and returns the signed object.

    A pass is remembered by object hash, parameters and kernel: the same object is not
    verified again while its token is still valid.
    """

    def __init__(self, records: DaemonRecords, depth: str = "full") -> None:
        self.records = records
        self.depth = depth

    async def verify(self, policy: str, params: dict[str, Any]) -> Verified:
        """A library policy with parameters; RequestError with the reason when refused."""
        out = await self.check(policy, params)
        if out.verified is None:
            why = out.findings[0] if out.findings else out.stage
            raise RequestError("Failed", f"the verifier rejected {policy}: {why}")
        return out.verified

    async def check(self, policy: str, params: dict[str, Any],
                    source: Path | None = None) -> Checked:
        """Verify a library policy (``source`` None) or a generated source under its name."""
        from schedcpd.verifier import pipeline, token

        t0 = time.monotonic()
        try:
            if source is None:
                spec = find_policy(policy)
                source = spec.source
                canon = token.canonical_params(spec.resolve_params(params))
            else:
                canon = token.canonical_params(pipeline.typed_params(None, params))
        except PolicyError as exc:
            raise RequestError("InvalidArgument", str(exc)) from None
        if (hit := await self._cached(source, canon)) is not None:
            return Checked(hit, "", (), time.monotonic() - t0, {"cached": True})
        from schedcpd.verifier.dynamic import QUICK, DynamicSettings

        settings = QUICK if self.depth == "quick" else DynamicSettings()
        verdict = await pipeline.verify(source, params, settings=settings)
        seconds = time.monotonic() - t0
        if not verdict.passed:
            return Checked(None, verdict.failed_stage or "static", _findings(verdict), seconds,
                           verdict.as_dict())
        static = verdict.stage("static")
        ops = str(static.details.get("ops", "")) if static else ""
        await self.records.remember_verified(
            object_sha256=verdict.object_sha256, params=canon,
            kernel=verdict.kernel_release, policy=policy, token=verdict.token,
            object_path=verdict.object_path, summary=verdict.summary())
        v = Verified(Path(verdict.object_path), verdict.object_sha256, verdict.token,
                     {"summary": verdict.summary(), "kernel": verdict.kernel_release},
                     ops_name=ops)
        return Checked(v, "", _findings(verdict), seconds, verdict.as_dict())

    async def _cached(self, source: Path, canon: dict[str, str]) -> Verified | None:
        from schedcpd.lab.kernel import current
        from schedcpd.verifier import token
        from schedcpd.verifier.bpfobj import ObjectError, load

        kernel = current().release
        with tempfile.TemporaryDirectory(prefix="schedcp-cache-") as tmp:
            try:
                built = build_object(source, Path(tmp))
            except BuildError:
                return None  # the pipeline reports the compiler's message
            try:
                ops = load(built.path).ops_name
            except (ObjectError, OSError):
                ops = ""
        hit = await self.records.verified(built.sha256, canon, kernel)
        if hit is None:
            return None
        tok, obj, summary = hit
        try:
            token.verify(tok, Path(obj), canon, kernel)
        except (token.TokenError, OSError):
            return None  # expired or the kept object is gone: verify afresh
        return Verified(Path(obj), built.sha256, tok, {"summary": summary, "kernel": kernel,
                                                       "cached": True}, ops_name=ops)


def check_token(token: str, object_path: Path, params: Mapping[str, Any],
                kernel_release: str) -> None:
    from schedcpd.verifier.token import require_valid

    require_valid(token, object_path, params, kernel_release)
