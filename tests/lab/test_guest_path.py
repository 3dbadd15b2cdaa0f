"""Host paths as a job sees them: the guest's /tmp is its own, the host's is /run/hosttmp."""

from __future__ import annotations

from pathlib import Path

from schedcpd.lab.job import guest_path


def test_paths_under_tmp_move_to_run_hosttmp() -> None:
    assert guest_path(Path("/tmp/fresh/repo")) == "/run/hosttmp/fresh/repo"
    assert guest_path(Path("/tmp")) == "/run/hosttmp"


def test_other_paths_are_unchanged() -> None:
    assert guest_path(Path("/work/main")) == "/work/main"
    assert guest_path(Path("/tmpfoo/x")) == "/tmpfoo/x"
