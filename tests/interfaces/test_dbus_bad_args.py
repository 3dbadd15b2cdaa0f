"""Generated bad arguments on the D-Bus methods, against the package's one daemon.

Each case is bad by construction (a wrong type inside a{sv}, an unknown key, an oversized
string, an unknown id or name, a mode that does not exist, JSON that is not an object):
the daemon answers with the named org.schedcp.Error.* it promises, and the status, the
proposals and the audit log are the same before and after.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from dbus_fast import MessageType, Variant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedcpd import paths
from schedcpd.bpf.policy import load_library
from schedcpd.client import DaemonClient
from schedcpd.config import MODES
from schedcpd.dbus_service import ERROR_PREFIX
from schedcpd.tools import REGISTRY
from tests.interfaces.conftest import raw_call, snapshot

pytestmark = pytest.mark.lab

# (member, signature, body, the error kind it must get)
Case = tuple[str, str, list[Any], str]
POLICIES = {p.name for p in load_library(paths.policies_dir())}
TOOLS = {t.name for t in REGISTRY.tools()}

# D-Bus strings are UTF-8 without NUL: anything else the client library itself refuses.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


def longer_than(n: int) -> st.SearchStrategy[str]:
    """Oversized strings, built from a short one (hypothesis need not draw 4 KB)."""
    return st.tuples(text.filter(bool), st.integers(1, 64)).map(
        lambda t: (t[0] * (n + t[1]))[:n + t[1]])


def wrong(*types: str) -> st.SearchStrategy[Variant]:
    """A variant of a type other than the ones the key takes."""
    every = {"s": text.map(lambda s: Variant("s", s)),
             "x": st.integers(-2**63, 2**63 - 1).map(lambda i: Variant("x", i)),
             "b": st.booleans().map(lambda b: Variant("b", b)),
             # not integral: jsonschema takes 5.0 as the integer 5
             "d": st.integers(-10**9, 10**9).map(lambda i: Variant("d", i + 0.5)),
             "as": st.lists(text, max_size=3).map(lambda v: Variant("as", v)),
             "a{sv}": st.dictionaries(text, text.map(lambda s: Variant("s", s)),
                                      max_size=2).map(lambda d: Variant("a{sv}", d))}
    return st.one_of(*(s for t, s in every.items() if t not in types))


def bad_options() -> st.SearchStrategy[dict[str, Variant]]:
    """Optimize options with exactly one thing wrong (a valid set would start an episode)."""
    unknown = st.tuples(text.filter(lambda k: k not in ("policy", "params", "profile")),
                        wrong()).map(lambda kv: {kv[0]: kv[1]})
    bad_name = text.filter(lambda p: not (p and len(p) <= 32 and all(
        c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in p)))
    return st.one_of(
        unknown,
        wrong("s").map(lambda v: {"policy": v}),
        bad_name.map(lambda p: {"policy": Variant("s", p)}),
        wrong("a{sv}").map(lambda v: {"params": v}),
        wrong("a{sv}").map(lambda v: {"profile": v}),
        st.just({"profile": Variant("a{sv}", {"goals": Variant("as", ["fairness"])})}))


def cases() -> st.SearchStrategy[Case]:
    unknown_id = text.filter(lambda s: 0 < len(s) <= 64)
    ids_bad = st.one_of(st.just(""), longer_than(64))
    return st.one_of(
        text.filter(lambda m: m not in MODES).map(
            lambda m: ("SetMode", "s", [m], "InvalidArgument")),
        unknown_id.map(lambda i: ("Approve", "s", [i], "NotFound")),
        ids_bad.map(lambda i: ("Approve", "s", [i], "InvalidArgument")),
        st.tuples(unknown_id, text).map(lambda t: ("Reject", "ss", [*t], "NotFound")),
        st.tuples(ids_bad, text).map(lambda t: ("Reject", "ss", [*t], "InvalidArgument")),
        st.tuples(unknown_id, longer_than(4096)).map(
            lambda t: ("Reject", "ss", [*t], "InvalidArgument")),
        longer_than(4096).map(lambda r: ("Rollback", "s", [r], "InvalidArgument")),
        st.tuples(text, bad_options()).map(
            lambda t: ("Optimize", "sa{sv}", [*t], "InvalidArgument")),
        longer_than(4096).map(lambda t: ("Optimize", "sa{sv}", [t, {}], "InvalidArgument")),
        st.one_of(
            wrong("x").map(lambda v: {"limit": v}),
            st.one_of(st.integers(max_value=0), st.integers(min_value=1001)).map(
                lambda n: {"limit": Variant("x", max(min(n, 2**63 - 1), -2**63))}),
            wrong("s").map(lambda v: {"action": v}),
            st.tuples(text.filter(lambda k: k not in ("limit", "action")), wrong()).map(
                lambda kv: {kv[0]: kv[1]}),
        ).map(lambda f: ("History", "a{sv}", [f], "InvalidArgument")),
        longer_than(1000).map(lambda q: ("ListPolicies", "s", [q], "InvalidArgument")),
        text.filter(lambda n: n and n not in POLICIES and len(n) <= 64).map(
            lambda n: ("GetPolicy", "s", [n], "NotFound")),
        st.one_of(st.just(""), longer_than(64)).map(
            lambda n: ("GetPolicy", "s", [n], "InvalidArgument")),
        text.filter(lambda n: n not in TOOLS).map(
            lambda n: ("CallTool", "ss", [n, "{}"], "NotFound")),
        st.one_of(text.filter(lambda j: not _reads_as_json(j)),
                  st.sampled_from(["[]", "1", '"x"', "null", "true"])).map(
            lambda j: ("CallTool", "ss", ["status", j], "InvalidArgument")),
        st.sampled_from([("episode", {}), ("get_policy", {"name": 1}),
                         ("profile", {"interval_s": 0.01}), ("list_policies", {"limit": -1}),
                         ("workload_result", {"job": ""})]).map(
            lambda t: ("CallTool", "ss", [t[0], json.dumps(t[1])], "InvalidArgument")),
    )


def _reads_as_json(s: str) -> bool:
    if not s:
        return True  # the adapter reads "" as {}
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases())
async def test_bad_arguments_get_a_named_error_and_change_nothing(
        client: DaemonClient, case: Case) -> None:
    member, signature, body, kind = case
    before = await snapshot(client)
    reply = await raw_call(client, member, signature, *body)
    assert reply.message_type == MessageType.ERROR, (case, reply.body)
    assert reply.error_name == ERROR_PREFIX + kind, (case, reply.error_name, reply.body)
    assert reply.body and isinstance(reply.body[0], str) and reply.body[0]
    assert await snapshot(client) == before, case


@pytest.mark.parametrize("member,signature,body", [
    ("Approve", "x", [1]),
    ("SetMode", "as", [["auto"]]),
    ("Optimize", "s", ["only the target"]),
    ("History", "s", ["limit=5"]),
    ("GetPolicy", "", []),
])
async def test_a_wrong_dbus_signature_is_refused_before_the_daemon(
        client: DaemonClient, member: str, signature: str, body: list[Any]) -> None:
    before = await snapshot(client)
    reply = await raw_call(client, member, signature, *body)
    assert reply.message_type == MessageType.ERROR
    # dbus-fast matches a call by name and signature: another signature is another method.
    assert reply.error_name == "org.freedesktop.DBus.Error.UnknownMethod", reply.body
    assert f'signature "{signature}"' in reply.body[0]
    assert await snapshot(client) == before
