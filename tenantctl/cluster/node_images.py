"""The images the local node itself runs, built here without a registry or a container engine.

- `pause`: the Pod sandbox, compiled from scripts/toolchain/pause/pause.c with `gcc -static`;
- `coredns`: cluster DNS, the static CoreDNS binary `scripts/build-toolchain` builds;
- `busybox`: a small toolbox (sh, nc, nslookup, httpd, ...) from Debian's `busybox-static`,
  for trying the node by hand and for the node's tests. Its `wget` is left out: bookworm's
  busybox-static 1.35.0-4+deb12u1 crashes (SIGSEGV) in `wget` even on the host; `nc` does HTTP.

Each is an OCI archive (tenantctl/images/oci_archive.py) cached by version under
`$LLM_TENANTS_CACHE/images/`, and imported into the node's containerd at start (actions.py).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenantctl.images.oci_archive import ImageFile, ImageSpec, write_image
from tenantctl.paths import cache_root
from tenantctl.terraform import toolchain

REGISTRY = "llm-tenants.local"  # never pulled: images carry this name only to be found in containerd
PAUSE_SOURCE = toolchain.WRAPPERS_DIR / "pause" / "pause.c"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
BROKEN_APPLETS = {"busybox", "wget"}  # wget: see the module docstring


@dataclass(frozen=True)
class NodeImage:
    name: str  # short name, e.g. "pause"
    tag: str
    build: Callable[[], ImageSpec]

    @property
    def reference(self) -> str:
        return f"{REGISTRY}/{self.name}:{self.tag}"

    def archive(self) -> Path:
        return cache_root() / "images" / f"{self.name}-{self.tag}.tar"


def _pause_spec() -> ImageSpec:
    with tempfile.TemporaryDirectory(prefix="pause-") as work:
        binary = Path(work) / "pause"
        subprocess.run(
            [
                "gcc",
                "-Os",
                "-Wall",
                "-static",
                f'-DPAUSE_VERSION="{toolchain.PAUSE_VERSION}"',
                "-o",
                str(binary),
                str(PAUSE_SOURCE),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["strip", str(binary)], check=True)
        data = binary.read_bytes()
    return ImageSpec(PAUSE.reference, [ImageFile("/pause", data, 0o755)], entrypoint=["/pause"], user="65535:65535")


def _coredns_spec() -> ImageSpec:
    data = toolchain.binary(toolchain.COREDNS).read_bytes()
    return ImageSpec(COREDNS.reference, [ImageFile("/coredns", data, 0o755)], entrypoint=["/coredns"])


def busybox_version() -> str:
    """Debian's busybox-static version as an image tag, e.g. 1.35.0-4-deb12u1-b1."""
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "busybox-static"], capture_output=True, text=True
    ).stdout.strip()
    if not version:
        raise toolchain.ToolchainError("Debian's busybox-static is not installed: run scripts/setup")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version.split(":")[-1])


def _busybox_spec() -> ImageSpec:
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    files = [ImageFile("/bin/busybox", BUSYBOX.read_bytes(), 0o755)]
    files += [ImageFile(f"/bin/{applet}", symlink_to="busybox") for applet in applets if applet not in BROKEN_APPLETS]
    files += [
        ImageFile("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        ImageFile("/etc/group", b"root:x:0:\nnobody:x:65534:\n"),
        ImageFile("/tmp", mode=0o1777, directory=True),
    ]
    return ImageSpec(busybox_image().reference, files, cmd=["sh"])


def _source_tag(version: str, source: Path) -> str:
    """Version plus a digest of the source, so an edited pause.c never reuses a stale image."""
    return f"{version}-{hashlib.sha256(source.read_bytes()).hexdigest()[:8]}"


PAUSE = NodeImage("pause", _source_tag(toolchain.PAUSE_VERSION, PAUSE_SOURCE), _pause_spec)
COREDNS = NodeImage("coredns", toolchain.COREDNS_VERSION, _coredns_spec)


BUSYBOX_IMAGE_REVISION = "3"  # bump when _busybox_spec changes: the cached archive is keyed by it


def busybox_image() -> NodeImage:
    return NodeImage("busybox", f"{busybox_version()}-r{BUSYBOX_IMAGE_REVISION}", _busybox_spec)


def node_images() -> list[NodeImage]:
    return [PAUSE, COREDNS, busybox_image()]


def ensure_image(image: NodeImage, log: Callable[[str], None] = print) -> Path:
    """The image's archive, built first when it is not cached."""
    archive = image.archive()
    if archive.exists():
        return archive
    if not shutil.which("gcc") and image is PAUSE:
        raise toolchain.ToolchainError("gcc is needed to build the pause image: run scripts/setup")
    log(f"building image {image.reference}")
    write_image(image.build(), archive)
    return archive


def ensure_node_images(log: Callable[[str], None] = print) -> dict[str, Path]:
    return {image.reference: ensure_image(image, log) for image in node_images()}
