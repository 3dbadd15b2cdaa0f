"""From a policy name and parameters to a loadable scheduler: validate, then compile."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from schedcpd.bpf.policy import PolicySpec, find_policy
from schedcpd.bpf.toolchain import build_object
from schedcpd.lab.job import SchedulerLoad


def prepare(spec: PolicySpec, params: Mapping[str, object] | None, out_dir: Path) -> SchedulerLoad:
    """Validate ``params`` against the policy's tunables (before any build), then compile."""
    resolved = spec.resolve_params(params)
    built = build_object(spec.source, out_dir)
    return SchedulerLoad(object_path=built.path, params=resolved)


def prepare_policy(name: str, params: Mapping[str, object] | None, out_dir: Path) -> SchedulerLoad:
    return prepare(find_policy(name), params, out_dir)
