"""`schedcpd`: start the daemon. Flags override `/etc/schedcp/schedcpd.toml`.

Start-up order: configuration (errors stop here, before anything changes), the store and
its migrations, the target, reconciliation of the records with the kernel, the event
sources, and last the bus name, so a client that sees the name sees a ready daemon.
SIGTERM/SIGINT stop cleanly; SIGHUP reloads the configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from schedcpd import config as config_mod
from schedcpd.agent.backend import BackendError
from schedcpd.config import ConfigError, DaemonConfig
from schedcpd.daemon.learning import Learner
from schedcpd.daemon.planning import make_backend
from schedcpd.daemon.records import DaemonRecords
from schedcpd.daemon.service import Daemon
from schedcpd.daemon.verifying import LabVerifier, check_token
from schedcpd.deploy.deployer import Deployer
from schedcpd.deploy.target import TargetError, make_target
from schedcpd.lab.vm import LabError
from schedcpd.repository.lazy import LazyRepository
from schedcpd.store import Store, StoreError
from schedcpd.tools import Services

log = logging.getLogger("schedcpd")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="schedcpd", description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="configuration file "
                                                "(default /etc/schedcp/schedcpd.toml)")
    ap.add_argument("--bus", help="system, session or a D-Bus address")
    ap.add_argument("--state-dir", type=Path, help="database, keys and kept objects")
    ap.add_argument("--mode", choices=config_mod.MODES)
    ap.add_argument("--target", choices=config_mod.TARGETS)
    ap.add_argument("--on-stop", choices=config_mod.ON_STOP,
                    help="what the kernel runs after the daemon stops")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def load_config(args: argparse.Namespace) -> DaemonConfig:
    overrides: dict[str, Any] = {"bus": args.bus, "state_dir": args.state_dir,
                                 "mode": args.mode, "target": args.target,
                                 "on_stop": args.on_stop}
    return config_mod.load(args.config, overrides)


class Running:
    """The daemon's parts, started in order and stopped in reverse."""

    def __init__(self, cfg: DaemonConfig) -> None:
        self.cfg = cfg
        self.store: Store | None = None
        self.daemon: Daemon | None = None
        self.bus: Any = None

    async def start(self) -> None:
        cfg = self.cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Components that find their files through schedcpd.paths agree with the flags.
        os.environ["SCHEDCP_STATE_DIR"] = str(cfg.state_dir)
        self.store = await Store.open(cfg.state_dir / "schedcp.db")
        records = DaemonRecords(self.store)
        target = make_target(cfg.resolved_target())
        deployer = Deployer(target, records, cfg.canary, check_token)
        repository = LazyRepository.on_store(self.store)
        self.daemon = Daemon(cfg, records, target, deployer,
                             LabVerifier(records, cfg.verifier.dynamic), repository,
                             learner=Learner(repository),
                             race_verifier=LabVerifier(records, "quick"))
        services = Services(self.daemon, open_repository=repository.get)
        self.daemon.backend = make_backend(cfg, repository, services)
        await self.daemon.start()
        from schedcpd.dbus_service import connect, serve

        self.bus = await connect(cfg.bus)
        await serve(services, self.bus)
        log.info("schedcpd ready: mode %s, target %s (kernel %s), bus %s", self.daemon.mode,
                 target.name, target.kernel, cfg.bus)

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
        if self.daemon is not None:
            await self.daemon.stop()
        if self.store is not None:
            await self.store.close()

    def reload(self) -> None:
        """SIGHUP: settings that can change live do; the rest need a restart."""
        if self.daemon is None:
            return
        try:
            new = config_mod.load(Path(self.cfg.source) if self.cfg.source else None)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        new = dataclasses.replace(new, bus=self.cfg.bus, state_dir=self.cfg.state_dir,
                                  target=self.cfg.target)
        self.cfg = self.daemon.cfg = new
        self.daemon.deployer.cfg = new.canary
        log.info("configuration reloaded from %s", new.source or "defaults")


async def run(cfg: DaemonConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    running = Running(cfg)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, running.reload)
    try:
        await running.start()
    except (StoreError, TargetError, LabError, BackendError, OSError) as exc:
        log.error("cannot start: %s", exc)
        await running.stop()
        return 1
    await stop.wait()
    log.info("stopping")
    await running.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"schedcpd: configuration error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(cfg))


if __name__ == "__main__":
    sys.exit(main())
