"""The node's containerd through `ctr`, in Kubernetes' namespace (k8s.io): readiness, image import, listing."""

from __future__ import annotations

import subprocess
from pathlib import Path

CTR = Path("/usr/bin/ctr")
NAMESPACE = "k8s.io"


class ContainerdError(RuntimeError):
    """ctr failed; the message carries its error."""


class Containerd:
    def __init__(self, socket: Path | str):
        self.socket = Path(socket)

    def ctr(self, *args: str, timeout: float | None = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CTR), "--address", str(self.socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ready(self) -> bool:
        return self.socket.exists() and self.ctr("version", timeout=10).returncode == 0

    def import_image(self, archive: Path | str) -> list[str]:
        """Import a docker-archive or OCI tar; returns the references added."""
        before = set(self.images())
        result = self.ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise ContainerdError(f"importing {archive} failed: {result.stderr.strip()}")
        return sorted(set(self.images()) - before) or [
            line.split()[1] for line in result.stdout.splitlines() if line.startswith("unpacking ")
        ]

    def images(self) -> list[str]:
        """Name:tag references of the images (digest references left out)."""
        result = self.ctr("images", "list", "--quiet", timeout=30)
        if result.returncode != 0:
            raise ContainerdError(f"listing images failed: {result.stderr.strip()}")
        return sorted(ref for ref in result.stdout.split() if not ref.startswith("sha256:") and "@" not in ref)
