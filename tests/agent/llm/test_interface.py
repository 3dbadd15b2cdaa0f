"""The interface's own rules, which need no model: building clients from the
configuration's settings, reading tool arguments and structured replies, refusing
requests that contradict themselves."""

from __future__ import annotations

from typing import Any

import pytest

from schedcpd.agent.llm import (
    LLMError,
    Message,
    Reply,
    StructuredOutputError,
    ToolSpec,
    Usage,
    make_client,
    parse_json,
)
from schedcpd.agent.llm.client import check_request, parse_arguments
from schedcpd.agent.llm.openai_client import strict_compatible

URL = "http://127.0.0.1:9/v1"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
          "required": ["n"]}


def reply(content: str, finish: str = "stop") -> Reply:
    return Reply(content, (), Usage(10, 5), finish, "m")


@pytest.mark.parametrize("backend", ["", "builtin", "OpenAI", "anthropic"])
def test_a_bad_backend_name_is_a_value_error_naming_the_choices(backend: str) -> None:
    with pytest.raises(ValueError, match=r"agent\.backend.*ollama, openai"):
        make_client(backend, "m", URL, "")


@pytest.mark.parametrize("model, url, words", [
    ("", URL, "agent.model is not set"),
    ("m", "", "agent.url is not set"),
    ("m", "127.0.0.1:8080", "http:// or https://"),
])
def test_a_missing_model_or_url_is_a_value_error(model: str, url: str, words: str) -> None:
    for backend in ("openai", "ollama"):
        with pytest.raises(ValueError, match=words):
            make_client(backend, model, url, "")


def test_a_key_variable_that_is_not_set_is_a_value_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDCP_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="SCHEDCP_NO_SUCH_KEY, which is not set"):
        make_client("openai", "m", URL, "SCHEDCP_NO_SUCH_KEY")


def test_a_message_role_outside_the_four_is_refused() -> None:
    with pytest.raises(ValueError, match="role 'model'"):
        Message("model", "hi")


@pytest.mark.parametrize("raw, parsed", [
    ('{"a": 1}', {"a": 1}), ("[1]", None), ("not json", None), ('{"a": ', None), ("", None),
    ("[" * 100_000, None),
])
def test_tool_arguments_are_an_object_or_none(raw: str, parsed: dict[str, Any] | None) -> None:
    assert parse_arguments(raw) == parsed


def test_parse_json_returns_valid_values_and_explains_the_rest() -> None:
    assert parse_json(reply('{"n": 3}'), SCHEMA) == {"n": 3}
    with pytest.raises(StructuredOutputError, match="cut off by max_tokens") as err:
        parse_json(reply('{"n": ', "length"), SCHEMA)
    assert isinstance(err.value, LLMError) and err.value.reply.usage.total == 15
    with pytest.raises(StructuredOutputError, match="at n: 0 is less than the minimum"):
        parse_json(reply('{"n": 0}'), SCHEMA)
    with pytest.raises(StructuredOutputError, match="at the top level"):
        parse_json(reply('{"m": 1}'), SCHEMA)


@pytest.mark.parametrize("choice, schema, tokens, timeout, words", [
    ("set", None, 8, 1.0, "names no tool"),
    ("a", SCHEMA, 8, 1.0, "give one of them"),
    (None, None, 0, 1.0, "max_tokens"),
    (None, None, 8, 0.0, "timeout_s"),
])
def test_contradictory_requests_are_value_errors(choice: str | None,
                                                 schema: dict[str, Any] | None, tokens: int,
                                                 timeout: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_request([ToolSpec("a", "", {"type": "object"})], choice, schema, tokens,
                      timeout)
    with pytest.raises(ValueError, match="unique"):
        check_request([ToolSpec("a", "", {}), ToolSpec("a", "", {})], None, None, 8, 1.0)


def test_only_schemas_written_for_strict_mode_are_sent_strict() -> None:
    closed = {"type": "object", "additionalProperties": False, "required": ["a", "b"],
              "properties": {"a": {"type": "string"},
                             "b": {"type": "array", "items": {
                                 "type": "object", "additionalProperties": False,
                                 "required": ["c"], "properties": {"c": {"type": "integer"}}}}}}
    assert strict_compatible(closed)
    assert not strict_compatible(SCHEMA)  # open object
    inner_open = {**closed, "properties": {**closed["properties"], "b": {  # type: ignore[dict-item]
        "type": "array", "items": {"type": "object", "properties": {"c": {}}}}}}
    assert not strict_compatible(inner_open)
    partly_required = {**closed, "required": ["a"]}
    assert not strict_compatible(partly_required)
