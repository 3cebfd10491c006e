"""Fixtures for the images' own tests: the images (built once, cached by content) and our own Docker
daemon with them loaded, stopped at the end of the session, also on failure.

The tests start containers with testcontainers, in the host's network namespace on free loopback
ports (our dockerd has no bridge), read-only, as the user the Pods run as, and remove them
themselves: testcontainers' reaper (Ryuk) is off, its image cannot be pulled here.
"""

from __future__ import annotations

import os

import pytest

from tenantctl.images.build import ensure_images
from tenantctl.images.builder import load_images
from tenantctl.images.cache import BuiltImage
from tenantctl.images.docker_daemon import DockerDaemon

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"


@pytest.fixture(scope="session")
def built_images() -> dict[str, BuiltImage]:
    """Every deployed image; built only if its content changed since the cached archive."""
    return ensure_images(log=lambda message: print(f"[images] {message}", flush=True))


@pytest.fixture(scope="session")
def docker_daemon(built_images) -> DockerDaemon:
    daemon = DockerDaemon(log=print)
    previous_host = os.environ.get("DOCKER_HOST")
    try:
        daemon.start()
        load_images(daemon.client, built_images.values())
        os.environ["DOCKER_HOST"] = daemon.base_url  # testcontainers' client reads it
        yield daemon
    finally:
        if previous_host is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous_host
        daemon.stop()
