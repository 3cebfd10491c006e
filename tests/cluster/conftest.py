"""The platform on the local node: images built (cached by content) and imported into the node's
containerd, hostPath volumes for the claims, then the platform root and both example tenants applied
with Terraform (wait_for_rollout on), from a copy of the repository (tenantctl/cluster/platform.py)."""

from __future__ import annotations

import pytest

from tenantctl.cluster.platform import NodePlatform, platform_on_node
from tenantctl.images.build import ensure_images
from tenantctl.images.cache import BuiltImage


@pytest.fixture(scope="session")
def platform_images() -> dict[str, BuiltImage]:
    return ensure_images(log=lambda message: print(f"[images] {message}", flush=True))


@pytest.fixture(scope="session")
def node_platform(node_cluster, platform_images, tmp_path_factory) -> NodePlatform:
    with platform_on_node(node_cluster, platform_images, tmp_path_factory.mktemp("platform")) as platform:
        platform.apply_platform()
        for tenant in ("acme-corp", "closed-ai"):
            platform.apply_tenant(tenant)
        yield platform
