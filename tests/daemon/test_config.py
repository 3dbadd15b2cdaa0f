"""Configuration: file, then flags; every bad key or value is an error naming it."""

from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedcpd.config import ConfigError, load


def write(tmp: Path, text: str) -> Path:
    p = tmp / "schedcpd.toml"
    p.write_text(text)
    return p


def test_defaults_when_the_default_file_is_absent(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDCP_CONFIG", str(tmp_path / "absent.toml"))
    cfg = load(None)
    assert (cfg.mode, cfg.bus, cfg.on_stop, cfg.source) == ("ask", "system", "last_good", "")


def test_file_values_then_flags_override(tmp_path: Path) -> None:
    p = write(tmp_path, 'mode = "auto"\nbus = "session"\n[canary]\nwindow_s = 12\n'
                        '[agent]\nbackend = "ollama"\nmodel = "m"\n')
    cfg = load(p, {"mode": "observe", "bus": None})
    assert cfg.mode == "observe" and cfg.bus == "session"
    assert cfg.canary.window_s == 12.0 and isinstance(cfg.canary.window_s, float)
    assert cfg.agent.backend == "ollama" and cfg.source == str(p)


def test_ollama_listens_where_ollama_does_unless_told(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[agent]\nbackend = "ollama"\nmodel = "qwen3"\n'))
    assert cfg.agent.url == "http://127.0.0.1:11434"
    cfg = load(write(tmp_path, '[agent]\nbackend = "openai"\nmodel = "m"\n'
                               'url = "https://api.example.org/v1"\napi_key_env = "LLM_KEY"\n'))
    assert (cfg.agent.url, cfg.agent.api_key_env) == ("https://api.example.org/v1", "LLM_KEY")


@pytest.mark.parametrize("text, words", [
    ('mdoe = "auto"\n', ["unknown setting 'mdoe'"]),
    ('mode = "yolo"\n', ["mode", "auto, ask, observe"]),
    ('[canary]\nwindow = 3\n', ["canary.window"]),
    ('[canary]\nregression_threshold = -1\n', ["canary.regression_threshold"]),
    ('[canary]\nwindow_s = "long"\n', ["canary.window_s"]),
    ('[agent]\nmax_iterations = 1.5\n', ["agent.max_iterations", "whole number"]),
    ('[agent]\nobserve_s = 0\n', ["agent.observe_s", "between 0.05 and 60"]),
    ('canary = 3\n', ["canary must be a table"]),
    ('[agent]\nbackend = "openai"\nmodel = "m"\n', ["agent.url", "base URL"]),
    ('[agent]\nbackend = "openai"\nurl = "http://h/v1"\n', ["agent.model"]),
    ('[agent]\nbackend = "openai"\nmodel = "m"\nurl = "h:8080"\n', ["agent.url", "http://"]),
    ('[agent]\napi_key_env = "sk-proj-abc123"\n', ["agent.api_key_env", "NAME", "not the key"]),
    ('mode = \n', ["not valid TOML"]),
])
def test_bad_settings_name_the_key_and_the_file(tmp_path: Path, text: str,
                                                words: list[str]) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(p)
    for w in words:
        assert w in str(err.value)


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml")


@settings(max_examples=60, deadline=None)
@given(key=st.text(string.ascii_lowercase + "_", min_size=1, max_size=20),
       value=st.one_of(st.integers(), st.text(max_size=10), st.booleans()))
def test_random_top_level_settings_are_refused_or_valid(tmp_path_factory: pytest.TempPathFactory,
                                                        key: str, value: object) -> None:
    import json
    tmp = tmp_path_factory.mktemp("cfg")
    p = write(tmp, f"{key} = {json.dumps(value)}\n")
    try:
        cfg = load(p)
    except ConfigError as exc:
        assert key in str(exc) or "TOML" in str(exc)
    else:
        got = getattr(cfg, key)
        assert got == type(got)(value)


def test_daemon_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    p = write(tmp_path, '[canary]\nthreshold = 0.2\n')
    res = subprocess.run([sys.executable, "-m", "schedcpd.daemon.main", "--config", str(p),
                          "--state-dir", str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "canary.threshold" in res.stderr
    assert not (tmp_path / "state").exists(), "nothing may be created before the config holds"
