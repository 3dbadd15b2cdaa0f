"""LLM backends of the sched-agent: one ChatClient interface, an ``openai`` backend (any
OpenAI-compatible server) and an ``ollama`` backend, built by :func:`make_client`."""

from schedcpd.agent.llm.client import (
    ChatClient,
    LLMError,
    Message,
    Reply,
    StructuredOutputError,
    ToolCall,
    ToolSpec,
    Usage,
    parse_json,
)
from schedcpd.agent.llm.factory import BACKENDS, make_client

__all__ = [
    "BACKENDS",
    "ChatClient",
    "LLMError",
    "Message",
    "Reply",
    "StructuredOutputError",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "make_client",
    "parse_json",
]
