"""`schedcpctl demo`'s own parts (the whole demo is `make demo`, minutes in the lab)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from schedcpd import demo


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
