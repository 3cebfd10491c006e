"""The toolchain cache, the offline provider mirror and the idempotent build script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tenantctl.terraform import provider_mirror, toolchain

REPO = Path(__file__).resolve().parents[3]


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_TENANTS_CACHE", str(tmp_path))
    kubernetes = f"kubernetes-{toolchain.KUBERNETES_VERSION}"
    assert toolchain.KUBE_APISERVER.path() == tmp_path / "toolchain" / kubernetes / "kube-apiserver"
    missing = toolchain.missing_binaries()
    assert len(missing) == len(toolchain.COMPONENTS)
    assert all("run scripts/build-toolchain" in message for message in missing)


def test_mirror_uses_terraforms_unpacked_layout():
    relative = provider_mirror.mirrored_provider_path().relative_to(provider_mirror.mirror_dir())
    version = toolchain.KUBECTL_PROVIDER_VERSION
    # Mirrored under its public registry address, so the HCL needs no source of ours.
    assert relative.parts == (
        "registry.terraform.io",
        "gavinbunney",
        "kubectl",
        version,
        "linux_amd64",
        f"terraform-provider-kubectl_v{version}",
    )


def test_provider_wrapper_pins_the_mirrored_version():
    go_mod = (REPO / "scripts" / "toolchain" / "terraform-provider-kubectl" / "go.mod").read_text()
    assert f"github.com/gavinbunney/terraform-provider-kubectl v{toolchain.KUBECTL_PROVIDER_VERSION}" in go_mod


def test_cli_config_installs_from_the_mirror_only():
    text = provider_mirror.cli_config_text()
    assert "filesystem_mirror" in text and str(provider_mirror.mirror_dir()) in text
    assert "direct" not in text


def test_build_script_is_idempotent():
    run = subprocess.run(
        [str(REPO / "scripts" / "build-toolchain")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("[build-toolchain] cached ") == len(toolchain.COMPONENTS), run.stdout
    assert os.access(provider_mirror.mirrored_provider_path(), os.X_OK)


def test_node_wrappers_pin_the_versions_toolchain_names():
    wrappers = REPO / "scripts" / "toolchain"
    assert (
        f"github.com/cloudnativelabs/kube-router/v2 {toolchain.KUBE_ROUTER_VERSION}"
        in (wrappers / "kube-router" / "go.mod").read_text()
    )
    assert f"github.com/coredns/coredns {toolchain.COREDNS_VERSION}" in (wrappers / "coredns" / "go.mod").read_text()
    assert f"sigs.k8s.io/cri-tools {toolchain.CRI_TOOLS_VERSION}" in (wrappers / "cri-tools" / "go.mod").read_text()
    kubernetes = (wrappers / "kubernetes" / "go.mod").read_text()
    assert f"k8s.io/kubernetes {toolchain.KUBERNETES_VERSION}" in kubernetes
    for command in ("kube-scheduler", "kubelet", "kube-proxy"):
        assert (wrappers / "kubernetes" / "cmd" / command / "main.go").exists()


def test_coredns_is_static_for_its_image():
    assert toolchain.COREDNS.static and toolchain._go_env(toolchain.COREDNS)["CGO_ENABLED"] == "0"
