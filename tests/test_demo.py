"""`schedcpctl demo`'s own parts (the whole demo is `make demo`, minutes in the lab)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from schedcpd import config, demo


async def test_the_demo_bus_delivers_replies_and_signals(tmp_path: Path) -> None:
    proc, address = demo.start_bus(tmp_path)
    try:
        async with asyncio.timeout(10):  # a bus that drops replies hangs here
            a = await MessageBus(bus_address=address).connect()
            b = await MessageBus(bus_address=address).connect()
            reply = await a.call(Message(destination="org.freedesktop.DBus",
                                         path="/org/freedesktop/DBus",
                                         interface="org.freedesktop.DBus", member="GetId"))
            assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
            await a.request_name("org.schedcp.DemoTest")
            names = await b.call(Message(destination="org.freedesktop.DBus",
                                         path="/org/freedesktop/DBus",
                                         interface="org.freedesktop.DBus",
                                         member="ListNames"))
            assert names is not None and "org.schedcp.DemoTest" in names.body[0]
        a.disconnect()
        b.disconnect()
    finally:
        demo.stop_process(proc)
    assert proc.returncode is not None


def test_the_report_names_the_best_measured_gain() -> None:
    fb = {"baseline": 4.99, "candidate": 3.5, "ratio": 0.701, "ci_low": 0.70, "ci_high": 0.71,
          "n_baseline": 5, "n_candidate": 5}
    worse = dict(fb, candidate=4.5, ratio=0.9)
    ep = {"id": "e1", "state": "deployed", "record": {
        "stop_reason": "converged",
        "iterations": [
            {"n": 1, "plan": {"action": "configure", "policy": "sjf"}, "outcome": "improved",
             "feedback": worse},
            {"n": 2, "plan": {"action": "configure", "policy": "ljf",
                              "params": {"long_comms": "longjob"}},
             "outcome": "improved", "feedback": fb}],
        "usage": {"wall_s": 90, "llm_calls": 0, "tokens": 0}}}
    text = demo.report(ep)
    assert "iteration 2  configure ljf {'long_comms': 'longjob'} -> improved" in text
    assert "before 4.99 s (median of 5), after 3.50 s" in text
    assert "gain         29.9% (ratio 0.701" in text
    raced = {**ep, "record": {**ep["record"], "lab_runs": 24, "lab_s": 310.0, "races": [
        {"baseline": "baseline", "runs": 24, "verdict": "ljf beat baseline on makespan_s"}]}}
    text = demo.report(raced)
    assert "race 1       against baseline, 24 runs: ljf beat baseline" in text
    assert "24 lab runs in 310 s" in text


def test_the_lab_config_is_what_the_daemon_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "schedcpd.toml"
    cfg.write_text(demo.lab_config("full", 4, iterations=2, backend="openai",
                                   model='gemma "3" 270m', url="http://127.0.0.1:9/v1",
                                   timeout_s=60.0))
    got = config.load(cfg)
    assert (got.mode, got.verifier.dynamic) == ("auto", "full")
    assert (got.agent.backend, got.agent.model, got.agent.url) == (
        "openai", 'gemma "3" 270m', "http://127.0.0.1:9/v1")
    assert (got.agent.feedback_runs, got.agent.max_iterations,
            got.agent.episode_timeout_s) == (4, 2, 60.0)
    # The workload runs in the guest: no host event source may start an episode of its own.
    assert not (got.events.containers or got.events.processes or got.events.udev
                or got.events.drift)
