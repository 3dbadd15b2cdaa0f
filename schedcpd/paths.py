"""Where schedcp keeps its files.

Defaults follow the design card (state in /var/lib/schedcp, cache in /var/cache/schedcp);
environment variables override them so tests and unprivileged development can run anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("SCHEDCP_CACHE_DIR", "/var/cache/schedcp"))


def state_dir() -> Path:
    return Path(os.environ.get("SCHEDCP_STATE_DIR", "/var/lib/schedcp"))


def config_file() -> Path:
    return Path(os.environ.get("SCHEDCP_CONFIG", "/etc/schedcp/schedcpd.toml"))


def policies_dir() -> Path:
    return Path(os.environ.get("SCHEDCP_POLICIES_DIR", str(REPO_ROOT / "policies")))


def bpf_include_dir() -> Path:
    return REPO_ROOT / "bpf" / "include"


def lab_dir() -> Path:
    """Kernel, vmlinux.h, guest image and loader binary for the micro-VM."""
    return cache_dir() / "lab"
