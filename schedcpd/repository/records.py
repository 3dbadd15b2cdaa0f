"""Plain records the Policy Repository takes and returns. No I/O here."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from schedcpd.analysis.stats import Comparison
from schedcpd.bpf.policy import Tunable

Status = Literal["candidate", "verified", "promoted", "retired"]
Provenance = Literal["library", "agent", "user"]
Outcome = Literal["improved", "neutral", "regressed", "failed"]
STATUSES: tuple[Status, ...] = ("candidate", "verified", "promoted", "retired")
PROVENANCES: tuple[Provenance, ...] = ("library", "agent", "user")
ACTIVE_STATUSES: frozenset[str] = frozenset({"candidate", "verified", "promoted"})
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # also a C identifier: it names the BPF ops


class RepositoryError(ValueError):
    """Bad input to the repository, or an operation its rules forbid. Nothing was changed."""


def check_name(name: object, what: str = "policy name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RepositoryError(
            f"{what} {name!r} is invalid: lower-case letters, digits and _, starting with a "
            "letter, at most 48 characters")
    return name


@dataclass(frozen=True)
class PolicyRecord:
    name: str
    description: str
    algorithm: str
    workloads: tuple[str, ...]
    avoid: tuple[str, ...]
    tags: tuple[str, ...]
    kernel_features: tuple[str, ...]
    tunables: tuple[Tunable, ...]
    source: str
    source_hash: str
    content_hash: str
    object_hash: str | None
    parent: str | None
    provenance: Provenance
    status: Status
    created_at: float
    updated_at: float

    def as_json(self, with_source: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["tunables"] = [tunable_json(t) for t in self.tunables]
        for k in ("workloads", "avoid", "tags", "kernel_features"):
            d[k] = list(d[k])
        if not with_source:
            del d["source"]
        return d


def tunable_json(t: Tunable) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "type": t.type, "default": t.default,
                         "description": t.description}
    if t.type == "str":
        d["max_len"] = t.max_len
    elif t.type != "bool":
        d["min"], d["max"] = t.min, t.max
    return d


class ProfileLike(Protocol):
    """What the repository needs of a workload profile (``analysis.profile.WorkloadProfile``
    or anything shaped like it)."""

    @property
    def description(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def characteristics(self) -> Mapping[str, float | int | str]: ...


Characteristic = float | str
MAX_CHAR_TEXT = 200


@dataclass(frozen=True)
class Profile:
    """A workload profile as the repository stores it."""

    description: str
    fingerprint: str
    characteristics: Mapping[str, Characteristic] = field(default_factory=dict)

    @classmethod
    def of(cls, p: ProfileLike) -> Profile:
        """A validated copy: non-empty text; characteristics finite numbers or short
        strings (a tier-1 profile carries both, e.g. ``top0_comm``). An empty fingerprint
        (a profile that has none yet) becomes a hash of the description."""
        desc, fp = getattr(p, "description", None), getattr(p, "fingerprint", None)
        chars = getattr(p, "characteristics", None)
        if not isinstance(desc, str) or not desc.strip() or len(desc) > 4000:
            raise RepositoryError("profile description must be a non-empty string "
                                  "(<= 4000 chars)")
        if not isinstance(fp, str) or len(fp) > 256:
            raise RepositoryError("profile fingerprint must be a string (<= 256 chars)")
        fp = fp.strip() or "desc-" + hashlib.sha256(desc.strip().encode()).hexdigest()[:16]
        if not isinstance(chars, Mapping) or len(chars) > 256:
            raise RepositoryError("profile characteristics must be a mapping of at most 256 "
                                  "names to numbers or strings")
        out: dict[str, Characteristic] = {}
        for k, v in chars.items():
            if isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_CHAR_TEXT:
                out[k] = v
            elif isinstance(k, str) and isinstance(v, int | float) \
                    and not isinstance(v, bool) and math.isfinite(v):
                out[k] = float(v)
            else:
                raise RepositoryError(f"profile characteristic {k!r}={v!r} must be a finite "
                                      f"number or a string of at most {MAX_CHAR_TEXT} chars")
        return cls(desc.strip(), fp, out)


@dataclass(frozen=True)
class Measurement:
    """One metric measured under a policy against a baseline (e.g. the default scheduler)."""

    metric: str
    lower_is_better: bool
    baseline: float
    value: float
    ci_low: float  # interval of the ratio value / baseline
    ci_high: float
    samples: int

    @property
    def ratio(self) -> float:
        return self.value / self.baseline

    @property
    def better(self) -> bool:
        return self.ci_high < 1.0 if self.lower_is_better else self.ci_low > 1.0

    @property
    def worse(self) -> bool:
        return self.ci_low > 1.0 if self.lower_is_better else self.ci_high < 1.0

    @classmethod
    def from_comparison(cls, c: Comparison) -> Measurement:
        return cls(metric=c.metric, lower_is_better=c.lower_is_better,
                   baseline=c.baseline_median, value=c.candidate_median,
                   ci_low=c.ci_low, ci_high=c.ci_high, samples=min(c.n_baseline, c.n_candidate))

    def validate(self) -> Measurement:
        if not isinstance(self.metric, str) or not self.metric.strip() or len(self.metric) > 64:
            raise RepositoryError("metric must be a non-empty name of at most 64 characters")
        if not isinstance(self.lower_is_better, bool):
            raise RepositoryError("lower_is_better must be true or false")
        nums = {"baseline": self.baseline, "value": self.value, "ci_low": self.ci_low,
                "ci_high": self.ci_high}
        for k, v in nums.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise RepositoryError(f"measurement {k}={v!r} must be a finite number")
        if self.baseline <= 0 or self.value < 0:
            raise RepositoryError(f"measurement needs baseline > 0 and value >= 0 "
                                  f"(got {self.baseline}, {self.value})")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) \
                or self.samples < 1:
            raise RepositoryError(f"samples={self.samples!r} must be a positive integer")
        if not 0 <= self.ci_low <= self.ci_high:
            raise RepositoryError(f"confidence interval [{self.ci_low}, {self.ci_high}] of the "
                                  "ratio must be ordered and not negative")
        return self


@dataclass(frozen=True)
class Host:
    kernel: str
    cpus: int

    @classmethod
    def current(cls) -> Host:
        return cls(os.uname().release, os.cpu_count() or 1)


@dataclass(frozen=True)
class HistoryRecord:
    id: int
    policy: str
    params: Mapping[str, Any]
    profile_fingerprint: str
    profile_description: str
    metric: str
    lower_is_better: bool
    baseline_value: float | None
    value: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    samples: int
    outcome: Outcome
    reason: str
    host_kernel: str
    host_cpus: int
    created_at: float

    @property
    def gain(self) -> float | None:
        """Fractional improvement (0.2 = 20 % better), negative when worse."""
        if self.ratio is None:
            return None
        return 1.0 - self.ratio if self.lower_is_better else self.ratio - 1.0


@dataclass(frozen=True)
class SearchFilters:
    """``statuses``: allowed statuses (default: all but retired). ``tags``: a policy must
    carry every one. ``kernel_features``: what the target kernel offers; policies needing
    anything else are left out."""

    statuses: frozenset[str] = ACTIVE_STATUSES
    tags: frozenset[str] = frozenset()
    kernel_features: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if bad := set(self.statuses) - set(STATUSES):
            raise RepositoryError(f"unknown status {sorted(bad)}; known: {', '.join(STATUSES)}")


@dataclass(frozen=True)
class SearchHit:
    name: str
    score: float  # fused: higher is better
    semantic: float  # best cosine similarity between the query and the policy's texts
    keyword_rank: int | None  # position in the FTS5 result (1 = best), None if no match
    matched: str  # the policy text closest in meaning to the query
    status: Status
    provenance: Provenance
    description: str
    tags: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class Recommendation:
    """A policy that did well on similar workloads: the evidence-weighted mean gain."""

    policy: str
    params: Mapping[str, Any]
    metric: str
    gain: float
    similarity: float  # of the most similar profile it was measured on
    runs: int
    run_ids: tuple[int, ...]


@dataclass(frozen=True)
class Antipattern:
    """A policy (with parameters) that failed or regressed on a similar workload."""

    policy: str
    params: Mapping[str, Any]
    profile_fingerprint: str
    profile_description: str
    similarity: float
    outcome: Outcome
    reason: str
    count: int
    worst_ratio: float | None
    last_at: float


@dataclass(frozen=True)
class TrendPoint:
    run_id: int
    at: float
    metric: str
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    outcome: Outcome
    profile_fingerprint: str


@dataclass(frozen=True)
class Trend:
    policy: str
    points: tuple[TrendPoint, ...]
    slope: float | None  # least-squares change of the gain per run (positive: improving)


@dataclass(frozen=True)
class StatusChange:
    policy: str
    from_status: Status | None
    to_status: Status
    reason: str
    evidence: Mapping[str, Any]
    actor: str
    at: float
