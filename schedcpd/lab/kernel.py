"""The guest kernel: the newest trixie-backports cloud kernel that has sched_ext.

Debian's bookworm kernels are built without sched_ext; trixie-backports cloud kernels have
it. Versions leave that index as new ones arrive, so the kernel is resolved when the lab is
set up, cached, and its version recorded in ``kernel.json``. trixie is never added to the
host's apt sources: a private apt configuration (own sources list, state and cache) only
downloads and unpacks the package. Standard library only, so set-up can run it before the
venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from schedcpd import paths

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITE = "trixie-backports"
# linux-binary-7.3.4+deb13-cloud-amd64 (newer layout) or linux-image-6.16.12+deb13-cloud-amd64.
_PKG_RE = re.compile(r"^linux-(binary|image)-(\d+\.\d+(?:\.\d+)?)(\+deb\d+)?-cloud-amd64$")
_COMPRESSIONS = (
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]),
    (b"\xfd7zXZ\x00", ["xz", "-dcq"]),
    (b"\x1f\x8b\x08", ["gzip", "-dcq"]),
)


_PT_NOTE = 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18


class KernelError(RuntimeError):
    """The lab kernel could not be resolved, fetched or checked."""


@dataclass(frozen=True)
class KernelInfo:
    release: str  # uname -r of the guest, e.g. 7.3.4+deb13-cloud-amd64
    package: str
    version: str  # Debian package version
    directory: str

    @property
    def bzimage(self) -> Path:
        return Path(self.directory) / "vmlinuz"

    @property
    def vmlinux(self) -> Path:
        return Path(self.directory) / "vmlinux"

    @property
    def boot_image(self) -> Path:
        """What qemu boots: the uncompressed vmlinux through its PVH entry where it has one
        (under TCG the bzImage's own decompressor costs about 0.9 s of every boot), else
        the bzImage."""
        return self.vmlinux if has_pvh_entry(self.vmlinux) else self.bzimage

    @property
    def vmlinux_h(self) -> Path:
        return Path(self.directory) / "vmlinux.h"


def has_pvh_entry(elf: Path) -> bool:
    """True if a 64-bit ELF kernel carries XEN_ELFNOTE_PHYS32_ENTRY, the PVH entry point
    that lets qemu boot it without the bzImage wrapper. Reads only headers and notes."""
    try:
        with elf.open("rb") as f:
            head = f.read(64)
            if head[:5] != b"\x7fELF\x02":
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                ptype, _, off, _, _, size = struct.unpack_from("<IIQQQQ", table, i * phentsize)
                if ptype == _PT_NOTE:
                    f.seek(off)
                    if _has_note(f.read(size), b"Xen\0", _XEN_ELFNOTE_PHYS32_ENTRY):
                        return True
    except (OSError, struct.error):
        return False
    return False


def _has_note(notes: bytes, name: bytes, kind: int) -> bool:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        start = pos + 12
        if ntype == kind and notes[start:start + namesz] == name:
            return True
        pos = start + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def record_path() -> Path:
    return paths.lab_dir() / "kernel.json"


def current() -> KernelInfo:
    """The kernel recorded at set-up; a clear error when set-up has not run."""
    try:
        data = json.loads(record_path().read_text())
        info = KernelInfo(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise KernelError(
            f"no lab kernel recorded at {record_path()}: run `make setup` (or "
            "`python -m schedcpd.lab.kernel fetch`)"
        ) from exc
    for f in (info.bzimage, info.vmlinux_h):
        if not f.is_file():
            raise KernelError(f"lab kernel file missing: {f}; run `make setup` again")
    return info


def debian_mirror(sources: list[Path] | None = None) -> str:
    """The first non-security bookworm mirror in this machine's apt sources."""
    if sources is None:
        d = Path("/etc/apt")
        sources = [d / "sources.list", *sorted((d / "sources.list.d").glob("*"))]
    for f in sources:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip(), v.strip())
                    for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                    if not k.startswith("#") and v
                )
                uri, suites = fields.get("URIs", ""), fields.get("Suites", "").split()
                if uri and "bookworm" in suites and "security" not in uri:
                    return str(uri.split()[0])
        else:
            for line in text.splitlines():
                words = line.split()
                if words[:1] == ["deb"] and "bookworm" in words and "security" not in line:
                    return next(w for w in words if "://" in w)
    raise KernelError("no bookworm mirror found in /etc/apt/sources.list*")


