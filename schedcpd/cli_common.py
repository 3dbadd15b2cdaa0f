"""What every `schedcpctl` subcommand module shares: the subparsers type and exit codes.

A command module exposes ``register(sub: Subparsers) -> None``, adds its parser(s) and
sets ``func`` to a handler ``(argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # the class is not subscriptable at run time
    Subparsers = argparse._SubParsersAction
Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed or a check did not hold
EXIT_USAGE = 2
