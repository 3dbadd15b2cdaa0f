"""`schedcpctl`: the command-line client and offline tools.

A thin adapter: each component registers its own subcommands (a ``register(sub)`` in its
``cli`` module) and the handlers call into the component. Exit codes: 0 success, 1 the
operation failed or a check did not hold, 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from schedcpd.cli_common import Handler

# One line per component that has commands.
COMMAND_MODULES = [
    "schedcpd.lab.cli",
    "schedcpd.analysis.cli",
    "schedcpd.verifier.cli",
    "schedcpd.repository.cli",
    "schedcpd.cli_client",
    "schedcpd.demo",
    "schedcpd.bench.cli",
    "schedcpd.tray.cli",
]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="schedcpctl", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] | None = None
    if "--" in argv:  # `-- CMD`: everything after it is the command, never our options
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1:]
    ap = build_parser()
    args = ap.parse_args(argv)
    if tail is not None:
        if not hasattr(args, "cmd"):
            ap.error(f"{args.command} takes no -- CMD")
        args.cmd = ["--", *tail]
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
