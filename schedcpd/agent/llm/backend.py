"""The LLM backends (``ollama``, ``openai``): the four roles asked of a language model.

Each role is one short conversation: the role's system prompt, the episode record as a
quoted DATA block, then, for planning, tool calls through the registry (as an
unprivileged caller: searching and reading policies) and a final answer constrained by a
JSON schema. Nothing the model says is trusted: answers are checked against the schema
and the library again, a refused answer is explained to the model and asked once more,
and one that stays unusable ends the episode with the reason. Every call is counted
against the episode's budgets before it is made.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

from schedcpd.agent.backend import PROBES, BackendError, ObserveDecision, Reflection
from schedcpd.agent.budget import Budget, Meter
from schedcpd.agent.llm import prompts
from schedcpd.agent.llm.client import (
    ChatClient,
    LLMError,
    Message,
    Reply,
    StructuredOutputError,
    ToolSpec,
    parse_json,
)
from schedcpd.agent.llm.factory import make_client
from schedcpd.agent.record import Attempt, EpisodeRecord, PlanChoice
from schedcpd.agent.search import Arm
from schedcpd.agent.toolbox import ToolBox
from schedcpd.bpf.policy import PolicyError
from schedcpd.config import AgentConfig
from schedcpd.tools import Services

log = logging.getLogger("schedcpd.agent.llm")
PLAN_TOOLS = ("list_policies", "get_policy")
MAX_TOOL_ROUNDS = 3  # tool calls before the answer: one forced search, then the model's
ANSWER_TRIES = 2  # a refused answer is explained and asked once more
ANSWER_TOKENS = 768
SOURCE_TOKENS = 2048  # a whole scheduler source
CALL_TIMEOUT_S = 180.0


class LLMBackend:
    def __init__(self, client: ChatClient, toolbox: ToolBox, budget: Budget,
                 actions: tuple[str, ...], fallback: Any = None) -> None:
        self.client = client
        self.toolbox = toolbox
        self.budget = budget
        self.actions = actions
        self.name = client.backend
        # The built-in planner's candidates: raced beside the model's, and all that is
        # raced when the model's answers stay unusable (agent.builtin.BuiltinBackend).
        self.fallback = fallback

    @classmethod
    def from_config(cls, cfg: AgentConfig, services: Services,
                    fallback: Any = None) -> LLMBackend:
        try:
            client = make_client(cfg.backend, cfg.model, cfg.url, cfg.api_key_env)
        except ValueError as exc:
            raise BackendError(f"agent.backend {cfg.backend}: {exc}") from None
        return cls(client, ToolBox(services, PLAN_TOOLS), cfg.budget(),
                   (*cfg.allow, "keep"), fallback)

    async def close(self) -> None:
        await self.client.close()

    # --- one call, counted ---
    async def _chat(self, rec: EpisodeRecord, messages: list[Message], **kw: Any) -> Reply:
        meter = Meter(self.budget, rec.usage)
        meter.check(before_llm_call=True)
        kw.setdefault("max_tokens", ANSWER_TOKENS)
        kw["max_tokens"] = max(1, min(kw["max_tokens"], meter.left_tokens()))
        try:
            reply = await self.client.chat(messages, timeout_s=CALL_TIMEOUT_S, **kw)
        except StructuredOutputError as exc:
            meter.charge(exc.reply.usage.prompt_tokens, exc.reply.usage.completion_tokens)
            raise
        except LLMError as exc:
            raise BackendError(str(exc)) from None
        meter.charge(reply.usage.prompt_tokens, reply.usage.completion_tokens)
        return reply

    async def _answer(self, rec: EpisodeRecord, messages: list[Message],
                      schema: dict[str, Any], check: Any, max_tokens: int = ANSWER_TOKENS
                      ) -> Any:
        """The structured answer, checked by ``check`` (which raises ValueError with what
        is wrong); explained to the model and asked again once."""
        problem = ""
        for _ in range(ANSWER_TRIES):
            try:
                reply = await self._chat(rec, messages, schema=schema, tool_choice="none",
                                         max_tokens=max_tokens)
            except StructuredOutputError as exc:
                problem, said = str(exc), exc.reply.content
            else:
                try:
                    return check(parse_json(reply, schema))
                except StructuredOutputError as exc:
                    problem, said = str(exc), reply.content
                except (ValueError, KeyError, TypeError) as exc:
                    problem, said = str(exc), reply.content
            messages = [*messages, Message("assistant", said[:2000]),
                        Message("user", f"That answer was refused: {problem[:500]}. Answer "
                                        "again with a valid JSON object.")]
        raise BackendError(f"the model's answers stayed unusable: {problem[:300]}")

    def _start(self, role: str, rec: EpisodeRecord, library: list[dict[str, Any]],
               extra: str = "") -> list[Message]:
        body = prompts.data_block(prompts.context(rec, library))
        return [Message("system", prompts.system(role)),
                Message("user", body + (f"\n\n{extra}" if extra else ""))]

    # --- the roles ---
    async def observe(self, rec: EpisodeRecord) -> ObserveDecision:
        msgs = self._start("observe", rec, [])

        def check(v: dict[str, Any]) -> ObserveDecision:
            probes = tuple(p for p in v["probes"] if p in PROBES)
            return ObserveDecision(tuple(dict.fromkeys(probes)), str(v["why"]))
        result: ObserveDecision = await self._answer(rec, msgs, prompts.OBSERVE_SCHEMA, check)
        return result

    async def _library(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        raw = json.loads(await self.toolbox.call("list_policies", {"limit": 100}))
        if not isinstance(raw, list):
            raise BackendError(f"the policy list could not be read: {raw}")
        brief = [{"name": p["name"], "what": p["description"][:160],
                  "tunables": p["tunables"]} for p in raw]
        return brief, {p["name"]: p for p in raw}

    async def _tool_rounds(self, rec: EpisodeRecord, msgs: list[Message]) -> list[Message]:
        specs = [ToolSpec(t.name, t.description, t.schema) for t in self.toolbox.tools()]
        for rnd in range(MAX_TOOL_ROUNDS):
            # The first round searches (forced): the plan then rests on the repository's
            # answer, not only on what the model remembers.
            choice = "list_policies" if rnd == 0 else "auto"
            reply = await self._chat(rec, msgs, tools=specs, tool_choice=choice,
                                     max_tokens=256)
            if not reply.tool_calls:
                break
            msgs = [*msgs, Message("assistant", reply.content, tuple(reply.tool_calls))]
            for call in reply.tool_calls[:3]:
                answer = await self.toolbox.call(call.name, call.arguments)
                err = json.loads(answer).get("error") if answer.startswith("{") else None
                rec.tool_calls.append({"tool": call.name, "arguments": call.raw_arguments[:200],
                                       "result": str(err or "ok")})
                msgs.append(Message("tool", prompts.data_block(answer),
                                    tool_call_id=call.id, name=call.name))
        return msgs

    async def plan(self, rec: EpisodeRecord) -> PlanChoice:
        brief, known = await self._library()
        msgs = await self._tool_rounds(rec, self._start("plan", rec, brief))
        tunables = await self._tunables(known)
        names = sorted({t for ts in tunables.values() for t in ts})
        schema = prompts.plan_schema(self.actions, sorted(known), names)

        def check(v: dict[str, Any]) -> PlanChoice:
            return checked_plan(v, self.actions, known, tunables)
        choice: PlanChoice = await self._answer(rec, msgs, schema, check)
        if choice.action not in ("patch", "compose"):
            return choice
        said = Message("assistant", json.dumps({"action": choice.action,
                                                "policy": choice.policy}))
        source = await self._source(rec, [*msgs, said], prompts.SOURCE_ASK)
        if not source:
            raise BackendError(f"the model chose to {choice.action} but wrote no source")
        return dataclasses.replace(choice, source=source)

    async def propose(self, rec: EpisodeRecord, allowed: Sequence[str] = ()) -> list[Arm]:
        """The model's configuration first, then the built-in planner's candidates: the
        model orders, the race decides. An answer that stays unusable after its one retry
        (or a plan the search cannot race: keep, patch, compose) leaves the built-in
        candidates alone; the record says so."""
        ours: list[Arm] = []
        try:
            choice = await self.plan(rec)
        except BackendError as exc:
            rec.tool_calls.append({"tool": "plan", "arguments": "",
                                   "result": f"fell back to the built-in search: {exc}"[:300]})
        else:
            if choice.action == "configure" and (not allowed or choice.policy in allowed):
                ours.append(Arm(choice.policy, dict(choice.params), 1.0,
                                f"the model chose it: {choice.rationale[:200]}"))
        rest = await self.fallback.propose(rec, allowed) if self.fallback else []
        have = {a.key() for a in ours}
        return ours + [a for a in rest if a.key() not in have]

    async def _source(self, rec: EpisodeRecord, msgs: list[Message], ask: str) -> str:
        """A whole scheduler source as plain text (a code block), or "" if none came."""
        reply = await self._chat(rec, [*msgs, Message("user", ask)], tool_choice="none",
                                 max_tokens=SOURCE_TOKENS)
        return prompts.code_block(reply.content)[:prompts.MAX_SOURCE_CHARS]

    async def _tunables(self, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
        from schedcpd.bpf.policy import load_library

        return {p.name: {t.name: t for t in p.tunables} for p in load_library()
                if p.name in known}

    async def fix(self, rec: EpisodeRecord, choice: PlanChoice,
                  failed: Attempt) -> PlanChoice | None:
        if choice.action not in ("patch", "compose") or not choice.source:
            return None  # a refused configuration is planned around, not repaired
        extra = prompts.data_block({"refused_source": choice.source,
                                    "stage": failed.stage, "findings": list(failed.findings)})
        source = await self._source(rec, self._start("fix", rec, [], extra), prompts.FIX_ASK)
        if not source or source.strip().upper().startswith("GIVE UP"):
            return None
        return dataclasses.replace(choice, source=source)

    async def reflect(self, rec: EpisodeRecord) -> Reflection:
        msgs = self._start("reflect", rec, [])

        def check(v: dict[str, Any]) -> Reflection:
            return Reflection(bool(v["continue"]), str(v["lesson"]))
        result: Reflection = await self._answer(rec, msgs, prompts.REFLECT_SCHEMA, check)
        return result


def checked_plan(v: dict[str, Any], actions: tuple[str, ...],
                 known: dict[str, dict[str, Any]], tunables: dict[str, Any]) -> PlanChoice:
    """The model's decision as the control plane accepts it; ValueError says what is
    wrong. ``params`` come as a list of {name, value} pairs."""
    action, policy = str(v["action"]), str(v["policy"]).strip()
    rationale = str(v["rationale"])
    if action not in actions:
        raise ValueError(f"action {action!r} is not one of {', '.join(actions)}")
    if action == "keep":
        return PlanChoice("keep", rationale=rationale)
    if action in ("configure", "patch") and policy not in known:
        raise ValueError(f"no policy named {policy!r} (known: {', '.join(sorted(known))})")
    if action == "compose":
        return PlanChoice("compose", "", {}, None, rationale)
    if action == "patch":
        return PlanChoice("patch", policy, {}, None, rationale)
    have = tunables.get(policy, {})
    params: dict[str, Any] = {}
    for pair in list(v["params"]):
        k, val = str(pair["name"]), pair["value"]
        if k not in have:
            raise ValueError(f"{policy} has no tunable {k!r} (it has: "
                             f"{', '.join(have) or 'none'})")
        if k in params:
            raise ValueError(f"tunable {k!r} given twice")
        try:
            params[k] = have[k].validate(val)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
    return PlanChoice("configure", policy, params, None, rationale)
