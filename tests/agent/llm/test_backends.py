"""Both LLM backends against a real model: the openai client against llama-cpp-python's
server, the ollama client against the OllamaShim in front of the same server.

Needs the model server (marker ``llm``): llama-cpp-python[server] and the gemma3 270M
model package from the dev extra. The model is a small base model: the tests ask for what
constrained decoding makes certain (a valid tool call, valid JSON) and for some text.
"""

from __future__ import annotations

import jsonschema
import pytest

from schedcpd.agent.llm import ChatClient, LLMError, Message, ToolSpec, make_client, parse_json
from schedcpd.agent.llm.openai_client import OpenAIClient
from tests.agent.llm.conftest import API_KEY, KEY_ENV
from tests.support.llm import MODEL_ALIAS, canned_http, free_port
from tests.support.ollama_shim import OllamaShim

pytestmark = pytest.mark.llm

# Only keywords llama-cpp-python's schema-to-grammar conversion enforces: it ignores
# numeric ranges (minimum, maximum), which the tool registry checks when the call is made.
SET_SLICE = ToolSpec(
    name="set_slice",
    description="Set the time slice of a sched_ext policy.",
    parameters={
        "type": "object",
        "properties": {
            "policy": {"type": "string", "enum": ["fifo", "ljf", "batch"]},
            "slice_us": {"type": "integer"},
            "preempt": {"type": "boolean"},
        },
        "required": ["policy", "slice_us", "preempt"],
        "additionalProperties": False,
    },
)
READ_STATUS = ToolSpec("read_status", "Read the daemon's status.",
                       {"type": "object", "properties": {}, "additionalProperties": False})
PROFILE = {
    "type": "object",
    "properties": {
        "character": {"type": "string", "enum": ["cpu-bound", "interactive", "mixed"]},
        "threads": {"type": "integer"},
        "latency_sensitive": {"type": "boolean"},
    },
    "required": ["character", "threads", "latency_sensitive"],
    "additionalProperties": False,
}
ASK = [Message("system", "You tune Linux CPU schedulers."),
       Message("user", "A kernel build runs with make -j2 on two cores. What helps it?")]


async def test_plain_chat_returns_text_and_counts_tokens(client: ChatClient) -> None:
    reply = await client.chat(ASK, max_tokens=24)
    assert reply.content.strip()
    assert reply.tool_calls == ()
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.finish_reason in ("stop", "length")
    assert reply.model


async def test_a_prompt_of_the_agents_size_fits(client: ChatClient) -> None:
    # About 3,500 tokens, what the agent's role prompts with a profile and the tools'
    # schemas come to: the server's context must hold it and the reply.
    ps = "\n".join(f"pid {i} comm worker{i % 7} runs {i % 13} ms then sleeps."
                   for i in range(230))
    reply = await client.chat([Message("user", f"{ps}\nWhich process runs longest?")],
                              max_tokens=4)
    assert reply.usage.prompt_tokens > 3000 and reply.usage.completion_tokens > 0


async def test_max_tokens_cuts_the_reply(client: ChatClient) -> None:
    reply = await client.chat([Message("user", "Write a long essay about CPU scheduling.")],
                              max_tokens=4)
    assert reply.finish_reason == "length"
    assert 0 < reply.usage.completion_tokens <= 4


async def test_a_forced_tool_call_has_arguments_valid_against_the_tool(
        client: ChatClient) -> None:
    reply = await client.chat(
        [*ASK, Message("user", "Set a time slice for the build.")],
        tools=[READ_STATUS, SET_SLICE], tool_choice="set_slice", max_tokens=64)
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call.name == "set_slice" and call.id
    assert call.arguments is not None, call.raw_arguments
    jsonschema.validate(call.arguments, SET_SLICE.parameters)
    assert reply.finish_reason == "tool_calls"


async def test_structured_output_is_valid_against_the_schema(client: ChatClient) -> None:
    reply = await client.chat(
        [*ASK, Message("user", "Describe the workload as JSON.")], schema=PROFILE,
        max_tokens=64)
    value = parse_json(reply, PROFILE)
    assert set(value) == {"character", "threads", "latency_sensitive"}


async def test_a_tool_result_goes_back_into_the_conversation(client: ChatClient) -> None:
    # The servers accept the calls and results in each backend's form. (The test server's
    # gemma chat format leaves tool turns out of the prompt; an instruction-tuned model's
    # template renders them.)
    first = await client.chat([Message("user", "What runs now?")], tools=[READ_STATUS],
                              tool_choice="read_status", max_tokens=16)
    call = first.tool_calls[0]
    assert call.arguments == {}
    convo = [Message("user", "What runs now?"),
             Message("assistant", first.content, first.tool_calls),
             Message("tool", '{"state": "idle"}', tool_call_id=call.id, name=call.name)]
    reply = await client.chat(convo, tools=[READ_STATUS], max_tokens=8)
    assert reply.usage.completion_tokens > 0


async def test_tool_choice_none_gets_text_and_no_call(client: ChatClient) -> None:
    reply = await client.chat(ASK, tools=[SET_SLICE], tool_choice="none", max_tokens=16)
    assert reply.tool_calls == ()
    assert reply.content.strip()
    assert reply.finish_reason != "tool_calls"


async def test_a_forced_tool_that_was_not_offered_is_refused_before_asking(
        client: ChatClient) -> None:
    with pytest.raises(ValueError, match="names no tool"):
        await client.chat(ASK, tools=[READ_STATUS], tool_choice="set_slice")


