"""`schedcpctl verify` without booting: a static rejection, bad usage."""

from __future__ import annotations

import json

import pytest

from schedcpd.cli import main as schedcpctl
from tests.verifier.test_static import BROKEN


def test_verify_static_rejection_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert schedcpctl(["verify", str(BROKEN / "drops_tasks.bpf.c"), "--json"]) == 1
    out = capsys.readouterr().out
    d = json.loads(out.strip().splitlines()[-1])
    assert d["failed_stage"] == "static" and not d["passed"] and not d["token"]
    assert "silent drop" in out


def test_verify_library_policy_checks_params(capsys: pytest.CaptureFixture[str]) -> None:
    from schedcpd import paths
    src = paths.policies_dir() / "fifo" / "fifo.bpf.c"
    assert schedcpctl(["verify", str(src), "--param", "slice_us=1", "--static-only"]) == 1
    assert "slice_us=" in capsys.readouterr().out


def test_bad_usage() -> None:
    assert schedcpctl(["verify", "/nonexistent.bpf.c"]) == 2
    assert schedcpctl(["verify", str(BROKEN / "drops_tasks.bpf.c"), "--param", "x"]) == 2
    assert schedcpctl(["verify", str(BROKEN / "drops_tasks.bpf.c"), "--workload", "no"]) == 2
