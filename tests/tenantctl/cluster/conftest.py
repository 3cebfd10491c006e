"""A real Kubernetes control plane for the cluster tests (etcd + kube-apiserver + kube-controller-manager).

Started once per session on free loopback ports from the binaries `scripts/build-toolchain`
builds; stopped at the end even when tests fail. A missing binary fails the tests with the
command to run; it never skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tenantctl import toolchain
from tenantctl.cluster import LocalControlPlane


@dataclass
class ControlPlane:
    plane: LocalControlPlane

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def api_url(self) -> str:
        return self.plane.api_url

    def api_client(self, impersonate: str | None = None, group: str | None = None) -> client.ApiClient:
        """A kubernetes ApiClient as the admin, or impersonating `impersonate` (and one `group`)."""
        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        if impersonate:
            api.set_default_header("Impersonate-User", impersonate)
        if group:
            api.set_default_header("Impersonate-Group", group)
        return api


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> ControlPlane:
    missing = toolchain.missing_binaries()
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)
    plane = LocalControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
        yield ControlPlane(plane)
    finally:
        plane.stop()
