"""Real sources for the event tests: a podman engine serving the Docker API, a tiny image.

There is no registry here, so the image is imported offline from a busybox-static rootfs
tarball. The podman service runs on a private unix socket and is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
IMAGE = "localhost/schedcp-test-busybox:latest"
BUSYBOX = Path("/bin/busybox")


def podman_env() -> dict[str, str]:
    # runc and lowered ulimits: crun fails on setrlimit and hybrid cgroups here.
    return {**os.environ, "CONTAINERS_CONF": str(DATA / "containers.conf")}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True,
                          text=True, check=check, timeout=120)


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("podman") is None or not BUSYBOX.exists():
        pytest.fail("podman and busybox-static are needed (scripts/setup-apt.sh)")
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return IMAGE
    root = tmp_path_factory.mktemp("rootfs")
    tar = root / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "sleep", "true", "echo"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
    podman("import", str(tar), IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory: pytest.TempPathFactory,
                  busybox_image: str) -> Iterator[str]:
    sock = tmp_path_factory.mktemp("podman") / "podman.sock"
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            env=podman_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        else:
            pytest.fail("podman system service did not create its socket")
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
