"""The control plane's tools as an LLM backend sees them: the one registry, as a caller
without privileges.

A model may look (search and read policies, the target's profile and probes, history);
it cannot act: mutating tools are refused by the registry itself, exactly as for an
unprivileged D-Bus or MCP caller. Every answer is cut to a bound, since the model's
context is the scarce resource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schedcpd.daemon.service import Caller
from schedcpd.errors import RequestError
from schedcpd.tools import REGISTRY, Services, Tool

AGENT = Caller(None, "sched-agent", privileged=False)
MAX_ANSWER_CHARS = 6000


@dataclass
class ToolBox:
    services: Services
    names: tuple[str, ...]  # the tools this box offers

    def __post_init__(self) -> None:
        for n in self.names:
            if REGISTRY.get(n).mutating:
                raise ValueError(f"tool {n} changes the system: not for a model")

    def tools(self, names: tuple[str, ...] | None = None) -> list[Tool]:
        return [REGISTRY.get(n) for n in (names or self.names) if n in self.names]

    async def call(self, name: str, args: dict[str, Any] | None) -> str:
        """The tool's answer as JSON text for the model, or the refusal in words."""
        if name not in self.names:
            return json.dumps({"error": "NotFound", "message": f"no tool named {name!r} here "
                               f"(tools: {', '.join(self.names)})"})
        if args is None:
            return json.dumps({"error": "InvalidArgument",
                               "message": "the arguments must be one JSON object"})
        try:
            value = await REGISTRY.call(name, args, self.services, AGENT)
        except RequestError as exc:
            return json.dumps({"error": exc.kind, "message": exc.message})
        text = json.dumps(value, sort_keys=True, default=str)
        if len(text) > MAX_ANSWER_CHARS:
            text = text[:MAX_ANSWER_CHARS] + f' ... [cut: {len(text)} characters in all]'
        return text
