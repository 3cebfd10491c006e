"""The platform on the local node: images built (cached by content) and imported into the node's
containerd, hostPath volumes for the claims, then the platform root and both example tenants applied
with Terraform (wait_for_rollout on), from a copy of the repository."""

from __future__ import annotations

import pytest
from kubernetes import client

from tenantctl import images
from tests.cluster.node_platform import HostPathVolumes, NodePlatform
from tests.helpers import repository_copy


@pytest.fixture(scope="session")
def platform_images() -> dict[str, images.BuiltImage]:
    return images.ensure_images(log=lambda message: print(f"[images] {message}", flush=True))


@pytest.fixture(scope="session")
def node_platform(node_cluster, platform_images, tmp_path_factory) -> NodePlatform:
    for image in platform_images.values():
        node_cluster.import_image(image.archive)
    volumes = HostPathVolumes(client.CoreV1Api(node_cluster.api_client()), tmp_path_factory.mktemp("volumes"))
    platform = NodePlatform(kubeconfig=node_cluster.kubeconfig, repo=repository_copy(tmp_path_factory.mktemp("repo")),
                            built=platform_images, volumes=volumes)
    try:
        platform.start_relay()  # the ingress path: a relay Pod in the ingress controller's namespace
        platform.apply_platform()
        for tenant in ("acme-corp", "closed-ai"):
            platform.apply_tenant(tenant)
        yield platform
    finally:
        if platform.relay is not None:
            platform.relay.stop()
        platform.volumes.remove_all()
