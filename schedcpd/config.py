"""The daemon's configuration: `/etc/schedcp/schedcpd.toml`, then command-line flags.

Every setting has a default, can be written in the file and overridden by a flag. An
unknown key, a wrong type or an out-of-range value is a start-up error naming the key and
the file, never silently ignored: a typo in a safety setting (a rollback threshold, say)
must not quietly fall back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schedcpd import paths

if TYPE_CHECKING:
    from schedcpd.agent.budget import Budget
    from schedcpd.agent.loop import LoopSettings

MODES = ("auto", "ask", "observe")
TARGETS = ("local", "vm")
ON_STOP = ("last_good", "default")
BACKENDS = ("builtin", "ollama", "openai")
ACTIONS = ("configure", "patch", "compose")
OLLAMA_URL = "http://127.0.0.1:11434"  # where an Ollama server listens unless told otherwise
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(ValueError):
    """The configuration file or a flag is invalid; the message names the key."""


@dataclass(frozen=True)
class CanaryConfig:
    # How long a new scheduler is watched before it counts as the last known good.
    window_s: float = 30.0
    interval_s: float = 1.0
    # Roll back when the tracked metric is this much worse than before, for a whole window.
    regression_threshold: float = 0.10
    regression_window_s: float = 5.0
    # Near zero a relative threshold means nothing: a regression must also be worse by at
    # least this much in the metric's own unit (for cpu_pressure, a share of time).
    absolute_floor: float = 0.15
    metric: str = "cpu_pressure"


@dataclass(frozen=True)
class AgentConfig:
    backend: str = "builtin"  # builtin (no LLM) | ollama | openai (any OpenAI-compatible)
    model: str = ""
    url: str = ""  # the server's base URL; for openai with its /v1
    api_key_env: str = ""  # the name of the variable holding the key, never the key itself
    max_iterations: int = 3
    max_fixes: int = 2  # verifier rejections the backend may try to fix, per iteration
    feedback_runs: int = 5  # workload runs before and after each deployment (tier 3)
    # What the agent may do: configure library policies, patch one, compose a new one.
    allow: tuple[str, ...] = ("configure", "patch", "compose")
    max_llm_calls: int = 20
    max_tokens: int = 50_000
    max_cost: float = 0.0  # 0: no cost limit (prices below)
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    episode_timeout_s: float = 900.0
    # Observation: how long tier 1 samples the target (while the episode's workload runs).
    observe_s: float = 2.0
    # The measured search (agent/search.py): candidates race in a lab guest. Each round
    # runs the baseline and every candidate left once; a race stops at race_max_runs
    # rounds, race_runs runs or race_lab_s seconds, whichever comes first. The defaults
    # keep an episode near 15 minutes in the TCG lab with a workload of ~10 s.
    search: bool = True
    race_min_runs: int = 3
    race_max_runs: int = 8
    race_runs: int = 60
    race_lab_s: float = 600.0
    explore: tuple[str, ...] = ()  # policies the search may race; empty: the whole library
    max_arms: int = 0  # candidates in the first race at most; 0: all proposed
    tune_trials: int = 2  # new settings of the leader's tunables in each later race

    def budget(self) -> Budget:
        from schedcpd.agent.budget import Budget

        return Budget(self.episode_timeout_s, self.max_llm_calls, self.max_tokens,
                      self.max_cost, self.price_in_per_mtok, self.price_out_per_mtok)

    def loop_settings(self, max_iterations: int | None = None,
                      budget: Mapping[str, Any] | None = None,
                      candidates: Sequence[str] = ()) -> LoopSettings:
        """The loop's settings. ``budget`` is the caller's (runs, lab_s, arms), capped by
        ours; ``candidates`` the policies the caller wants raced, in its order."""
        from schedcpd.agent.loop import LoopSettings
        from schedcpd.agent.search import RaceSettings

        asked = budget or {}
        race = RaceSettings(self.race_min_runs, max(self.race_min_runs, self.race_max_runs),
                            min(self.race_runs, int(asked.get("runs", self.race_runs))),
                            min(self.race_lab_s, float(asked.get("lab_s", self.race_lab_s))))
        arms = int(asked.get("arms", 0))
        arms = min(arms, self.max_arms) if arms and self.max_arms else arms or self.max_arms
        explore = tuple(c for c in candidates if not self.explore or c in self.explore) \
            if candidates else self.explore
        return LoopSettings(max_iterations or self.max_iterations, self.max_fixes,
                            self.feedback_runs, (*self.allow, "keep"),  # type: ignore[arg-type]
                            search=self.search, race=race, explore=explore, max_arms=arms,
                            order=tuple(candidates), tune_trials=self.tune_trials)


@dataclass(frozen=True)
class VerifierConfig:
    # "full" for deployments; "quick" trades rigour for time (development machines, tests).
    dynamic: str = "full"


@dataclass(frozen=True)
class EventsConfig:
    containers: bool = True
    processes: bool = True
    udev: bool = True
    drift: bool = True
    debounce_s: float = 2.0


@dataclass(frozen=True)
class DaemonConfig:
    bus: str = "system"  # system | session | a D-Bus address
    state_dir: Path = field(default_factory=paths.state_dir)
    mode: str = "ask"
    target: str = ""  # "" picks: local where the kernel has sched_ext, else vm
    on_stop: str = "last_good"
    proposal_timeout_s: float = 600.0
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    source: str = ""  # where the file settings came from, for messages

    def resolved_target(self) -> str:
        if self.target:
            return self.target
        return "local" if Path("/sys/kernel/sched_ext").is_dir() else "vm"


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r}: expected one of {', '.join(choices)}")


def _coerce(key: str, value: object, default: object) -> Any:
    """``value`` as the type of ``default``, or ConfigError naming ``key``."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, (int, float)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"{key} = {value!r}: expected a whole number")
            if value < 0:
                raise ConfigError(f"{key} = {value!r}: must not be negative")
            return type(default)(value)
    elif isinstance(default, Path):
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key} = {value!r}: expected a list of strings")
    raise ConfigError(f"{key} = {value!r}: expected {type(default).__name__}")


