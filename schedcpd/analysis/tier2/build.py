"""Building the tier-2 BPF probe and its reader against the host kernel's own BTF.

The probe is CO-RE: compiled once against a vmlinux.h dumped from the running kernel's
/sys/kernel/btf/vmlinux (no kernel headers needed), relocated by libbpf when loaded, so the
same object also loads in the lab guest's kernel. Outputs are cached by source digest
under the cache directory and replaced atomically.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

from schedcpd import paths
from schedcpd.analysis.tier2 import ProbeError

PROBES = paths.REPO_ROOT / "bpf" / "probes"
RUNQLAT_SRC = PROBES / "runqlat.bpf.c"
READER_SRC = PROBES / "probe-reader.c"
HOST_BTF = Path("/sys/kernel/btf/vmlinux")


def _out_dir() -> Path:
    d = paths.cache_dir() / "analysis"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _digest(*files: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ProbeError(f"{what} failed: {res.stderr.strip()[-2000:]}")


def _publish(tmp: Path, out: Path) -> Path:
    os.replace(tmp, out)
    return out


def host_vmlinux_h() -> Path:
    """vmlinux.h of the running kernel, dumped from its BTF once per kernel release."""
    if not HOST_BTF.exists():
        raise ProbeError("this kernel has no BTF (/sys/kernel/btf/vmlinux): no CO-RE probes")
    out = _out_dir() / f"host-{platform.release()}" / "vmlinux.h"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        res = subprocess.run(["bpftool", "btf", "dump", "file", str(HOST_BTF), "format", "c"],
                             stdout=f, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ProbeError(f"bpftool btf dump failed: {res.stderr.strip()}")
    return _publish(tmp, out)


def runqlat_object() -> Path:
    vmlinux = host_vmlinux_h()
    out = _out_dir() / f"runqlat-{_digest(RUNQLAT_SRC, vmlinux)}.bpf.o"
    if out.is_file():
        return out
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    _run(["clang-19", "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-Wall",
          "-isystem", str(vmlinux.parent), "-c", str(RUNQLAT_SRC), "-o", str(tmp)],
         "compiling runqlat.bpf.c")
    _run(["llvm-strip-19", "-g", str(tmp)], "llvm-strip")
    return _publish(tmp, out)


def reader_binary() -> Path:
    out = _out_dir() / f"schedcp-probe-{_digest(READER_SRC)}"
    if out.is_file():
        return out
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    _run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp), str(READER_SRC),
          "-lbpf", "-lelf", "-lz"], "building probe-reader.c (libbpf-dev >= 1.4)")
    return _publish(tmp, out)