def _apt_env(root: Path, mirror: str) -> dict[str, str]:
    for sub in ("lists/partial", "cache/archives/partial", "etc/sources.list.d",
                "etc/preferences.d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    (root / "etc/sources.list").write_text(
        f"deb [signed-by={KEYRING}] {mirror} {SUITE} main\n"
    )
    conf = root / "apt.conf"
    conf.write_text(
        "\n".join(
            [
                f'Dir::State "{root}";',
                f'Dir::State::Lists "{root}/lists";',
                f'Dir::State::status "{root}/status";',
                f'Dir::Cache "{root}/cache";',
                f'Dir::Etc::SourceList "{root}/etc/sources.list";',
                f'Dir::Etc::SourceParts "{root}/etc/sources.list.d";',
                f'Dir::Etc::Preferences "{root}/etc/preferences";',
                f'Dir::Etc::PreferencesParts "{root}/etc/preferences.d";',
                'APT::Architecture "amd64";',
                'APT::Sandbox::User "root";',
                "",
            ]
        )
    )
    return {**os.environ, "APT_CONFIG": str(conf)}


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def candidates(env: dict[str, str], wanted: list[str] | None = None) -> list[str]:
    """Cloud kernel packages in trixie-backports, newest first."""
    out = subprocess.run(
        ["apt-cache", "pkgnames", "linux-"], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    found: dict[str, tuple[tuple[int, ...], int, str]] = {}
    for name in out:
        m = _PKG_RE.match(name)
        if not m or (wanted and m.group(2) not in wanted):
            continue
        # Prefer the linux-binary package: it holds the image; linux-image is then a meta.
        rank = 1 if m.group(1) == "binary" else 0
        key = (_version_key(m.group(2)), rank, name)
        if m.group(2) not in found or key > found[m.group(2)]:
            found[m.group(2)] = key
    return [k[2] for k in sorted(found.values(), reverse=True)]


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    """Find the compressed payload in a bzImage and decompress it to the ELF vmlinux."""
    data = bzimage.read_bytes()
    for magic, cmd in _COMPRESSIONS:
        start = 0
        while (off := data.find(magic, start)) >= 0:
            start = off + 1
            # Trailing bytes after the stream make the decompressor complain; the ELF is
            # still complete, so judge by the output, not the exit status.
            res = subprocess.run(cmd, input=data[off:], capture_output=True)
            if res.stdout[:4] == b"\x7fELF":
                out.write_bytes(res.stdout)
                return
    raise KernelError(f"no compressed ELF kernel found in {bzimage}")


def make_vmlinux_h(vmlinux: Path, out: Path) -> None:
    res = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(vmlinux), "format", "c"],
        capture_output=True, text=True,
    )
    if res.returncode != 0:
        raise KernelError(f"bpftool could not read BTF from {vmlinux}: {res.stderr.strip()}")
    if "struct sched_ext_ops {" not in res.stdout:
        raise KernelError(f"{vmlinux} has no sched_ext (struct sched_ext_ops missing in BTF)")
    out.write_text(res.stdout)


def _unpack(deb: Path, into: Path) -> Path | None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    images = sorted(into.glob("usr/lib/modules/*/vmlinuz")) + sorted(into.glob("boot/vmlinuz-*"))
    return images[0] if images else None


def _release_of(image: Path) -> str:
    if image.name == "vmlinuz":
        return image.parent.name
    return image.name.removeprefix("vmlinuz-")


def fetch(refresh: bool = False, wanted: list[str] | None = None,
          log: bool = True) -> tuple[KernelInfo, bool]:
    """Resolve, download and prepare the newest suitable kernel. Returns (info, did_work)."""
    if not refresh:
        try:
            return current(), False
        except KernelError:
            pass
    lab = paths.lab_dir()
    lab.mkdir(parents=True, exist_ok=True)
    env = _apt_env(lab / "apt", debian_mirror())
    subprocess.run(["apt-get", "-qq", "update"], env=env, check=True)
    names = candidates(env, wanted)
    if not names:
        raise KernelError(f"no cloud kernel in {SUITE}" + (f" matching {wanted}" if wanted else ""))
    errors: list[str] = []
    for name in names:
        try:
            info = _prepare(name, env, lab, log)
        except (KernelError, subprocess.CalledProcessError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        # Write the record last and atomically: a crash before this leaves no half kernel.
        tmp = record_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
        tmp.replace(record_path())
        return info, True
    raise KernelError("no usable kernel: " + "; ".join(errors))


def _prepare(name: str, env: dict[str, str], lab: Path, log: bool) -> KernelInfo:
    with tempfile.TemporaryDirectory(dir=lab) as tmp:
        t = Path(tmp)
        if log:
            print(f"lab kernel: downloading {name}", flush=True)
        subprocess.run(["apt-get", "-qq", "download", name], env=env, cwd=t, check=True)
        deb = next(t.glob("*.deb"))
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        image = _unpack(deb, t / "x")
        if image is None:
            # A meta package: follow its dependency on the package that holds the image.
            deps = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"],
                                  capture_output=True, text=True, check=True).stdout
            inner = [d.split()[0] for d in deps.split(",") if "linux-binary-" in d]
            if not inner:
                raise KernelError("package holds no kernel image")
            subprocess.run(["apt-get", "-qq", "download", inner[0]], env=env, cwd=t, check=True)
            deb = next(p for p in t.glob("*.deb") if inner[0] in p.name)
            image = _unpack(deb, t / "y")
            if image is None:
                raise KernelError(f"{inner[0]} holds no kernel image")
        release = _release_of(image)
        kdir = lab / "kernel" / release
        work = Path(tempfile.mkdtemp(dir=lab))
        shutil.copy(image, work / "vmlinuz")
        extract_vmlinux(work / "vmlinuz", work / "vmlinux")
        make_vmlinux_h(work / "vmlinux", work / "vmlinux.h")
        if kdir.exists():
            shutil.rmtree(kdir)
        kdir.parent.mkdir(parents=True, exist_ok=True)
        work.rename(kdir)
        if log:
            print(f"lab kernel: {release} ready in {kdir}", flush=True)
        return KernelInfo(release=release, package=name, version=version, directory=str(kdir))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m schedcpd.lab.kernel")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="resolve and cache the newest sched_ext cloud kernel")
    f.add_argument("--refresh", action="store_true", help="resolve again even if cached")
    f.add_argument("--versions", default=os.environ.get("SCHEDCP_KERNEL_VERSIONS", ""),
                   help="comma-separated upstream versions to accept (default: newest)")
    sub.add_parser("show", help="print the recorded kernel")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "show":
            print(json.dumps(asdict(current()), indent=2))
            return 0
        t0 = time.monotonic()
        wanted = [v for v in args.versions.split(",") if v] or None
        info, did = fetch(refresh=args.refresh, wanted=wanted)
        if did:
            print(f"lab kernel: {info.release} fetched in {time.monotonic() - t0:.1f}s")
        else:
            print(f"lab kernel: {info.release} already cached, nothing to do")
        return 0
    except KernelError as exc:
        print(f"lab kernel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
