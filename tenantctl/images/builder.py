"""Building images in a Docker daemon (our own, started only when something must be built:
docker_daemon.py), and knowing which content an image in a daemon was built from.

An image built from some content is also tagged <CONTENT_REPOSITORY>:<name>-<hash> in the daemon
(not a label: a build-time label changes every step's config and defeats the layer cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from tenantctl.images.cache import BuiltImage
from tenantctl.images.context import BuildContext, ImageBuildError
from tenantctl.images.docker_daemon import DockerDaemon

CONTENT_REPOSITORY = "llm-tenants.local/content"

Log = Callable[[str], None]


class Builder:
    """Builds the images that are not cached; one dockerd for all of them, started only if needed."""

    def __init__(self, log: Log = print, docker_host: str | None = None):
        self.log = log
        self.docker_host = docker_host
        self._daemon: DockerDaemon | None = None
        self._client = None
        self.timings: dict[str, float] = {}

    @property
    def client(self):
        if self._client is None:
            if self.docker_host:
                import docker

                self._client = docker.DockerClient(base_url=self.docker_host, version="auto", timeout=600)
            else:
                self._daemon = DockerDaemon(log=self.log).start()
                self._client = self._daemon.client
        return self._client

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()
        elif self._client is not None:
            self._client.close()
        self._daemon = self._client = None

    def has_image(self, reference: str, content_hash: str) -> bool:
        return has_image(self.client, reference, content_hash)

    def load(self, image: BuiltImage) -> None:
        load_images(self.client, [image], self.log)

    def docker_build(self, context: BuildContext, reference: str, buildargs: dict[str, str] | None = None) -> None:
        stream = self.client.api.build(
            fileobj=context.tar(),
            custom_context=True,
            tag=reference,
            buildargs=buildargs or {},
            network_mode="host",
            rm=True,
            forcerm=True,
            decode=True,
        )
        tail: list[str] = []
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(f"{reference}: {chunk['error']}\n" + "".join(tail[-30:]))
            text = chunk.get("stream", "")
            if text:
                tail.append(text)
                if text.startswith("Step "):
                    self.log(f"  {reference}: {text.strip()[:160]}")
                elif "Using cache" in text:
                    self.log(f"  {reference}:   (cached)")

    def import_rootfs(self, rootfs: Path, reference: str, changes: list[str]) -> None:
        """`docker import` of a root file system tarball, with the image config in `changes`."""
        repository, tag = reference.rsplit(":", 1)
        self.client.api.import_image_from_file(str(rootfs), repository=repository, tag=tag, changes=changes)

    def save(self, reference: str, archive: Path) -> None:
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as handle:
                for chunk in self.client.images.get(reference).save(named=reference):
                    handle.write(chunk)
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)

    def prune(self) -> None:
        """Images replaced under the same tag become dangling: drop them from the daemon's cache."""
        try:
            self.client.images.prune(filters={"dangling": True})
        except Exception as error:  # noqa: BLE001 - only housekeeping
            self.log(f"could not prune dangling images: {error}")


def content_tag(reference: str, content_hash: str) -> str:
    name = reference.rsplit("/", 1)[-1].split(":")[0]
    return f"{CONTENT_REPOSITORY}:{name}-{content_hash[:16]}"


def has_image(docker_client, reference: str, content_hash: str) -> bool:
    """Whether the daemon holds `reference` built from exactly this content."""
    import docker.errors

    try:
        built = docker_client.images.get(reference).id
        return built == docker_client.images.get(content_tag(reference, content_hash)).id
    except docker.errors.ImageNotFound:
        return False


def mark_content(docker_client, reference: str, content_hash: str) -> None:
    """Tag `reference` with its content; earlier content tags of the same image go (their images with them)."""
    current = content_tag(reference, content_hash)
    prefix = current.rsplit("-", 1)[0] + "-"
    for image in docker_client.images.list(name=CONTENT_REPOSITORY):
        for tag in image.tags:
            if tag.startswith(prefix) and tag != current:
                docker_client.images.remove(tag)
    repository, tag = current.split(":")
    docker_client.images.get(reference).tag(repository, tag)


def load_images(docker_client, images: Iterable[BuiltImage], log: Log = print) -> None:
    """Make sure a Docker daemon has these images (from their cached archives when it lacks them)."""
    for image in images:
        if not has_image(docker_client, image.reference, image.content_hash):
            log(f"loading {image.reference} from {image.archive}")
            with open(image.archive, "rb") as handle:
                docker_client.images.load(handle)
            mark_content(docker_client, image.reference, image.content_hash)
