"""Measured history, what it recommends and warns about, and promotion on evidence."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedcpd.analysis.stats import compare
from schedcpd.repository import Host, Measurement, Profile, Repository, RepositoryError
from schedcpd.repository.embeddings import Embedder
from schedcpd.store import Store

from .conftest import profile, table_dump

HOST = Host("7.3.4-cloud-amd64", 2)


def better(samples: int = 8, ratio: float = 0.8) -> Measurement:
    return Measurement("makespan_s", True, 10.0, 10.0 * ratio, ratio - 0.05, ratio + 0.05,
                       samples)


def worse(ratio: float = 1.3) -> Measurement:
    return Measurement("makespan_s", True, 10.0, 10.0 * ratio, ratio - 0.1, ratio + 0.1, 8)


async def test_record_run_stores_numbers_and_outcome(repo: Repository) -> None:
    c = compare("makespan_s", [10.0, 10.2, 9.9, 10.1, 10.0], [8.0, 8.1, 7.9, 8.2, 8.0])
    r = await repo.record_run("fifo", {"slice_us": 5000}, profile(), Measurement.from_comparison(c),
                              host=HOST)
    assert r.outcome == "improved" and r.samples == 5 and r.params == {"slice_us": 5000}
    assert r.ratio == pytest.approx(0.8, abs=0.01) and r.gain == pytest.approx(0.2, abs=0.01)
    assert r.host_kernel == HOST.kernel and "makespan_s ratio 0.80" in r.reason
    neutral = Measurement("makespan_s", True, 10.0, 9.9, 0.9, 1.05, 8)
    assert (await repo.record_run("fifo", {}, profile(), neutral)).outcome == "neutral"
    assert (await repo.record_run("fifo", {}, profile(), worse())).outcome == "regressed"
    failed = await repo.record_run("vtime", {}, profile(), None,
                                   failure="watchdog: runnable task stall")
    assert failed.outcome == "failed" and failed.ratio is None
    assert [x.outcome for x in await repo.runs("fifo")] == ["regressed", "neutral", "improved"]


async def test_best_for_ranks_by_gain_on_similar_profiles(repo: Repository) -> None:
    longtail = profile()
    await repo.record_run("fifo", {"slice_us": 5000}, longtail, better(ratio=0.9))
    best = await repo.record_run("vtime", {}, longtail, better(ratio=0.7))
    await repo.record_run("vtime", {"slice_us": 1000}, longtail, worse())
    # measured on an unrelated workload: must not count for the long-tail batch
    web = Profile("nginx serving small static files to many clients", "fp-web",
                  {"tasks": 300.0, "cpu_util": 0.3})
    await repo.record_run("fifo", {}, web, better(ratio=0.5))
    similar = Profile("forty CPU-bound processes, one of them much longer", "fp-other",
                      {"tasks": 40.0, "cpu_util": 0.9})
    recs = await repo.best_for(similar)
    assert [(r.policy, dict(r.params)) for r in recs] == [("vtime", {}),
                                                          ("fifo", {"slice_us": 5000})]
    assert recs[0].gain == pytest.approx(0.3) and 0.6 < recs[0].similarity < 1
    assert recs[0].run_ids == (best.id,) and recs[0].runs == 1
    assert await repo.best_for(Profile("idle", "fp-idle", {"tasks": 1.0})) == []


async def test_accepts_the_analysis_engines_workload_profile(repo: Repository) -> None:
    from schedcpd.analysis.profile import WorkloadProfile

    build = WorkloadProfile(description="parallel kernel build, 2 CPUs saturated by cc1",
                            characteristics={"ncpu": 2, "top0_comm": "cc1", "runnable": 9})
    run = await repo.record_run("fifo", {}, build, better())
    assert run.profile_fingerprint.startswith("desc-")  # no fingerprint given: derived
    again = WorkloadProfile(description="make -j8 of the kernel on a small box",
                            characteristics={"ncpu": 2, "top0_comm": "cc1", "runnable": 8},
                            fingerprint="fp-build")
    recs = await repo.best_for(again)
    assert [r.policy for r in recs] == ["fifo"]
    other = WorkloadProfile(description="make -j8 of the kernel on a small box",
                            characteristics={"ncpu": 2, "top0_comm": "java", "runnable": 900})
    assert await repo.best_for(other) == []  # same words, different shape: not similar


async def test_antipatterns_name_what_failed_on_similar_work(repo: Repository) -> None:
    await repo.record_run("vtime", {"slice_us": 1000}, profile(), worse(1.4))
    await repo.record_run("vtime", {"slice_us": 1000}, profile(), worse(1.2))
    await repo.record_run("fifo", {}, profile(), None, failure="verifier: unbounded loop")
    await repo.record_run("fifo", {"slice_us": 5000}, profile(), better())
    anti = await repo.antipatterns(profile(fp="fp-new"))
    assert [(a.policy, a.count, a.outcome) for a in anti] == [
        ("vtime", 2, "regressed"), ("fifo", 1, "failed")]
    assert anti[0].worst_ratio == pytest.approx(1.4) and anti[0].params == {"slice_us": 1000}
    assert "unbounded loop" in anti[1].reason


async def test_trend_orders_runs_and_fits_a_slope(repo: Repository) -> None:
    for i, ratio in enumerate([1.0, 0.95, 0.9, 0.85]):
        await repo.record_run("fifo", {}, profile(), better(ratio=ratio), at=1000.0 + i)
    t = await repo.trend("fifo")
    assert [p.ratio for p in t.points] == pytest.approx([1.0, 0.95, 0.9, 0.85])
    assert t.slope == pytest.approx(0.05)
    with pytest.raises(RepositoryError, match="no policy"):
        await repo.trend("nope")


async def test_generated_policy_is_promoted_only_on_verified_measured_gains(
        repo: Repository) -> None:
    gen = await repo.add_generated("// tuned fifo\n", "fifo")
    assert gen.status == "candidate" and gen.parent == "fifo" and gen.provenance == "agent"
    assert gen.tunables == (await repo.get("fifo")).tunables
    good = await repo.record_run(gen.name, {}, profile(), better(samples=8))
    with pytest.raises(RepositoryError, match="cannot become promoted"):
        await repo.promote(gen.name, [good.id], reason="faster")
    await repo.verify(gen.name, {"static": "ok", "kernel_verifier": "ok"}, reason="verified")
    few = await repo.record_run(gen.name, {}, profile(), better(samples=3))
    bad = await repo.record_run(gen.name, {}, profile(), worse())
    other = await repo.record_run("fifo", {}, profile(), better())
    for ids, msg in [([], "needs the ids"), ([few.id], "at least 5 samples"),
                     ([good.id, bad.id], "failed or regressed"), ([other.id], "another policy"),
                     ([10**6], "does not exist")]:
        with pytest.raises(RepositoryError, match=msg):
            await repo.promote(gen.name, ids, reason="faster")
        assert (await repo.get(gen.name)).status == "verified"
    change = await repo.promote(gen.name, [good.id, few.id], reason="20% shorter makespan")
    assert change.evidence == {"runs": [good.id, few.id]}
    assert [c.to_status for c in await repo.status_changes(gen.name)] == [
        "candidate", "verified", "promoted"]
    await repo.retire(gen.name, reason="regressed on 7.3", run_ids=[bad.id])
    with pytest.raises(RepositoryError, match="cannot become"):
        await repo.retire(gen.name, reason="again")
    await repo.reinstate(gen.name, reason="new kernel")
    assert (await repo.get(gen.name)).status == "candidate"


async def test_add_generated_refuses_bad_input(repo: Repository) -> None:
    before = await table_dump(repo.store)
    cases: list[dict[str, Any]] = [
        {"source": "x", "parent": "nope"}, {"source": "", "parent": "fifo"},
        {"source": "x", "parent": None}, {"source": "x", "parent": "fifo", "name": "Bad Name"},
        {"source": "x", "parent": "fifo", "name": "fifo"},
        {"source": "x", "parent": "fifo", "workloads": []},
        {"source": "x\0", "parent": "fifo"},
    ]
    for kw in cases:
        with pytest.raises(RepositoryError):
            await repo.add_generated(**kw)
    assert await table_dump(repo.store) == before


BAD_NUMBERS = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-1.0), st.just(0.0),
                        st.text(max_size=3), st.none(), st.booleans())
GOOD = {"metric": "makespan_s", "lower_is_better": True, "baseline": 10.0, "value": 8.0,
        "ci_low": 0.7, "ci_high": 0.9, "samples": 8}


@st.composite
def bad_runs(draw: st.DrawFn) -> dict[str, Any]:
    """A run with exactly one thing wrong."""
    run: dict[str, Any] = {"policy": "fifo", "params": {"slice_us": 5000},
                           "profile": profile(), "m": dict(GOOD), "failure": None,
                           "host": HOST}
    what = draw(st.sampled_from(["policy", "params", "profile", "m", "failure", "host"]))
    if what == "policy":
        run["policy"] = draw(st.one_of(st.text(max_size=8).filter(
            lambda s: s not in ("fifo", "vtime")), st.integers(), st.none()))
    elif what == "params":
        run["params"] = draw(st.sampled_from([
            {"slice_us": 1}, {"slice_us": 10**9}, {"slice_us": "many"}, {"nope": 1},
            {"slice_us": True}, ["slice_us"], None, {"slice_us": 1.5}]))
    elif what == "profile":
        run["profile"] = draw(st.sampled_from([
            Profile("", "fp", {}), Profile("d", 5, {}),  # type: ignore[arg-type]
            Profile("d", "f" * 300, {}), Profile("d", "fp", {"x": math.nan}),
            Profile("d", "fp", {"x": "s" * 201}), Profile("d", "fp", {"x": [1]}),  # type: ignore[dict-item]
            Profile("d", "fp", None),  # type: ignore[arg-type]
            Profile(None, "fp", {})]))  # type: ignore[arg-type]
    elif what == "m":
        key = draw(st.sampled_from(["baseline", "value", "ci_low", "ci_high", "samples",
                                    "metric", "lower_is_better", "reversed", "missing"]))
        if key == "reversed":
            run["m"].update(ci_low=0.9, ci_high=0.7)
        elif key == "missing":
            run["m"] = None
        elif key == "metric":
            run["m"]["metric"] = draw(st.sampled_from(["", " ", "m" * 65, None]))
        elif key == "lower_is_better":
            run["m"]["lower_is_better"] = draw(st.sampled_from([None, 1, "yes"]))
        elif key == "samples":
            run["m"]["samples"] = draw(st.sampled_from([0, -3, 2.5, True, None]))
        else:
            bad = draw(BAD_NUMBERS)
            if key in ("value", "ci_low") and bad == 0.0:  # valid there
                bad = -1.0
            run["m"][key] = bad
    elif what == "failure":
        run["failure"] = draw(st.sampled_from(["", "   ", 3]))
    else:
        run["host"] = draw(st.sampled_from([Host("", 2), Host("k", 0), Host("k", True),
                                            "localhost"]))
    return run


def test_record_run_refuses_bad_input_and_changes_nothing(
        tmp_path: Path, embedder: Embedder, library_copy: Path) -> None:
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(Store.open(tmp_path / "db"))
    repo = loop.run_until_complete(Repository.open(store, embedder, library_copy))
    loop.run_until_complete(repo.record_run("fifo", {}, profile(), better()))
    before = loop.run_until_complete(table_dump(store))

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(bad_runs())
    def check(run: dict[str, Any]) -> None:
        m = Measurement(**run["m"]) if run["m"] is not None else None
        with pytest.raises(RepositoryError) as err:
            loop.run_until_complete(repo.record_run(
                run["policy"], run["params"], run["profile"], m, failure=run["failure"],
                host=run["host"]))
        assert str(err.value)  # a message a person can act on
        assert loop.run_until_complete(table_dump(store)) == before

    try:
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()
