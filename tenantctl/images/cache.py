"""The cache of built images under `$LLM_TENANTS_CACHE/images/`: each image's `docker save` archive, named
by its content hash (`<name>-<hash>.tar`); the memo of large files' digests; the build times."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tenantctl.paths import cache_root

KEEP_ARCHIVES = 2  # per image: the current archive and the one before (another checkout may use it)


@dataclass(frozen=True)
class BuiltImage:
    """One image: its reference (what the Pods name), its content hash and its cached archive."""

    name: str
    reference: str
    content_hash: str
    archive: Path

    @property
    def cached(self) -> bool:
        return self.archive.is_file()


def images_dir() -> Path:
    return cache_root() / "images"


def archive_path(name: str, content_hash: str) -> Path:
    return images_dir() / f"{name}-{content_hash[:16]}.tar"


def sha256(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """Content hash of a file; large files (models, wheels, binaries) are hashed once per size+mtime."""
    stat = path.stat()
    if stat.st_size < 8 << 20:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    memo = images_dir() / "digests.json"
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        known[key] = digest.hexdigest()
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f"{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(memo)
    return known[key]


def prune_archives(name: str, current: Path) -> None:
    """Keep the newest KEEP_ARCHIVES archives of an image: every code change makes a new one."""
    archives = sorted(
        images_dir().glob(f"{name}-" + "?" * 16 + ".tar"), key=lambda path: path.stat().st_mtime, reverse=True
    )
    for stale in [path for path in archives if path != current][KEEP_ARCHIVES - 1 :]:
        stale.unlink(missing_ok=True)


def build_times_file() -> Path:
    return images_dir() / "build-times.json"


def record_build_times(timings: dict[str, float]) -> None:
    if not timings:
        return
    try:
        recorded = json.loads(build_times_file().read_text())
    except (OSError, ValueError):
        recorded = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    recorded.update({name: {"seconds": round(seconds, 1), "built_at": stamp} for name, seconds in timings.items()})
    build_times_file().parent.mkdir(parents=True, exist_ok=True)
    build_times_file().write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