def _merge(obj: Any, values: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(obj) if f.name != "source"}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting {name!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table, e.g. [{name}]")
            changes[key] = _merge(current, value, f"{name}.")
        else:
            changes[key] = _coerce(name, value, current)
    return dataclasses.replace(obj, **changes)


def validate(cfg: DaemonConfig) -> DaemonConfig:
    _check_choice("mode", cfg.mode, MODES)
    if cfg.target:
        _check_choice("target", cfg.target, TARGETS)
    _check_choice("on_stop", cfg.on_stop, ON_STOP)
    _check_choice("agent.backend", cfg.agent.backend, BACKENDS)
    _check_choice("verifier.dynamic", cfg.verifier.dynamic, ("full", "quick"))
    if not cfg.bus:
        raise ConfigError("bus must be system, session or a D-Bus address")
    if not 0 < cfg.canary.regression_threshold < 10:
        raise ConfigError("canary.regression_threshold must be a fraction above 0 (0.1 = 10%)")
    if cfg.canary.interval_s <= 0 or cfg.canary.window_s < cfg.canary.interval_s:
        raise ConfigError("canary.interval_s must be positive and at most canary.window_s")
    if cfg.agent.max_iterations < 1:
        raise ConfigError("agent.max_iterations must be at least 1")
    if not 2 <= cfg.agent.feedback_runs <= 50:
        raise ConfigError("agent.feedback_runs must be between 2 and 50")
    for action in cfg.agent.allow:
        _check_choice("agent.allow", action, ACTIONS)
    if not 0.05 <= cfg.agent.observe_s <= 60:
        raise ConfigError("agent.observe_s must be between 0.05 and 60 seconds")
    if not 2 <= cfg.agent.race_min_runs <= cfg.agent.race_max_runs <= 50:
        raise ConfigError("agent.race_min_runs and race_max_runs: 2 <= min <= max <= 50")
    return dataclasses.replace(cfg, agent=_validate_llm(cfg.agent))


def _validate_llm(agent: AgentConfig) -> AgentConfig:
    """The LLM settings, checked at start-up rather than at the first episode."""
    if agent.api_key_env and not _ENV_NAME.fullmatch(agent.api_key_env):
        # The likeliest mistake is pasting the key itself here, into a readable file.
        raise ConfigError("agent.api_key_env must be the NAME of an environment variable "
                          "(letters, digits, _), not the key")
    if agent.backend == "builtin":
        return agent
    if not agent.model:
        raise ConfigError(f"agent.model must name a model for agent.backend = "
                          f"{agent.backend!r}")
    if agent.backend == "ollama":
        agent = dataclasses.replace(agent, url=agent.url or OLLAMA_URL)
    if not agent.url:
        raise ConfigError("agent.url must give the server's base URL for agent.backend = "
                          "'openai' (e.g. http://127.0.0.1:8080/v1)")
    if not agent.url.startswith(("http://", "https://")):
        raise ConfigError(f"agent.url = {agent.url!r}: expected an http:// or https:// URL")
    return agent


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Defaults, then the file (if it exists, or if it was named explicitly), then flags."""
    explicit = path is not None
    path = path or paths.config_file()
    cfg = DaemonConfig()
    if path.exists() or explicit:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            cfg = _merge(cfg, data, "")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        cfg = dataclasses.replace(cfg, source=str(path))
    if overrides:
        cfg = _merge(cfg, {k: v for k, v in overrides.items() if v is not None}, "")
    return validate(cfg)