async def test_a_server_that_is_down_is_an_llm_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for c in (make_client("openai", MODEL_ALIAS, f"{url}/v1", ""),
              make_client("ollama", MODEL_ALIAS, url, "")):
        with pytest.raises(LLMError, match="cannot reach the server") as err:
            await c.chat(ASK, max_tokens=4, timeout_s=10)
        assert url in str(err.value) and "Traceback" not in str(err.value)
        await c.close()


async def test_a_server_that_does_not_answer_times_out(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    for c in (make_client("openai", MODEL_ALIAS, f"{url}/v1", ""),
              make_client("ollama", MODEL_ALIAS, url, "")):
        with pytest.raises(LLMError, match=r"no answer within 0\.5 s"):
            await c.chat(ASK, max_tokens=4, timeout_s=0.5)
        await c.close()


@pytest.mark.parametrize("body", [b'{"nonsense": true}', b"<html>busy</html>", b"[]"])
async def test_a_malformed_answer_is_an_llm_error(body: bytes) -> None:
    with canned_http(body) as url:
        for c in (make_client("openai", MODEL_ALIAS, f"{url}/v1", ""),
                  make_client("ollama", MODEL_ALIAS, url, "")):
            with pytest.raises(LLMError) as err:
                await c.chat(ASK, max_tokens=4, timeout_s=10)
            assert c.backend in str(err.value) and "Traceback" not in str(err.value)
            await c.close()


# -- openai: keys, and the structured-output forms servers differ on ----------------------

async def test_openai_a_wrong_key_is_refused_readably(llama_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "not-" + API_KEY)
    c = make_client("openai", MODEL_ALIAS, llama_url, KEY_ENV)
    with pytest.raises(LLMError, match="HTTP 401"):
        await c.chat(ASK, max_tokens=4)
    await c.close()


async def test_openai_never_sends_the_ambient_openai_api_key(
        llama_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK would read OPENAI_API_KEY by itself; with no agent.api_key_env configured,
    # the key meant for some other server must not reach this one.
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    c = make_client("openai", MODEL_ALIAS, llama_url, "")
    with pytest.raises(LLMError, match="HTTP 401"):
        await c.chat(ASK, max_tokens=4)
    await c.close()


async def test_openai_finds_the_structured_output_form_the_server_takes(
        llama_url: str) -> None:
    # llama-cpp-python's server refuses OpenAI's json_schema form (HTTP 500 with the
    # validation error and its own traceback) and takes
    # json_object with a schema: the client falls back and keeps to it.
    c = OpenAIClient(MODEL_ALIAS, llama_url, API_KEY)
    assert c.schema_style == ""
    reply = await c.chat([*ASK, Message("user", "As JSON.")], schema=PROFILE, max_tokens=64)
    parse_json(reply, PROFILE)
    assert c.schema_style == "json_object"
    await c.close()

    fixed = OpenAIClient(MODEL_ALIAS, llama_url, API_KEY, schema_style="json_schema",
                         max_retries=0)  # the SDK retries a 500; this one stays one
    with pytest.raises(LLMError, match=r"HTTP 500.*response_format") as err:
        await fixed.chat(ASK, schema=PROFILE, max_tokens=8)
    assert "Traceback" not in str(err.value) and 'File "' not in str(err.value)
    await fixed.close()


# -- ollama: what reaches the server --------------------------------------------------------

async def test_ollama_sends_tools_and_options_in_its_own_form(shim: OllamaShim) -> None:
    c = make_client("ollama", MODEL_ALIAS, shim.url, "")
    await c.chat(ASK, tools=[SET_SLICE], max_tokens=8, temperature=0.5)
    sent = shim.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["set_slice"]
    assert sent["options"] == {"num_predict": 8, "temperature": 0.5}
    assert sent["stream"] is False and "format" not in sent

    await c.chat(ASK, tools=[SET_SLICE], tool_choice="none", max_tokens=8)
    assert not shim.requests[-1].get("tools")  # the SDK sends [] for none

    # A forced call has no tool choice in Ollama: it is asked for as the tool's schema.
    forced = await c.chat(ASK, tools=[SET_SLICE], tool_choice="set_slice", max_tokens=64)
    assert shim.requests[-1]["format"] == SET_SLICE.parameters
    assert not shim.requests[-1].get("tools")

    # Calls go back with their arguments as objects, results named by the tool.
    call = forced.tool_calls[0]
    await c.chat([*ASK, Message("assistant", "", forced.tool_calls),
                  Message("tool", "ok", tool_call_id=call.id, name=call.name)], max_tokens=4)
    *_, sent_call, sent_result = shim.requests[-1]["messages"]
    assert sent_call["tool_calls"] == [{"function": {"name": "set_slice",
                                                     "arguments": call.arguments}}]
    assert sent_result == {"role": "tool", "content": "ok", "tool_name": "set_slice"}
    await c.close()


async def test_ollama_sends_the_named_key_and_never_the_ambient_one(
        shim: OllamaShim, key_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ambient-key")  # the SDK would send it by itself
    for env, sent in (("", ""), (key_env, f"Bearer {API_KEY}")):
        c = make_client("ollama", MODEL_ALIAS, shim.url, env)
        await c.chat(ASK, max_tokens=2)
        assert shim.authorizations[-1] == sent
        await c.close()


async def test_ollama_an_unknown_model_is_refused_readably(shim: OllamaShim) -> None:
    c = make_client("ollama", "no-such-model", shim.url, "")
    with pytest.raises(LLMError, match=r"HTTP 404.*not found"):
        await c.chat(ASK, max_tokens=4)
    await c.close()
