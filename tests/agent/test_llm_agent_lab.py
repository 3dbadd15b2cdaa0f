"""sched-agent with a real LLM: the plumbing and the safety rails, NOT the model's judgement.

A real llama.cpp server (llama-cpp-python) runs the 270M Gemma 3 GGUF shipped on PyPI: a
tiny base model that cannot write a working scheduler. The daemon (real process, real bus,
the lab guest as target) is allowed only to compose new schedulers, so every plan is code.
The test proves that the loop runs end to end through tool calls and structured output,
that the code reaches the Execution Verifier and is refused there, that none of it is ever
deployed, and that the episode ends cleanly with its reason and its budget on record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent import profiles as P
from tests.daemon.test_daemon_lab import policies_with_test_ones
from tests.support.bus import private_bus
from tests.support.daemon import DaemonProcess, Signals
from tests.support.llm import MODEL_ALIAS, llama_server

pytestmark = pytest.mark.lab

CONFIG = """mode = "auto"
[verifier]
dynamic = "quick"
[agent]
backend = "openai"
model = "{model}"
url = "{url}"
allow = ["compose"]
max_iterations = 2
max_fixes = 1
max_llm_calls = 10
max_tokens = 40000
[events]
containers = false
processes = false
udev = false
drift = false
"""
# How an episode with an unusable model may end: each is a clean stop with a reason.
CLEAN_ENDS = ("iteration limit", "budget spent", "answers stayed unusable",
              "chosen again after the verifier refused", "the backend stopped",
              "keep the current scheduler")


async def test_real_llm_plumbing_and_safety_rails_not_its_judgement(tmp_path: Path) -> None:
    with llama_server() as url, private_bus(tmp_path) as bus:
        cfg = tmp_path / "schedcpd.toml"
        cfg.write_text(CONFIG.format(model=MODEL_ALIAS, url=url))
        env = {"SCHEDCP_POLICIES_DIR": str(policies_with_test_ones(tmp_path / "policies"))}
        d = DaemonProcess(bus, tmp_path / "state", cfg, "--target", "vm", env=env)
        d.start()
        try:
            c = await d.client(timeout_s=180)
            sig = Signals()
            await c.on_signals(sig)
            # The profile is given: the test is about the model's part, not the guest's.
            ep_id = (await c.tool("optimize", target="long-tail batch",
                                  profile=P.long_tail().to_dict()))["episode_id"]
            done = await sig.wait("EpisodeFinished", 900)
            assert done["id"] == ep_id
            ep = await c.tool("episode", episode_id=ep_id, record=True)
            rec = ep["record"]
            assert rec["backend"] == "openai" and ep["state"] == "no_change", ep
            assert any(e in rec["stop_reason"] for e in CLEAN_ENDS), rec["stop_reason"]
            # Tool calls: through the registry, read-only, each answered (the tiny model's
            # arguments are often out of range: the registry's own named error is the
            # answer then, as it would be on D-Bus or MCP).
            assert rec["tool_calls"], "the model called no tool"
            assert {t["tool"] for t in rec["tool_calls"]} <= {"list_policies", "get_policy"}
            assert {t["result"] for t in rec["tool_calls"]} <= {"ok", "InvalidArgument",
                                                                "NotFound"}
            # Structured output: every plan the loop acted on is a well-formed compose.
            plans = [it["plan"] for it in rec["iterations"] if it["plan"]]
            assert plans and all(p["action"] == "compose" and p["source"] for p in plans)
            # The code went to the verifier, and the verifier refused all of it.
            attempts = [a for it in rec["iterations"] for a in it["attempts"]]
            assert attempts, rec
            assert not any(a["passed"] for a in attempts)
            assert all(a["stage"] and a["findings"] for a in attempts)
            # Nothing was deployed or even proposed; the guest runs its own scheduler.
            hist = await c.tool("deployment_history")
            assert hist["deployments"] == [] and await c.tool("list_proposals") == []
            assert (await c.status())["sched_ext_state"] == "disabled"
            # The budget is on record: every call counted, within the limits.
            u = rec["usage"]
            assert 1 <= u["llm_calls"] <= 10 and 0 < u["tokens"] <= 40000
            mine = next(e for e in hist["episodes"] if e["id"] == ep_id)
            assert (mine["llm_calls"], mine["tokens"]) == (u["llm_calls"], u["tokens"])
            # What the model wrote is kept as candidates, retired once refused.
            names = {a["policy"] for a in attempts}
            for name in names:
                pol = await c.tool("get_policy", name=name)
                assert pol["provenance"] == "agent" and pol["status"] == "retired", pol
            c.close()
        finally:
            assert d.stop() == 0, d.tail()
