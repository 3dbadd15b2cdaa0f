"""The ``ollama`` backend: an Ollama server's /api/chat through the pinned ``ollama`` SDK.

Ollama has tools and structured output (``format=<schema>``) but no tool choice, so:
- ``tool_choice="none"`` sends no tools at all;
- a forced call of one tool asks for the tool's argument schema as the reply's format and
  turns the constrained JSON into that tool's call (the tool list is not sent then: the
  prompt says what to do, as it must for llama.cpp's forced calls with templates that
  render no tools).
The SDK's Tool model keeps of each argument only type, items, description and enum:
Ollama renders tools into the prompt, it does not hold calls to their schemas; a forced
call's format is the full schema. Ollama's tool calls carry no id: each gets one here, so
a conversation keeps the same shape on both backends (Ollama itself matches a tool's
result by the tool's name).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import ollama
import pydantic

from schedcpd.agent.llm.client import (
    LLMError,
    Message,
    Reply,
    ToolCall,
    ToolSpec,
    Usage,
    check_request,
    parse_arguments,
)


class OllamaClient:
    backend = "ollama"

    def __init__(self, model: str, url: str, api_key: str = "") -> None:
        self.model = model
        self.url = url
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        self._sdk = ollama.AsyncClient(host=url, headers=headers)
        if not api_key:
            # The SDK sends OLLAMA_API_KEY from the environment by itself; a key the
            # configuration did not name for this server must not reach it.
            self._sdk._client.headers.pop("authorization", None)

    async def close(self) -> None:
        await self._sdk.close()  # type: ignore[no-untyped-call]

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout_s: float = 120.0,
    ) -> Reply:
        check_request(tools, tool_choice, schema, max_tokens, timeout_s)
        wire = [_message(m) for m in messages]
        forced = next((t for t in tools if t.name == tool_choice), None)
        request: dict[str, Any] = {
            "model": self.model,
            "options": {"num_predict": max_tokens, "temperature": temperature},
        }
        if forced is not None:
            request["format"] = forced.parameters
        elif schema is not None:
            request["format"] = schema
        if tools and tool_choice != "none" and forced is None:
            request["tools"] = [_tool(t) for t in tools]
        try:
            async with asyncio.timeout(timeout_s):
                answer = await self._sdk.chat(messages=wire, **request)
        except TimeoutError:
            raise LLMError(f"{self._where()}: no answer within {timeout_s:g} s") from None
        except ollama.ResponseError as exc:
            code = f"HTTP {exc.status_code}: " if exc.status_code > 0 else ""
            raise LLMError(f"{self._where()}: the server answered {code}"
                           f"{_short(str(exc.error))}") from None
        except ConnectionError:
            # The SDK turns a refused connection into ConnectionError with its own advice.
            raise LLMError(f"{self._where()}: cannot reach the server") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"{self._where()}: {type(exc).__name__}: "
                           f"{_short(str(exc)) or 'transport error'}") from None
        except (ValueError, TypeError, pydantic.ValidationError):
            # A body that is not JSON (json's ValueError), not an object (the SDK's
            # ``ChatResponse(**body)`` raises TypeError) or not a chat response.
            raise LLMError(f"{self._where()}: the server's answer is malformed") from None
        return self._reply(answer, forced)

    def _where(self) -> str:
        return f"ollama backend at {self.url} (model {self.model})"

    def _reply(self, answer: ollama.ChatResponse, forced: ToolSpec | None) -> Reply:
        content = answer.message.content or ""
        calls = [ToolCall(id=_call_id(), name=tc.function.name,
                          arguments=dict(tc.function.arguments),
                          raw_arguments=json.dumps(dict(tc.function.arguments)))
                 for tc in answer.message.tool_calls or ()]
        if forced is not None:
            calls = [ToolCall(id=_call_id(), name=forced.name,
                              arguments=parse_arguments(content), raw_arguments=content)]
            content = ""
        reason = answer.done_reason or ""
        if calls and reason in ("", "stop"):
            reason = "tool_calls"  # what the other backend says for the same turn
        return Reply(
            content=content,
            tool_calls=tuple(calls),
            usage=Usage(prompt_tokens=answer.prompt_eval_count or 0,
                        completion_tokens=answer.eval_count or 0),
            finish_reason=reason,
            model=answer.model or self.model,
        )


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    if m.tool_calls:
        # Ollama takes arguments as an object; text that was none is sent as no arguments.
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments or {}}}
                             for c in m.tool_calls]
    return out


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": t.name, "description": t.description,
                         "parameters": t.parameters}}


def _short(text: str, limit: int = 300) -> str:
    for mark in ("Traceback (most recent call last)", ' File "'):
        text = text.split(mark, 1)[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
