"""What the verifier says about a scheduler: findings per stage, and the overall verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = ("static", "kernel", "dynamic")
ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Finding:
    """One observation. Only ``error`` findings fail their stage."""

    stage: str
    severity: str
    message: str
    source_line: int | None = None
    check: str = ""

    def text(self) -> str:
        where = f" (line {self.source_line})" if self.source_line else ""
        return f"[{self.stage}] {self.severity}: {self.message}{where}"

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "severity": self.severity, "check": self.check,
                "message": self.message, "source_line": self.source_line}


@dataclass(frozen=True)
class StageVerdict:
    stage: str
    passed: bool
    findings: tuple[Finding, ...] = ()
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    def reason(self) -> str:
        """The first error in words a person understands ('' when it passed)."""
        return self.errors[0].message if self.errors else ""

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "passed": self.passed, "seconds": round(self.seconds, 3),
                "findings": [f.as_dict() for f in self.findings], "details": self.details}


def stage_result(stage: str, findings: list[Finding], seconds: float,
                 details: dict[str, Any] | None = None) -> StageVerdict:
    passed = not any(f.severity == ERROR for f in findings)
    return StageVerdict(stage, passed, tuple(findings), seconds, details or {})


@dataclass(frozen=True)
class Verdict:
    """All stages that ran, in order; the run stopped at the first failing one."""

    source: str
    object_sha256: str
    params: dict[str, str]
    kernel_release: str
    stages: tuple[StageVerdict, ...]
    token: str = ""
    policy: str = ""
    boot_seconds: float = 0.0
    object_path: str = ""  # where the verified object is kept (set on a pass)

    @property
    def passed(self) -> bool:
        done = {s.stage for s in self.stages}
        return all(s.passed for s in self.stages) and bool(done) and "static" in done

    @property
    def failed_stage(self) -> str:
        return next((s.stage for s in self.stages if not s.passed), "")

    def reason(self) -> str:
        bad = next((s for s in self.stages if not s.passed), None)
        return f"{bad.stage}: {bad.reason()}" if bad else ""

    @property
    def lab_fault(self) -> bool:
        """It failed because the lab guest died (a kernel panic), not because of the
        scheduler: worth verifying again in a fresh guest."""
        return any(f.check in ("lab", "lab-panic") for s in self.stages for f in s.errors)

    def stage(self, name: str) -> StageVerdict | None:
        return next((s for s in self.stages if s.stage == name), None)

    def summary(self) -> str:
        """One line the token carries: which stages passed."""
        return ",".join(f"{s.stage}={'pass' if s.passed else 'FAIL'}" for s in self.stages)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed_stage": self.failed_stage,
                "reason": self.reason(), "source": self.source, "policy": self.policy,
                "object_sha256": self.object_sha256, "params": self.params,
                "kernel_release": self.kernel_release, "summary": self.summary(),
                "boot_seconds": round(self.boot_seconds, 3),
                "stages": [s.as_dict() for s in self.stages], "object_path": self.object_path,
                "token": self.token}
