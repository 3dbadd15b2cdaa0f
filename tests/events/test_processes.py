"""Process episodes from the real netlink proc connector."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from schedcpd.events.episodes import Debouncer, EpisodeEvent
from schedcpd.events.proc_connector import ProcConnectorSource, ProcessTracker
from tests.events.test_containers import collect

CPROJ = Path(__file__).parent / "data" / "cproj"


def mine(events: list[EpisodeEvent], pids: set[int]) -> list[EpisodeEvent]:
    return [e for e in events if set(e.episode.pids) & pids]


async def test_make_j2_is_one_episode_not_hundreds(tmp_path: Path) -> None:
    # This build lasts about 0.25 s on two cores: settle well below that, or a fast run of
    # make is (rightly) dropped as noise.
    async with ProcConnectorSource(settle_s=0.1) as src:
        make = await asyncio.create_subprocess_exec(
            "make", "-s", "-j2", f"O={tmp_path}", "-C", str(CPROJ),
            stdout=asyncio.subprocess.DEVNULL)
        assert await make.wait() == 0
        events = await collect(src, 0.8)
    assert (tmp_path / "app").exists()
    ours = mine(events, {make.pid})
    assert [(e.action, e.episode.name) for e in ours] == [("start", "make"), ("end", "make")], \
        (events, src.stats)
    # The episode names the processes it had when it settled: make and its first children.
    assert len(ours[0].episode.pids) >= 2, "make's children were folded into its episode"
    compilers = [e for e in events if e.episode.name in {"cc1", "gcc", "cc", "as", "ld"}]
    assert compilers == []
    assert src.stats.forks >= 18 and src.stats.lost == 0


async def test_short_lived_processes_are_not_episodes() -> None:
    async with ProcConnectorSource(settle_s=0.5) as src:
        procs = [await asyncio.create_subprocess_exec("true") for _ in range(5)]
        pids = {p.pid for p in procs}
        for p in procs:
            await p.wait()
        events = await collect(src, 0.8)
    assert mine(events, pids) == []
    assert src.stats.execs >= 5


async def test_threads_do_not_count_as_processes() -> None:
    code = "import threading; [t.start() or t.join() for t in " \
           "[threading.Thread(target=lambda: None) for _ in range(50)]]"
    async with ProcConnectorSource(settle_s=0.3) as src:
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
        await p.wait()
        await asyncio.sleep(0.2)
    assert src.stats.threads_ignored >= 100  # 50 thread forks and 50 thread exits


def test_a_pre_existing_parent_spawning_many_children_is_one_burst() -> None:
    deb = Debouncer(settle_s=0.5)
    tr = ProcessTracker(deb, burst_limit=8, burst_window_s=1.0, linger_s=2.0)
    for i in range(200):  # a shell we never saw start runs 200 commands in 0.2 s
        tr.fork(parent_tgid=100, child=1000 + i, now=i / 1000)
        tr.exit(1000 + i, now=i / 1000 + 0.0005)
    assert len(deb) == 1 + 8, "eight early children, then one burst key"
    starts = [e for e in deb.due(0.6) if e.action == "start"]
    assert [e.episode.key for e in starts] == ["burst:100"]
    tr.expire(3.0)
    assert [e.action for e in deb.due(3.0)] == ["end"]
    assert len(deb) == 0 and tr.tracked() == 0


def test_a_process_tree_is_one_key_and_ends_with_its_last_process() -> None:
    deb = Debouncer(settle_s=0.1)
    tr = ProcessTracker(deb)
    tr.fork(1, 10, 0.0)  # an untracked parent starts a root
    tr.fork(10, 11, 0.01)
    tr.fork(11, 12, 0.02)
    tr.exit(10, 0.5)
    assert [e.action for e in deb.due(0.5)] == ["start"]
    tr.exit(11, 0.6)
    assert deb.due(0.7) == []
    tr.exit(12, 0.8)
    ends = deb.due(0.9)
    assert [(e.action, e.episode.key, e.episode.pids) for e in ends] == [
        ("end", "pid:10", (10, 11, 12))]
