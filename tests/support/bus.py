"""A private, real dbus-daemon for tests: its own socket, torn down after the test."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OPEN_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  {extra}
</busconfig>
"""


@contextmanager
def private_bus(tmp: Path, extra_config: str = "") -> Iterator[str]:
    """Start dbus-daemon on a socket under ``tmp``; yields its address."""
    sock = tmp / "bus.sock"
    conf = tmp / "bus.conf"
    conf.write_text(OPEN_POLICY.format(socket=sock, extra=extra_config))
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if sock.exists():
                break
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"dbus-daemon failed: {err!r}")
            time.sleep(0.01)
        yield f"unix:path={sock}"
    finally:
        proc.terminate()
        proc.wait(10)
