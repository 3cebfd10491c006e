"""Write a container image as an OCI image-layout tar, without a container engine.

The local node's own images (the Pod sandbox, CoreDNS, a busybox toolbox) are a few static
binaries each, so one uncompressed layer built from a file list is all they need. The tar is what
`ctr images import` (and `docker load`) read: `oci-layout`, `index.json` naming the image with
containerd's `io.containerd.image.name` annotation, and the blobs (layer, config, manifest).
Everything is written deterministically (fixed mtimes, sorted entries), so the same inputs give
the same image digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

EPOCH = 0  # mtime of every file: the image digest depends on content only
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class ImageFile:
    """One file of the image's single layer."""

    path: str  # absolute path inside the image, e.g. "/pause"
    data: bytes = b""
    mode: int = 0o644
    symlink_to: str | None = None
    directory: bool = False  # an explicit directory, e.g. /tmp with mode 0o1777


@dataclass
class ImageSpec:
    name: str  # full reference, e.g. "llm-tenants.local/pause:3.10.1"
    files: list[ImageFile]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str = ""
    env: list[str] = field(default_factory=lambda: ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"])
    labels: dict[str, str] = field(default_factory=dict)


def _tar_bytes(files: list[ImageFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        explicit = {item.path.strip("/") for item in files if item.directory}
        for directory in sorted(_parent_directories(files) - explicit):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for item in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(item.path.strip("/"))
            info.mtime, info.mode = EPOCH, item.mode
            if item.directory:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif item.symlink_to is not None:
                info.type, info.linkname = tarfile.SYMTYPE, item.symlink_to
                tar.addfile(info)
            else:
                info.size = len(item.data)
                tar.addfile(info, io.BytesIO(item.data))
    return buffer.getvalue()


def _parent_directories(files: list[ImageFile]) -> set[str]:
    directories = set()
    for item in files:
        parts = item.path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    return directories


def _descriptor(media_type: str, blob: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(), "size": len(blob), **extra}


def _json_blob(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_image(spec: ImageSpec, target: Path) -> str:
    """Write `spec` as an OCI archive at `target` (atomically); returns the manifest digest."""
    layer = _tar_bytes(spec.files)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = _json_blob(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": spec.entrypoint or None,
                "Cmd": spec.cmd or None,
                "Env": spec.env,
                "User": spec.user,
                "Labels": spec.labels or None,
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "tenantctl.images.oci_archive"}],
        }
    )
    manifest = _json_blob(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _descriptor(CONFIG_TYPE, config),
            "layers": [_descriptor(LAYER_TYPE, layer)],
        }
    )
    manifest_descriptor = _descriptor(
        MANIFEST_TYPE,
        manifest,
        platform={"architecture": "amd64", "os": "linux"},
        annotations={
            "io.containerd.image.name": spec.name,
            "org.opencontainers.image.ref.name": spec.name.rpartition(":")[2],
        },
    )
    index = _json_blob({"schemaVersion": 2, "manifests": [manifest_descriptor]})
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("oci-layout", _json_blob({"imageLayoutVersion": "1.0.0"})), ("index.json", index)] + [
            (f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}", blob) for blob in (layer, config, manifest)
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    partial.replace(target)
    return manifest_descriptor["digest"]
