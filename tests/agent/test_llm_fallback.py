"""An LLM whose answers stay malformed: asked once more, then the built-in search goes on.

The server is a real HTTP server on loopback that answers every chat request with a
well-formed completion whose content is not the JSON the schema asks for (a double of a
model that will not follow its schema: the real 270M model is held to it by constrained
decoding, so it cannot be made to fail this way on purpose). Everything else is real: the
OpenAI client, the LLM backend, the tool registry, the repository and its library.
"""

from __future__ import annotations

import json
from typing import Any

from schedcpd.agent.budget import Budget
from schedcpd.agent.builtin import BuiltinBackend
from schedcpd.agent.llm.backend import PLAN_TOOLS, LLMBackend
from schedcpd.agent.llm.factory import make_client
from schedcpd.agent.record import EpisodeRecord
from schedcpd.agent.toolbox import ToolBox
from schedcpd.repository import Repository
from schedcpd.repository.lazy import LazyRepository
from schedcpd.tools import Services
from tests.agent import profiles as P
from tests.support.llm import MODEL_ALIAS, canned_http

NOT_JSON = json.dumps({
    "id": "c1", "object": "chat.completion", "created": 0, "model": MODEL_ALIAS,
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "I think ljf, probably."}}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 6, "total_tokens": 56}}).encode()


async def test_a_malformed_answer_is_retried_once_then_the_builtin_search_goes_on(
        repo: Repository) -> None:
    async def opened() -> Repository:
        return repo

    services: Any = Services(daemon=None, open_repository=opened)  # type: ignore[arg-type]
    builtin = BuiltinBackend(LazyRepository.ready(repo))
    rec = EpisodeRecord("e1", "long-tail batch", "openai", workload="longtail",
                        profile=P.long_tail().to_dict())
    with canned_http(NOT_JSON) as url:
        llm = LLMBackend(make_client("openai", MODEL_ALIAS, f"{url}/v1", ""),
                         ToolBox(services, PLAN_TOOLS), Budget(), ("configure", "keep"),
                         builtin)
        arms = await llm.propose(rec)
        await llm.close()
    # One tool round (forced, answered with no call), then the answer asked twice.
    assert rec.usage.llm_calls == 3, rec.usage
    assert rec.tool_calls[-1]["tool"] == "plan"
    assert "fell back to the built-in search" in rec.tool_calls[-1]["result"]
    assert "stayed unusable" in rec.tool_calls[-1]["result"]
    # The built-in candidates, in the built-in order: nothing of the model's is among them.
    expected = await builtin.propose(rec)
    assert [a.key() for a in arms] == [a.key() for a in expected]
    assert arms[0].policy == "ljf" and not any("the model" in a.reason for a in arms)
