"""Compiling: policy sources to BPF objects, and the loader binary that attaches them."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from schedcpd import paths
from schedcpd.lab import kernel

CLANG = "clang-19"
LLVM_STRIP = "llvm-strip-19"
LOADER_SOURCE = paths.REPO_ROOT / "bpf" / "loader" / "schedcp-loader.c"


class BuildError(RuntimeError):
    """A source did not compile; ``output`` holds the compiler's own message."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message + (f"\n{output}" if output else ""))
        self.output = output


@dataclass(frozen=True)
class BuiltObject:
    path: Path
    sha256: str
    source: Path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bpf_cflags(kernel_dir: Path) -> list[str]:
    # vmlinux.h is a system header: newer kernels' BTF dumps trip -Wall in ways that are
    # not the policy's fault.
    return ["-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
            "-isystem", str(kernel_dir), "-I", str(paths.bpf_include_dir())]


def build_object(source: Path, out_dir: Path, extra_cflags: list[str] | None = None) -> BuiltObject:
    """Compile one ``*.bpf.c`` against the lab kernel's vmlinux.h."""
    if not source.is_file():
        raise BuildError(f"no such source: {source}")
    kinfo = kernel.current()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (source.name.removesuffix(".c") + ".o")
    cmd = [CLANG, *bpf_cflags(kinfo.vmlinux_h.parent), *(extra_cflags or []),
           "-c", str(source), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        out.unlink(missing_ok=True)
        raise BuildError(f"{source.name} does not compile", res.stderr.strip())
    # DWARF is 95% of the object and nobody reads it; BTF and line info (.BTF.ext) stay,
    # so verifier logs still name source lines. A 20x smaller object boots and loads faster.
    strip = subprocess.run([LLVM_STRIP, "-g", str(out)], capture_output=True, text=True)
    if strip.returncode != 0:
        out.unlink(missing_ok=True)
        raise BuildError(f"{out.name}: llvm-strip failed", strip.stderr.strip())
    return BuiltObject(path=out, sha256=sha256_file(out), source=source)


def loader_path() -> Path:
    return paths.lab_dir() / "bin" / "schedcp-loader"


def ensure_loader() -> tuple[Path, bool]:
    """Build the loader if missing or older than its source. Returns (path, did_work)."""
    out = loader_path()
    stamp = out.with_suffix(".sha256")
    digest = sha256_file(LOADER_SOURCE)
    if out.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    res = subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp), str(LOADER_SOURCE),
         "-lbpf", "-lelf", "-lz"],
        capture_output=True, text=True,
    )
    if res.returncode != 0:
        raise BuildError("schedcp-loader does not compile (is libbpf-dev >= 1.4 installed?)",
                         res.stderr.strip())
    tmp.replace(out)
    stamp.write_text(digest)
    return out, True
