"""Run `schedcpd` as a real process on a private bus, as the tests of the daemon need."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from schedcpd.client import DaemonClient
from schedcpd.errors import RequestError


class DaemonProcess:
    def __init__(self, bus: str, state_dir: Path, config: Path, *args: str,
                 env: dict[str, str] | None = None) -> None:
        self.bus, self.state_dir, self.config = bus, state_dir, config
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state_dir / "schedcpd.log"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "schedcpd.daemon.main", "--bus", self.bus,
                 "--state-dir", str(self.state_dir), "--config", str(self.config),
                 *self.args], stdout=log, stderr=log, env=self.env)

    async def client(self, timeout_s: float = 120.0) -> DaemonClient:
        """A client, once the daemon owns its name and answers Status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"schedcpd exited {self.proc.returncode}: {self.tail()}")
            try:
                c = await DaemonClient.connect(self.bus)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            try:
                await c.status()
                return c
            except RequestError:
                c.close()
                await asyncio.sleep(0.3)
        raise TimeoutError(f"schedcpd did not come up: {self.tail()}")

    def tail(self, n: int = 4000) -> str:
        """The last ``n`` bytes of the daemon's log (read from the end: a runaway log can
        be gigabytes)."""
        try:
            with self.log.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


async def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.5) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if v := await predicate():
            return v
        await asyncio.sleep(interval_s)
    raise TimeoutError(f"condition not met within {timeout_s} s")


class Signals:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str, dict[str, Any]]] = []

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        self.seen.append((time.monotonic(), name, payload))

    async def wait(self, name: str, timeout_s: float, after: float = 0.0) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            return next((p for t, n, p in self.seen if n == name and t >= after), None)
        res: dict[str, Any] = await wait_for(found, timeout_s, 0.2)
        return res

    async def first(self, names: tuple[str, ...], timeout_s: float, after: float = 0.0
                    ) -> tuple[str, dict[str, Any]]:
        """The first of ``names`` seen since ``after``: a wait that also ends on failure."""
        async def found() -> tuple[str, dict[str, Any]] | None:
            return next(((n, p) for t, n, p in self.seen if n in names and t >= after), None)
        res: tuple[str, dict[str, Any]] = await wait_for(found, timeout_s, 0.2)
        return res
