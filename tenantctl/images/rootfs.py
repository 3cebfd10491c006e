"""Root file systems built without pulling anything: Debian's with mmdebstrap (the base image every Debian
service image builds on), and Prometheus's, its Go-built static binary alone."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from tenantctl.images.context import ImageBuildError

BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "libgomp1", "ca-certificates")

Log = Callable[[str], None]


def mmdebstrap_version() -> str:
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed: run ./scripts/setup (Debian package mmdebstrap)")
    return subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def mmdebstrap_rootfs(packages: tuple[str, ...], target: Path, log: Log = print) -> None:
    """A Debian root file system with `packages` (and what they depend on) as a tarball."""
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--quiet",
        f"--include={','.join(packages)}",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--customize-hook=chroot \"$1\" sh -c 'rm -rf /var/lib/apt/lists/* /var/cache/apt/*'",
        BASE_SUITE,
        str(target),
    ]
    log(f"  mmdebstrap {BASE_SUITE} + {', '.join(packages)}")
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")


def prometheus_rootfs(binary: Path, target: Path) -> None:
    """The static binary laid out as the official image's (/bin/prometheus, user nobody) as a tarball."""
    with tarfile.open(target, "w") as archive:
        _add_bytes(
            archive,
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/home:/sbin/nologin\n",
        )
        _add_bytes(archive, "etc/group", b"root:x:0:\nnobody:x:65534:\n")
        for directory, mode in (("etc/prometheus", 0o755), ("prometheus", 0o777), ("tmp", 0o1777)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            archive.addfile(info)
        archive.add(binary, arcname="bin/prometheus")


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))
