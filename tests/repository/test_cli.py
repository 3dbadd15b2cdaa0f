"""`schedcpctl policies` and `schedcpctl show`, as a user runs them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from schedcpd import paths

CTL = str(paths.REPO_ROOT / ".venv" / "bin" / "schedcpctl")


def ctl(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCHEDCP_STATE_DIR": str(state)}
    env.pop("SCHEDCP_POLICIES_DIR", None)
    return subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_policies_prints_the_best_match_first_and_show_shows_it(tmp_path: Path) -> None:
    r = ctl(tmp_path, "policies", "--json", "39 short jobs and one long job")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout.strip().splitlines()[-1])["hits"]
    assert hits[0]["name"] == "ljf" and len(hits) >= 3
    assert (tmp_path / "schedcp.db").is_file()  # seeded on first use, under the state dir
    human = ctl(tmp_path, "policies", "one", "slow", "test", "holds", "up", "the", "suite")
    assert human.returncode == 0 and human.stdout.startswith("1. ljf")
    show = ctl(tmp_path, "show", "ljf")
    assert show.returncode == 0 and show.stdout.startswith("ljf  (promoted, library)")
    assert "long_slice_us" in show.stdout
    js = json.loads(ctl(tmp_path, "show", "--json", "fifo").stdout.splitlines()[-1])
    assert js["name"] == "fifo" and js["status_changes"][0]["to_status"] == "promoted"
    missing = ctl(tmp_path, "show", "nosuch")
    assert missing.returncode == 1 and "no policy named 'nosuch'" in missing.stderr
