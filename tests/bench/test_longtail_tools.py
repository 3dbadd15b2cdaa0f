"""The eight long-tail tool workloads on the host, at a tiny size: their inputs generate
(the same bytes from the same seed), their task lists are well formed, the long task runs
under its own comm, and every task of a batch really runs and succeeds."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from schedcpd.analysis.profile import from_run
from schedcpd.analysis.run_profile import START_MARK
from schedcpd.analysis.run_profile import run as run_profile
from schedcpd.lab import longtail_tools as lt
from schedcpd.lab import workloads

# A short task's input at test size (the long one is 3 of these): seconds for all eight.
TINY = {"lt-compress": 2000, "lt-transcode": 2, "lt-tests": 1, "lt-gitadd": 2,
        "lt-checksum": 256 << 10, "lt-hotkeys": 200, "lt-logs": 100, "lt-analytics": 100}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCHEDCP_CACHE_DIR", str(tmp_path / "cache"))
    # The guest sees a host /tmp elsewhere; here the commands run on the host itself.
    monkeypatch.setattr(lt, "guest_path", lambda p: str(p))
    return tmp_path / "cache"


def tiny(name: str) -> lt.ToolWorkload:
    return dataclasses.replace(lt.BY_NAME[name], unit=TINY[name], factor=3)


def _tree_digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.name not in ("tasks.tsv",):
            h.update(str(p.relative_to(d)).encode() + p.read_bytes())
    return h.hexdigest()


def test_every_tool_workload_is_a_registered_lab_workload() -> None:
    for w in lt.SUITE:
        wl = workloads.get(w.name)
        assert wl.metric == "makespan_s" and wl.lower_is_better
        assert w.long_comm in wl.description
        assert len(w.long_comm) <= 15 and w.long_comm.endswith(lt.LONG_SUFFIX)
        assert w.factor >= 10  # the long job must stand out (a quarter of the work, at least)


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_tiny_batch_runs_all_forty_tasks(name: str, cache: Path) -> None:
    if name == "lt-transcode" and not lt.shutil.which("ffmpeg"):
        pytest.skip("no ffmpeg on this host")
    w = tiny(name)
    d = lt.inputs(w)
    rows = [ln.split("\t", 1) for ln in (d / "tasks.tsv").read_text().splitlines()]
    assert [k for k, _ in rows].count("long") == 1 and len(rows) == lt.SHORT_TASKS + 1
    assert rows[lt.LONG_INDEX][0] == "long"
    alias = lt.long_alias(w)
    assert alias.name == w.long_comm and alias.resolve() == lt.tool_path(w.tool)
    assert str(alias) in rows[lt.LONG_INDEX][1]
    assert all(str(alias) not in cmd for k, cmd in rows if k == "short")
    work = cache / "work"
    work.mkdir()
    res = subprocess.run(lt.command(w), shell=True, cwd=work, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout[-800:] + res.stderr[-800:]
    d_ = workloads.details(res.stdout)
    assert d_["tasks"] == 40 and d_["failed"] == 0
    assert 0 < d_["longest_cpu_s"] <= d_["lower_bound_s"]
    assert d_["lower_bound_s"] == pytest.approx(
        max(d_["longest_cpu_s"], d_["total_cpu_s"] / d_["cpus"]), abs=1e-3)
    assert 0 < d_["long_done_s"] <= d_["makespan_s"]
    assert workloads.get(name).parse(res.stdout, 0.0) == d_["makespan_s"]
    # The inputs were read from the runner's own copy, made before the clock started; the
    # copy and the outputs are removed with the batch.
    assert d_["stage_s"] > 0
    assert '"$IN"' in rows[0][1] and str(d) not in rows[0][1]
    assert not (work / "longtail-out").exists() and not (work / "longtail-in").exists()


@pytest.mark.parametrize("name", ["lt-compress", "lt-checksum", "lt-logs", "lt-analytics"])
def test_inputs_are_the_same_bytes_from_the_same_seed(name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    digests = []
    for k in ("a", "b"):
        monkeypatch.setenv("SCHEDCP_CACHE_DIR", str(tmp_path / k))
        digests.append(_tree_digest(lt.inputs(tiny(name))))
    assert digests[0] == digests[1]
    sizes = tiny(name).sizes()
    assert sizes[lt.LONG_INDEX] == 3 * sizes[0] and len(set(sizes)) == 2


def test_new_sizes_make_new_inputs_and_drop_the_old(cache: Path) -> None:
    a = lt.inputs(tiny("lt-compress"))
    b = lt.inputs(dataclasses.replace(tiny("lt-compress"), unit=3000))
    assert a != b and b.is_dir() and not a.exists()
    assert os.path.getsize(b / "in00.txt") >= 3000 > os.path.getsize(b / "in01.txt") - 1000


def test_observing_a_batch_skips_its_set_up_and_names_the_long_job(cache: Path) -> None:
    """At its lab size: the runner copies 24 MB of inputs before its mark, and neither
    tier 1 nor the accounting may take that copy for the batch (a copy by a child process
    was the busiest job of lt-checksum and lt-gitadd; tier 1 saw only the copy)."""
    w = lt.BY_NAME["lt-compress"]
    d = lt.inputs(w)
    work = cache / "work"
    work.mkdir()
    out = run_profile(["sh", "-c", f"cd {work} && {lt.command(w)}"], 0.5, lead_s=0.1,
                      after_mark=True)
    assert out["exit"] == 0
    prof = from_run(out, ("minimise makespan",))
    assert prof.characteristics["exits_long_comm"] == w.long_comm, prof.characteristics
    assert "cp" not in [t["comm"] for t in out["exits"]["top"]]
    assert (d / "runner.py").read_text().count(START_MARK) == 1
