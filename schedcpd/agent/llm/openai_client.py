"""The ``openai`` backend: any OpenAI-compatible chat server (OpenAI itself, llama.cpp's
servers, vLLM, LM Studio) through the pinned ``openai`` SDK.

Servers agree on messages and tools but not on structured output:
``{"type": "json_schema", "json_schema": {...}}`` is OpenAI's form (vLLM, LM Studio and
llama.cpp's own llama-server take it too), while llama-cpp-python's server refuses it
(with an HTTP 500 carrying the validation error) and takes
``{"type": "json_object", "schema": ...}``. The client sends the first and, when the server
refuses it (400, 422, or an error naming response_format), the second, and keeps to whichever
form this server took (``schema_style``), so only the first structured call pays for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import openai

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

SCHEMA_STYLES = ("json_schema", "json_object")
# A key is required by the SDK; a local server without one ignores whatever is sent.
NO_KEY = "no-key"


class OpenAIClient:
    backend = "openai"

    def __init__(self, model: str, url: str, api_key: str = "", *, max_retries: int = 2,
                 schema_style: str = "") -> None:
        if schema_style and schema_style not in SCHEMA_STYLES:
            raise ValueError(f"schema_style {schema_style!r}: expected one of "
                             f"{', '.join(SCHEMA_STYLES)} or '' to find out")
        self.model = model
        self.url = url
        self.schema_style = schema_style  # "" until a structured call found what works
        # The key is passed explicitly, so OPENAI_API_KEY in the daemon's environment is
        # never sent to a server the configuration did not name it for.
        self._sdk = openai.AsyncOpenAI(api_key=api_key or NO_KEY, base_url=url,
                                       max_retries=max_retries)

    async def close(self) -> None:
        await self._sdk.close()

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
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "timeout": timeout_s,
        }
        if tools:
            request["tools"] = [_tool(t) for t in tools]
            request["tool_choice"] = _tool_choice(tool_choice)
        try:
            # One deadline for the whole call: the SDK's retries and a second
            # structured-output form included.
            async with asyncio.timeout(timeout_s):
                if schema is None:
                    answer = await self._create(request)
                else:
                    answer = await self._create_structured(request, schema)
        except TimeoutError:
            raise LLMError(f"{self._where()}: no answer within {timeout_s:g} s") from None
        except openai.OpenAIError as exc:
            raise _error(exc, self._where(), timeout_s) from None
        except ValueError:
            # The SDK lets json's error through for a body that is not JSON.
            raise LLMError(f"{self._where()}: the server's answer is not JSON") from None
        return self._reply(answer)

    async def _create(self, request: dict[str, Any], *, retries: int | None = None) -> Any:
        sdk = self._sdk if retries is None else self._sdk.with_options(max_retries=retries)
        return await sdk.chat.completions.create(**request)

    async def _create_structured(self, request: dict[str, Any],
                                 schema: dict[str, Any]) -> Any:
        if self.schema_style:
            return await self._create({**request, **_response_format(self.schema_style,
                                                                     schema)})
        first = {**request, **_response_format(SCHEMA_STYLES[0], schema)}
        try:
            # No retries while probing: llama-cpp-python refuses with an HTTP 500, which
            # the SDK would otherwise retry twice, seconds of backoff for a sure refusal.
            answer = await self._create(first, retries=0)
        except openai.APIStatusError as exc:
            if not _refuses_format(exc):
                answer = await self._create(first)  # not about the form: retried as usual
            else:
                answer = await self._create(
                    {**request, **_response_format(SCHEMA_STYLES[1], schema)})
                self.schema_style = SCHEMA_STYLES[1]
                return answer
        self.schema_style = SCHEMA_STYLES[0]
        return answer

    def _where(self) -> str:
        return f"openai backend at {self.url} (model {self.model})"

    def _reply(self, answer: Any) -> Reply:
        # The SDK builds its answer objects without validating them: a server's odd answer
        # shows up here as missing attributes or values of the wrong type.
        try:
            return self._read(answer)
        except (AttributeError, TypeError, ValueError, IndexError):
            raise LLMError(f"{self._where()}: the server's answer is malformed") from None

    def _read(self, answer: Any) -> Reply:
        choices = getattr(answer, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise LLMError(f"{self._where()}: the server's answer has no message")
        choice = choices[0]
        content = choice.message.content or ""
        if not isinstance(content, str):
            raise TypeError("content")
        calls = []
        for i, tc in enumerate(choice.message.tool_calls or ()):
            fn = getattr(tc, "function", None)
            if fn is None or not isinstance(fn.name, str):
                raise LLMError(f"{self._where()}: a tool call in the answer has no function")
            raw = fn.arguments if isinstance(fn.arguments, str) else ""
            calls.append(ToolCall(id=str(tc.id or f"call_{i}"), name=fn.name,
                                  arguments=parse_arguments(raw), raw_arguments=raw))
        usage = getattr(answer, "usage", None)  # optional on some servers
        return Reply(
            content=content,
            tool_calls=tuple(calls),
            usage=Usage(prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0)),
            finish_reason=str(getattr(choice, "finish_reason", "") or ""),
            model=str(getattr(answer, "model", "") or self.model),
        )


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.raw_arguments}}
            for c in m.tool_calls]
    return out


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": t.name, "description": t.description,
                         "parameters": t.parameters}}


def _tool_choice(choice: str | None) -> Any:
    if choice in (None, "auto", "none"):
        return choice or "auto"
    return {"type": "function", "function": {"name": choice}}


def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "reply", "schema": schema, "strict": strict_compatible(schema)}}}
    # Not a form the SDK's types know: it goes in the body as it is.
    return {"extra_body": {"response_format": {"type": "json_object", "schema": schema}}}


def strict_compatible(schema: Any) -> bool:
    """Whether ``schema`` is written for OpenAI's strict mode: every object closes its
    properties (additionalProperties false) and requires them all. Strict mode constrains
    decoding, where otherwise a hosted model is only asked to follow the schema; but a
    schema outside strict mode's subset is refused outright, so only a schema written that
    way, the author's opt-in, is sent strict."""
    if isinstance(schema, list):
        return all(strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if (schema.get("additionalProperties") is not False or not isinstance(props, dict)
                or set(schema.get("required", ())) != set(props)):
            return False
    subs: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            subs.extend(schema[key].values())
    subs.extend(schema[k] for k in ("items", "anyOf", "oneOf", "allOf") if k in schema)
    return all(strict_compatible(s) for s in subs)


def _error(exc: openai.OpenAIError, where: str, timeout_s: float) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(f"{where}: no answer within {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f" ({_short(str(cause))})" if cause is not None and str(cause) else ""
        return LLMError(f"{where}: cannot reach the server{why}")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"{where}: the server answered HTTP {exc.status_code}: "
                        f"{_short(_detail(exc.body) or exc.message)}")
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError(f"{where}: the server's answer is malformed")
    return LLMError(f"{where}: {_short(str(exc)) or type(exc).__name__}")


def _refuses_format(exc: openai.APIStatusError) -> bool:
    """Whether the server refused the request for its response_format: a 400 or 422, or
    llama-cpp-python's way, an HTTP 500 whose message is the validation error."""
    if exc.status_code in (400, 422):
        return True
    text = f"{exc.message} {exc.body}"
    return "response_format" in text or "json_schema" in text


def _detail(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return cast(str, inner["message"])
        return str(body.get("detail", body.get("error", body)))
    return str(body) if body else ""


def _short(text: str, limit: int = 300) -> str:
    # Some servers (llama-cpp-python) append their own traceback to the message.
    for mark in ("Traceback (most recent call last)", ' File "'):
        text = text.split(mark, 1)[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
