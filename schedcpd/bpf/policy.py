"""A policy's metadata and tunables, as declared in ``policies/<name>/policy.toml``.

Tunables become ``const volatile`` globals in the BPF object, written into its read-only
data at load time. Every value is checked against its declared type and range before
anything is built or loaded, so a bad value is an error naming the parameter, not a
verifier failure later.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schedcpd import paths

# Tunable types and the C type of their BPF global.
INT_TYPES = {"u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1), "s32": (-(2**31), 2**31 - 1),
             "s64": (-(2**63), 2**63 - 1)}
TYPES = (*INT_TYPES, "bool", "str")


class PolicyError(ValueError):
    """A policy's files or parameters are not valid."""


@dataclass(frozen=True)
class Tunable:
    name: str
    type: str
    default: int | bool | str
    description: str = ""
    min: int | None = None
    max: int | None = None
    max_len: int = 15  # for str: bytes, not counting the NUL (the size of a comm is 16)

    def range_text(self) -> str:
        if self.type == "bool":
            return "true or false"
        if self.type == "str":
            return f"a string of at most {self.max_len} bytes"
        return f"{self.type} in [{self.min}, {self.max}]"

    def validate(self, value: object) -> int | bool | str:
        """The value as its declared type, or PolicyError naming this tunable and its range."""
        bad = PolicyError(
            f"parameter {self.name}={value!r} is invalid: expected {self.range_text()}"
        )
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise bad
        if self.type == "str":
            if not isinstance(value, str) or len(value.encode()) > self.max_len or "\0" in value:
                raise bad
            return value
        if isinstance(value, bool):
            raise bad
        try:
            n = int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise bad from None
        if not isinstance(n, int):
            raise bad
        lo, hi = INT_TYPES[self.type]
        lo = lo if self.min is None else self.min
        hi = hi if self.max is None else self.max
        if not lo <= n <= hi:
            raise bad
        return n


@dataclass(frozen=True)
class PolicySpec:
    name: str
    description: str
    algorithm: str
    workloads: tuple[str, ...]
    avoid: tuple[str, ...]
    tags: tuple[str, ...]
    tunables: tuple[Tunable, ...]
    directory: Path
    kernel_features: tuple[str, ...] = ("sched_ext",)
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return self.directory / f"{self.name}.bpf.c"

    @property
    def ops_name(self) -> str:
        return f"schedcp_{self.name}"

    def tunable(self, name: str) -> Tunable:
        for t in self.tunables:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.tunables) or "none"
        raise PolicyError(f"policy {self.name} has no parameter {name!r} (known: {known})")

    def resolve_params(
        self, given: Mapping[str, object] | None = None
    ) -> dict[str, int | bool | str]:
        """Defaults overlaid with ``given``, every value validated."""
        given = dict(given or {})
        out: dict[str, int | bool | str] = {}
        for t in self.tunables:
            out[t.name] = t.validate(given.pop(t.name)) if t.name in given else t.default
        for name in given:
            self.tunable(name)  # raises with the list of known names
        return out


def _tunable(name: str, raw: Mapping[str, object], where: Path) -> Tunable:
    typ = raw.get("type")
    if typ not in TYPES:
        raise PolicyError(f"{where}: tunable {name}: type must be one of {', '.join(TYPES)}")
    t = Tunable(
        name=name, type=str(typ), default=raw.get("default"),  # type: ignore[arg-type]
        description=str(raw.get("description", "")),
        min=raw.get("min"), max=raw.get("max"),  # type: ignore[arg-type]
        max_len=int(raw.get("max_len", 15)),  # type: ignore[call-overload]
    )
    if t.type in INT_TYPES and (t.min is None or t.max is None):
        raise PolicyError(f"{where}: tunable {name}: integer tunables need min and max")
    try:
        t.validate(t.default)
    except PolicyError as exc:
        raise PolicyError(f"{where}: default of {exc}") from None
    return t


def load_policy(directory: Path) -> PolicySpec:
    where = directory / "policy.toml"
    try:
        raw = tomllib.loads(where.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    missing = [k for k in ("name", "description", "algorithm", "workloads") if k not in raw]
    if missing:
        raise PolicyError(f"{where}: missing {', '.join(missing)}")
    if raw["name"] != directory.name:
        raise PolicyError(f"{where}: name {raw['name']!r} must match its folder {directory.name!r}")
    tunables = tuple(_tunable(n, v, where) for n, v in raw.get("tunables", {}).items())
    known = {"name", "description", "algorithm", "workloads", "avoid", "tags", "tunables",
             "kernel_features"}
    spec = PolicySpec(
        name=raw["name"], description=raw["description"].strip(),
        algorithm=raw["algorithm"].strip(), workloads=tuple(raw["workloads"]),
        avoid=tuple(raw.get("avoid", ())), tags=tuple(raw.get("tags", ())),
        tunables=tunables, directory=directory,
        kernel_features=tuple(raw.get("kernel_features", ("sched_ext",))),
        extra={k: v for k, v in raw.items() if k not in known},
    )
    if not spec.source.is_file():
        raise PolicyError(f"{directory}: missing source {spec.source.name}")
    return spec


def load_library(root: Path | None = None) -> list[PolicySpec]:
    """Every policy under ``policies/``, sorted by name."""
    root = root or paths.policies_dir()
    return [load_policy(d) for d in sorted(root.iterdir()) if (d / "policy.toml").is_file()]


def find_policy(name: str, root: Path | None = None) -> PolicySpec:
    root = root or paths.policies_dir()
    d = root / name
    if not (d / "policy.toml").is_file():
        names = ", ".join(p.name for p in load_library(root))
        raise PolicyError(f"no policy named {name!r} (library: {names})")
    return load_policy(d)
