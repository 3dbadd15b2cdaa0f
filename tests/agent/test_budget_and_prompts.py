"""Budgets, the quoting of machine data into prompts, and the checking of a model's plan:
pure code, on the real library's tunables."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedcpd.agent.budget import Budget, BudgetExceeded, Meter
from schedcpd.agent.llm import prompts
from schedcpd.agent.llm.backend import checked_plan
from schedcpd.agent.record import EpisodeRecord, Usage
from schedcpd.bpf.policy import load_library

LIB = {p.name: {"name": p.name} for p in load_library()}
TUNABLES = {p.name: {t.name: t for t in p.tunables} for p in load_library()}
ACTIONS = ("configure", "patch", "compose", "keep")


def test_each_budget_ends_the_episode_with_its_name() -> None:
    u = Usage()
    m = Meter(Budget(wall_s=900, llm_calls=2, tokens=100), u)
    m.check(before_llm_call=True)
    m.charge(40, 10)
    m.check(before_llm_call=True)
    m.charge(30, 10)
    with pytest.raises(BudgetExceeded, match="LLM call budget spent"):
        m.check(before_llm_call=True)
    assert (u.llm_calls, u.tokens, m.left_tokens()) == (2, 90, 10)
    m2 = Meter(Budget(tokens=50), Usage())
    m2.charge(50, 0)
    with pytest.raises(BudgetExceeded, match="token budget"):
        m2.check()
    m3 = Meter(Budget(cost=0.01, price_in_per_mtok=1000.0), Usage())
    m3.charge(20, 0)
    with pytest.raises(BudgetExceeded, match="cost budget"):
        m3.check()
    m4 = Meter(Budget(wall_s=5), Usage(), clock=0.0)  # started at boot: long ago
    with pytest.raises(BudgetExceeded, match="wall-time"):
        m4.check()


@given(st.text(max_size=400))
def test_no_machine_text_can_close_the_data_block(evil: str) -> None:
    rec = EpisodeRecord("e", evil, "openai", workload=evil,
                        profile={"description": evil, "characteristics": {"top0_comm": evil}})
    block = prompts.data_block(prompts.context(rec, []))
    inner = block.removeprefix("<<<DATA\n").removesuffix("\nDATA>>>")
    assert "DATA>>>" not in inner and "<<<" not in inner and ">" not in inner
    if not inner.endswith('"...cut"'):
        request = json.loads(inner)["request"]
        assert request.isprintable() and len(request) <= prompts.MAX_TEXT + 3


def test_a_plan_is_checked_against_the_library() -> None:
    ok = checked_plan({"action": "configure", "policy": "ljf",
                       "params": [{"name": "long_comms", "value": "awk"}], "rationale": "r"},
                      ACTIONS, LIB, TUNABLES)
    assert (ok.policy, ok.params) == ("ljf", {"long_comms": "awk"})
    for bad, words in [
            ({"action": "configure", "policy": "nope"}, "no policy named 'nope'"),
            ({"action": "patch", "policy": "nope"}, "no policy named 'nope'"),
            ({"action": "configure", "policy": "fifo", "params": [{"name": "x", "value": 1}]},
             "no tunable 'x'"),
            ({"action": "configure", "policy": "fifo",
              "params": [{"name": "slice_us", "value": 1}]}, "slice_us"),
            ({"action": "configure", "policy": "fifo",
              "params": [{"name": "slice_us", "value": 5000}] * 2}, "given twice"),
            ({"action": "rm -rf"}, "is not one of")]:
        v = {"policy": "", "params": [], "rationale": "", **bad}
        with pytest.raises(ValueError, match=words):
            checked_plan(v, ACTIONS, LIB, TUNABLES)
    with pytest.raises(ValueError, match="not one of"):
        checked_plan({"action": "compose", "policy": "", "params": [], "rationale": ""},
                     ("configure", "keep"), LIB, TUNABLES)
    composed = checked_plan({"action": "compose", "policy": "fifo", "params": [],
                             "rationale": "new"}, ACTIONS, LIB, TUNABLES)
    assert (composed.action, composed.policy, composed.source) == ("compose", "", None)
    keep = checked_plan({"action": "keep", "policy": "", "params": [], "rationale": "fine"},
                        ACTIONS, LIB, TUNABLES)
    assert keep.action == "keep" and keep.rationale == "fine"


def test_the_source_is_taken_from_the_reply_s_code_block() -> None:
    assert prompts.code_block("Here:\n```c\nint x;\n```\nbye") == "int x;"
    assert prompts.code_block("```\nvoid f(void) {}\n```") == "void f(void) {}"
    assert prompts.code_block("no fence at all") == "no fence at all"
    assert prompts.code_block("```c\nunterminated") == "unterminated"


def test_the_plan_schema_names_only_what_exists() -> None:
    sch = prompts.plan_schema(ACTIONS, sorted(LIB), ["slice_us"])
    assert sch["properties"]["policy"]["enum"] == ["", *sorted(LIB)]
    item = sch["properties"]["params"]["items"]["properties"]
    assert item["name"]["enum"] == ["slice_us"]
    # No long string in the schema: llama.cpp's grammar for a maxLength of ~1500 or more
    # crashed its server here.
    lengths = [v.get("maxLength", 0) for v in sch["properties"].values()] + [
        item["value"]["maxLength"]]
    assert max(lengths) <= 200
