"""One real llama.cpp server (the gemma3 270M model) for the whole session, and the
OllamaShim in front of it; clients are made per test, as the agent makes them, through
``make_client`` and the key's environment variable."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from schedcpd.agent.llm import ChatClient, make_client
from tests.support.llm import MODEL_ALIAS, llama_server
from tests.support.ollama_shim import OllamaShim

# The server refuses requests without this key: every openai test also checks that the
# key travels from the variable agent.api_key_env names to the server.
API_KEY = "schedcp-test-key"
KEY_ENV = "SCHEDCP_TEST_LLM_KEY"


@pytest.fixture(scope="session")
def llama_url() -> Iterator[str]:
    with llama_server(api_key=API_KEY) as url:
        yield url


@pytest.fixture(scope="session")
def shim(llama_url: str) -> Iterator[OllamaShim]:
    with OllamaShim(llama_url, MODEL_ALIAS, API_KEY) as s:
        yield s


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    return KEY_ENV


@pytest.fixture(params=["openai", "ollama"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[ChatClient]:
    """Each backend against its real-model server: openai against llama.cpp, ollama
    against the shim in front of it."""
    if request.param == "openai":
        c = make_client("openai", MODEL_ALIAS, request.getfixturevalue("llama_url"),
                        request.getfixturevalue("key_env"))
    else:
        c = make_client("ollama", MODEL_ALIAS, request.getfixturevalue("shim").url, "")
    yield c
    await c.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a server that hangs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])
