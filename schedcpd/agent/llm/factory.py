"""One client from the configuration's four agent settings."""

from __future__ import annotations

import os

from schedcpd.agent.llm.client import ChatClient

BACKENDS = ("ollama", "openai")


def make_client(backend: str, model: str, url: str, api_key_env: str = "") -> ChatClient:
    """A ChatClient for ``backend``. ``api_key_env`` is the NAME of the environment variable
    holding the key, sent as a bearer token ("" for a local server without one; a hosted
    Ollama takes one too), so the key itself is never in a configuration file; a key in
    the SDKs' own variables (OPENAI_API_KEY, OLLAMA_API_KEY) is never sent. ValueError
    names what is wrong."""
    if backend not in BACKENDS:
        raise ValueError(f"agent.backend {backend!r}: an LLM backend is one of "
                         f"{', '.join(BACKENDS)}")
    if not model:
        raise ValueError(f"agent.model is not set: the {backend} backend needs a model name")
    if not url:
        raise ValueError(f"agent.url is not set: the {backend} backend needs the server's URL")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"agent.url {url!r}: expected an http:// or https:// URL")
    key = ""
    if api_key_env:
        key = os.environ.get(api_key_env, "")
        if not key:
            raise ValueError(f"agent.api_key_env names {api_key_env}, which is not set "
                             "in the daemon's environment (or is empty)")
    # The SDKs are imported here: a process that never talks to a model does not load them.
    if backend == "ollama":
        from schedcpd.agent.llm.ollama_client import OllamaClient

        return OllamaClient(model, url, key)
    from schedcpd.agent.llm.openai_client import OpenAIClient

    return OpenAIClient(model, url, key)
