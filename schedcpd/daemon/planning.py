"""Which sched-agent backend the daemon's episodes use (``agent.backend``).

``builtin`` (the default) needs nothing but the repository. The LLM backends (``ollama``,
``openai``) talk to a model server and call the control plane's read tools through the
same registry as MCP, as an unprivileged caller: they can look, never act.
"""

from __future__ import annotations

from schedcpd.agent.backend import Backend
from schedcpd.agent.builtin import BuiltinBackend
from schedcpd.config import DaemonConfig
from schedcpd.repository.lazy import LazyRepository
from schedcpd.tools import Services


def make_backend(cfg: DaemonConfig, repository: LazyRepository, services: Services) -> Backend:
    if cfg.agent.backend == "builtin":
        return BuiltinBackend(repository)
    from schedcpd.agent.llm.backend import LLMBackend

    return LLMBackend.from_config(cfg.agent, services, BuiltinBackend(repository))
