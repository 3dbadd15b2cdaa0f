"""The tuner proposes settings of the leader's declared tunables, within their ranges."""

from __future__ import annotations

from schedcpd.agent.search import Arm
from schedcpd.agent.tuning import Tuner
from schedcpd.bpf.policy import Tunable

TUNABLES = (Tunable("slice_us", "u64", 20000, min=1000, max=100000),
            Tunable("preempt", "bool", True),
            Tunable("long_comms", "str", ""),
            Tunable("fixed", "u32", 3, min=3, max=3))


def test_asks_new_settings_within_the_declared_ranges() -> None:
    leader = Arm("p", {"slice_us": 20000, "long_comms": "ffmpeg"})
    t = Tuner(leader, TUNABLES, 0.0, seed=1)
    asked = t.ask(4)
    assert len(asked) == 4 and len({a.key() for a in asked}) == 4
    for a in asked:
        assert a.policy == "p" and leader.key() != a.key()
        assert 1000 <= int(a.params["slice_us"]) <= 100000
        assert isinstance(a.params["preempt"], bool)
        assert a.params["long_comms"] == "ffmpeg"  # a name from the profile is kept
        assert "fixed" not in a.params  # nothing to search in a one-value range


def test_the_same_evidence_asks_the_same_questions() -> None:
    leader = Arm("p", {})
    one, two = Tuner(leader, TUNABLES, 0.0, seed=3), Tuner(leader, TUNABLES, 0.0, seed=3)
    assert [a.key() for a in one.ask(3)] == [a.key() for a in two.ask(3)]


def test_told_results_reach_the_optimizer() -> None:
    t = Tuner(Arm("p", {}), TUNABLES, 0.0, seed=2)
    a, b = t.ask(2)
    t.tell(a, 0.2)
    t.tell(b, None)  # refused or failed: the worst value
    told = sorted(t.told().values())
    assert told == [-1.0, 0.0, 0.2]  # the leader's own trial is the 0.0


def test_a_policy_without_searchable_tunables_has_nothing_to_tune() -> None:
    t = Tuner(Arm("p", {}), (Tunable("long_comms", "str", ""),), 0.0)
    assert t.empty and t.ask(3) == []
