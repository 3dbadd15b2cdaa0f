"""The one interface the sched-agent talks to a language model through, whatever the backend.

Plain frozen values and a Protocol, no I/O: the agent loop, its tests and every backend
(``openai_client``, ``ollama_client``) share these types, so a conversation built for one
backend replays on another unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

ROLES = ("system", "user", "assistant", "tool")


class LLMError(RuntimeError):
    """The model could not be asked or its answer could not be read: the server is down or
    unreachable, it answered with an HTTP error, it did not answer in time, or its answer
    is malformed. The message is one readable sentence naming the backend and the server,
    never an SDK's traceback text."""


class StructuredOutputError(LLMError):
    """A reply asked for with a schema is not JSON valid against it (cut off by max_tokens,
    or a server that ignored the schema). ``reply`` keeps the answer and its usage, which
    a token budget still has to count."""

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments (an object schema)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # None when the model's text is not a JSON object: the caller decides what to tell the
    # model, and ``raw_arguments`` keeps what it wrote.
    arguments: dict[str, Any] | None
    raw_arguments: str


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant | tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message's calls
    tool_call_id: str = ""  # a tool message: the call it answers (OpenAI matches by id)
    name: str = ""  # a tool message: the tool's name (Ollama matches by name)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"message role {self.role!r}: expected one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Reply:
    content: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    finish_reason: str  # "stop", "length" (max_tokens reached), "tool_calls", ...
    model: str


class ChatClient(Protocol):
    backend: str
    model: str

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
        """One model turn.

        ``tool_choice``: None or "auto" lets the model decide, "none" forbids tool calls, a
        tool's name forces a call of that tool. ``schema``: the reply's content is to be
        JSON valid against it (check with :func:`parse_json`). ``timeout_s`` bounds the
        whole call, retries included. Raises LLMError, or ValueError for a request that
        contradicts itself (a forced tool that is not among ``tools``).
        """
        ...

    async def close(self) -> None: ...


def check_request(tools: Sequence[ToolSpec], tool_choice: str | None,
                  schema: dict[str, Any] | None, max_tokens: int, timeout_s: float) -> None:
    """The caller's mistakes, refused the same way by every backend before any I/O."""
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"tool names must be unique: {names}")
    if tool_choice not in (None, "auto", "none") and tool_choice not in names:
        raise ValueError(f"tool_choice {tool_choice!r} names no tool given "
                         f"(tools: {', '.join(names) or 'none'})")
    if schema is not None and tool_choice not in (None, "auto", "none"):
        raise ValueError("a schema and a forced tool call both fix the reply's form: "
                         "give one of them")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, not {timeout_s}")


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """A tool call's arguments as the model wrote them: the object, or None if not one."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_json(reply: Reply, schema: dict[str, Any]) -> Any:
    """The reply's content as JSON valid against ``schema``, else StructuredOutputError.

    Servers differ in how hard they hold a model to a schema (llama.cpp and Ollama
    constrain decoding; a hosted API in non-strict mode only asks), and max_tokens can cut
    any of them off, so the agent checks here instead of trusting the backend.
    """
    try:
        value = json.loads(reply.content)
    except (ValueError, RecursionError):
        cut = " (cut off by max_tokens)" if reply.finish_reason == "length" else ""
        raise StructuredOutputError(
            f"the model's reply is not JSON{cut}: {reply.content[:200]!r}", reply) from None
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise StructuredOutputError(
            f"the model's reply does not match the schema at {where}: {error.message}",
            reply)
    return value
