"""Tier 1 on this host: schema, size bound, scopes, the character in words, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedcpd.analysis import tier1
from schedcpd.analysis.profile import ProfileError, WorkloadProfile, from_tier1
from schedcpd.cli import main as cli_main
from tests.analysis.schema_check import check

SPIN = "import time\nt = time.time()\nwhile time.time() - t < 5: pass"


def test_system_summary_matches_schema_and_fits() -> None:
    s = tier1.sample(0.3)
    check("tier1", s)
    assert s["scope"] == "system" and s["ncpu"] >= 1 and s["nprocs"] > 5


def test_a_spinning_process_is_cpu_bound() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.3)
        s = tier1.sample(0.6, tier1.Scope(pid=proc.pid))
    finally:
        proc.kill()
        proc.wait()
    check("tier1", s)
    top = s["top"][0]
    assert top["pid"] == proc.pid and top["pat"] == "cpu-bound", s
    assert str(s["character"]).startswith("CPU-bound")
    assert s["nprocs"] == 1


def test_many_processes_and_long_command_lines_still_fit() -> None:
    long = "x" * 3000
    procs = [subprocess.Popen(["sleep", "5", long]) for _ in range(12)]
    try:
        s = tier1.sample(0.2)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert tier1.size_of(s) <= tier1.MAX_BYTES
    huge = dict(s, top=[dict(r, cmd=long) for r in s["top"]])
    assert tier1.size_of(tier1.fit(huge)) <= tier1.MAX_BYTES


def test_cgroup_scope_and_bad_scopes() -> None:
    s = tier1.sample(0.2, tier1.Scope(cgroup="/"))
    check("tier1", s)
    with pytest.raises(ValueError, match="no such process"):
        tier1.sample(0.1, tier1.Scope(pid=2**22 + 7))
    with pytest.raises(ValueError, match="interval"):
        tier1.sample(0)


def test_profile_round_trip_and_fingerprint() -> None:
    s = tier1.sample(0.2)
    p = from_tier1(s, ("minimise makespan",))
    again = WorkloadProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and len(p.fingerprint) == 16
    assert p.description == s["character"]
    with pytest.raises(ProfileError):
        WorkloadProfile.from_dict({"description": 3})
    with pytest.raises(ProfileError):
        WorkloadProfile.from_dict({"description": "x", "characteristics": {"a": [1]}})


def test_guest_style_invocation_prints_json(tmp_path: Path) -> None:
    # How the lab guest runs it: the bare interpreter, no venv, the repository on the path.
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(["/usr/bin/python3", "-m", "schedcpd.analysis.tier1", "--interval",
                          "0.2"], cwd=tmp_path, env={"PYTHONPATH": str(repo)},
                         capture_output=True, text=True, check=True)
    check("tier1", json.loads(out.stdout))


def test_cli_profile_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["profile", "--json", "--interval", "0.4", "--goal", "minimise makespan",
                   "--", sys.executable, "-c", SPIN.replace("< 5", "< 1")])
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    check("tier1", last["tier1"])
    assert last["profile"]["goals"] == ["minimise makespan"]
    assert last["command"]["exit"] == 0 and last["tier1"]["top"][0]["pat"] == "cpu-bound"


def test_cli_refuses_two_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["profile", "--pid", "1", "--cgroup", "/"]) == 2
    assert "at most one" in capsys.readouterr().err
