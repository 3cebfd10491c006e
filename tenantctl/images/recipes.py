"""What each image is: its reference, what its content hash is made of, how it is built, and the images it
builds on. The table of tenantctl/images/__init__.py says the same in words."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenantctl.images.builder import Builder
from tenantctl.images.cache import file_digest
from tenantctl.images.context import (
    BuildContext,
    alertmanager_context,
    model_server_context,
    platform_context,
    postgres_context,
    redis_context,
)
from tenantctl.images.rootfs import BASE_PACKAGES, BASE_SUITE, mmdebstrap_rootfs, mmdebstrap_version, prometheus_rootfs
from tenantctl.terraform.toolchain import PROMETHEUS, binary

VERSION = "0.1.0"  # the project's version (pyproject.toml): the platform image's tag
PLATFORM_IMAGE = f"ghcr.io/llm-tenants/platform:{VERSION}"
MODEL_SERVER_IMAGE = f"ghcr.io/llm-tenants/model-server:{VERSION}"
LOCAL_REGISTRY = "llm-tenants.local"  # images that exist only where they were built


@dataclass
class ImageRecipe:
    name: str
    reference: str
    describe: str
    hash_inputs: Callable[[], list[str]]
    build: Callable[[Builder, str], None]  # (builder, reference tag) -> image in the daemon
    needs: tuple[str, ...] = ()


def _debian_inputs(packages: tuple[str, ...]) -> Callable[[], list[str]]:
    return lambda: [mmdebstrap_version(), BASE_SUITE, *packages]


def _build_base(builder: Builder, reference: str) -> None:
    with tempfile.TemporaryDirectory(prefix="llmt-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        mmdebstrap_rootfs(BASE_PACKAGES, rootfs, log=builder.log)
        builder.import_rootfs(
            rootfs,
            reference,
            ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["python3"]'],
        )


def _build_service(context: Callable[[], BuildContext]) -> Callable[[Builder, str], None]:
    """A Dockerfile built on the Debian base."""

    def build(builder: Builder, reference: str) -> None:
        builder.docker_build(context(), reference, {"BASE": RECIPES["base"].reference})

    return build


def _prometheus_binary() -> Path:
    return binary(PROMETHEUS)


def _build_prometheus(builder: Builder, reference: str) -> None:
    """The Go-built static binary alone, laid out as the official image (/bin/prometheus, user nobody)."""
    with tempfile.TemporaryDirectory(prefix="llmt-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        prometheus_rootfs(_prometheus_binary(), rootfs)
        builder.import_rootfs(
            rootfs,
            reference,
            [
                'ENTRYPOINT ["/bin/prometheus"]',
                "USER 65534",
                "WORKDIR /prometheus",
                "EXPOSE 9090",
                'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
            ],
        )


RECIPES: dict[str, ImageRecipe] = {
    recipe.name: recipe
    for recipe in (
        ImageRecipe(
            "base",
            f"{LOCAL_REGISTRY}/debian-python:{BASE_SUITE}",
            "Debian with Python 3.11 (mmdebstrap)",
            _debian_inputs(BASE_PACKAGES),
            _build_base,
        ),
        ImageRecipe(
            "platform",
            PLATFORM_IMAGE,
            "gateway and tenant proxy (Dockerfile)",
            lambda: [platform_context().digest()],
            _build_service(platform_context),
            needs=("base",),
        ),
        ImageRecipe(
            "model-server",
            MODEL_SERVER_IMAGE,
            "llama.cpp server: SmolLM2 and Gemma 3 chat, all-MiniLM-L6-v2 embeddings",
            lambda: [model_server_context().digest()],
            _build_service(model_server_context),
            needs=("base",),
        ),
        ImageRecipe(
            "prometheus",
            f"{LOCAL_REGISTRY}/prometheus:{PROMETHEUS.version}",
            "Prometheus with Kubernetes service discovery (Go-built)",
            lambda: [file_digest(_prometheus_binary())],
            _build_prometheus,
        ),
        ImageRecipe(
            "redis",
            f"{LOCAL_REGISTRY}/redis:{BASE_SUITE}",
            "Debian's redis-server",
            lambda: [redis_context().digest()],
            _build_service(redis_context),
            needs=("base",),
        ),
        ImageRecipe(
            "postgres",
            f"{LOCAL_REGISTRY}/postgres:15-{BASE_SUITE}",
            "Debian's PostgreSQL 15",
            lambda: [postgres_context().digest()],
            _build_service(postgres_context),
            needs=("base",),
        ),
        ImageRecipe(
            "alertmanager",
            f"{LOCAL_REGISTRY}/alertmanager:0.25-{BASE_SUITE}",
            "Debian's Alertmanager 0.25",
            lambda: [alertmanager_context().digest()],
            _build_service(alertmanager_context),
            needs=("base",),
        ),
    )
}
DEPLOYED = ("platform", "model-server", "prometheus", "redis", "postgres", "alertmanager")
