"""Prepare everything the lab needs, idempotently: kernel, vmlinux.h, guest image, loader.

A second run repeats no finished work and says so. `make setup` runs this module; commands
that need the lab (`schedcpctl vm check`) call ``ensure`` so they also work from a cold cache.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from schedcpd.bpf import toolchain
from schedcpd.lab import image, kernel


class SetupError(RuntimeError):
    """The lab could not be prepared (no kernel package reachable, a build failed)."""


def ensure(say: Callable[[str], None] = print) -> None:
    """Fetch the kernel, build the guest image and the loader, each only if missing."""
    try:
        info, did = kernel.fetch()
    except kernel.KernelError as exc:
        raise SetupError(str(exc)) from exc
    say(f"lab setup: kernel {info.release} " + ("fetched" if did else "already cached"))
    path, did = image.ensure_base_image()
    say(f"lab setup: guest image {path} " + ("built" if did else "up to date"))
    try:
        path, did = toolchain.ensure_loader()
    except toolchain.BuildError as exc:
        raise SetupError(str(exc)) from exc
    say(f"lab setup: loader {path} " + ("built" if did else "up to date"))


def main() -> int:
    try:
        ensure()
    except SetupError as exc:
        print(f"lab setup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
