"""OllamaShim: a stand-in for the Ollama server, translating its API to the llama.cpp
server; the model answering is real.

This is a test double, the only one in the LLM tests: no Ollama server can be had on these
machines (its binary is in no registry they reach), so the ``ollama`` backend is tested
through the real ``ollama`` SDK against this shim, which speaks the part of Ollama's HTTP
API the SDK's chat uses (``POST /api/chat`` without streaming; ``GET /`` and
``GET /api/version`` for a liveness look) and forwards each turn to a real llama.cpp server
(``tests.support.llm``):

- messages, tools and tool calls in Ollama's form (arguments as objects, a tool result
  named by ``tool_name``) become OpenAI's (arguments as JSON text, ``tool_call_id``);
- ``format`` (a JSON schema, or "json") becomes llama.cpp's
  ``{"type": "json_object", "schema": ...}``;
- ``options.num_predict`` and ``options.temperature`` become max_tokens and temperature;
- the answer comes back as Ollama's: ``message``, ``done_reason``, ``prompt_eval_count``,
  ``eval_count``; errors as ``{"error": ...}`` with the upstream status, an unknown model
  as Ollama's 404.

What it does not do, because the client under test does not use it: streaming, images,
``think``, ``keep_alive``, /api/generate and model management.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class OllamaShim:
    def __init__(self, upstream: str, model: str, api_key: str = "") -> None:
        self.upstream = upstream.rstrip("/")  # the llama.cpp server's .../v1
        self.model = model  # the one model name this "Ollama" has
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []  # each /api/chat body, as received
        self.authorizations: list[str] = []  # each one's Authorization header, "" if none
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="ollama-shim", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OllamaShim:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One /api/chat request: (HTTP status, Ollama's JSON answer)."""
        self.requests.append(body)
        if body.get("model") != self.model:
            return 404, {"error": f"model {body.get('model')!r} not found, "
                                  "try pulling it first"}
        if body.get("stream", True):  # Ollama streams unless told not to
            return 400, {"error": "OllamaShim answers only stream=false requests"}
        status, answer = self._upstream(_to_openai(body))
        if status != 200:
            return status, {"error": str(answer.get("error", answer))}
        return 200, _to_ollama(answer, self.model)

    def _upstream(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"{self.upstream}/chat/completions",
                                     data=json.dumps(request).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                return resp.status, dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            return exc.code, {"error": text}
        except (urllib.error.URLError, OSError) as exc:
            return 502, {"error": f"llama.cpp server unreachable: {exc}"}


def _to_openai(body: dict[str, Any]) -> dict[str, Any]:
    messages = []
    for m in body.get("messages", []):
        out: dict[str, Any] = {"role": m["role"], "content": m.get("content", "")}
        if m["role"] == "tool":
            out["tool_call_id"] = m.get("tool_name", "")
        if m.get("tool_calls"):
            out["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c["function"]["name"],
                              "arguments": json.dumps(c["function"].get("arguments", {}))}}
                for i, c in enumerate(m["tool_calls"])]
        messages.append(out)
    request: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("tools"):
        request["tools"] = body["tools"]
    fmt = body.get("format")
    if isinstance(fmt, dict):
        request["response_format"] = {"type": "json_object", "schema": fmt}
    elif fmt == "json":
        request["response_format"] = {"type": "json_object"}
    options = body.get("options") or {}
    if isinstance(options.get("num_predict"), int) and options["num_predict"] > 0:
        request["max_tokens"] = options["num_predict"]
    if "temperature" in options:
        request["temperature"] = options["temperature"]
    return request


def _to_ollama(answer: dict[str, Any], model: str) -> dict[str, Any]:
    choice = answer["choices"][0]
    msg = choice.get("message") or {}
    message: dict[str, Any] = {"role": "assistant", "content": msg.get("content") or ""}
    calls = []
    for c in msg.get("tool_calls") or ():
        try:
            args = json.loads(c["function"]["arguments"])
        except ValueError:
            args = None
        # Ollama's tool calls carry their arguments parsed; text that is not an object
        # cannot be carried, as in Ollama, which would not have produced the call.
        calls.append({"function": {"name": c["function"]["name"],
                                   "arguments": args if isinstance(args, dict) else {}}})
    if calls:
        message["tool_calls"] = calls
    usage = answer.get("usage") or {}
    return {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": message,
        "done": True,
        "done_reason": "length" if choice.get("finish_reason") == "length" else "stop",
        "prompt_eval_count": usage.get("prompt_tokens", 0),
        "eval_count": usage.get("completion_tokens", 0),
    }


def _handler(shim: OllamaShim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # a test's output is not the place for an access log

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: dict[str, Any]) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
            elif self.path == "/api/version":
                self._json(200, {"version": "0.0.0-ollamashim"})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/api/chat":
                self._json(404, {"error": f"OllamaShim does not serve {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                self._json(400, {"error": "invalid JSON body"})
                return
            if not isinstance(body, dict):
                self._json(400, {"error": "the body must be a JSON object"})
                return
            shim.authorizations.append(self.headers.get("Authorization", ""))
            self._json(*shim.chat(body))

    return Handler
