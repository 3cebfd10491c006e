"""The toolchain cache, the offline provider mirror and the idempotent build script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tenantctl import toolchain

REPO = Path(__file__).resolve().parents[3]


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_TENANTS_CACHE", str(tmp_path))
    assert toolchain.KUBE_APISERVER.path() == tmp_path / "toolchain" / f"kubernetes-{toolchain.KUBERNETES_VERSION}" / "kube-apiserver"
    missing = toolchain.missing_binaries()
    assert len(missing) == len(toolchain.COMPONENTS)
    assert all("run scripts/build-toolchain" in message for message in missing)


def test_provider_cache_key_follows_its_source(tmp_path):
    (tmp_path / "main.go").write_text("package main\n")
    before = toolchain.source_hash(tmp_path)
    (tmp_path / "main.go").write_text("package main // changed\n")
    changed = toolchain.source_hash(tmp_path)
    assert changed != before
    (tmp_path / "README.md").write_text("docs do not count")
    assert toolchain.source_hash(tmp_path) == changed


def test_mirror_uses_terraforms_unpacked_layout():
    relative = toolchain.mirrored_provider_path().relative_to(toolchain.mirror_dir())
    assert relative.parts == ("llm-tenants.local", "platform", "kube", toolchain.KUBE_PROVIDER_VERSION,
                              "linux_amd64", f"terraform-provider-kube_v{toolchain.KUBE_PROVIDER_VERSION}")


def test_cli_config_installs_from_the_mirror_only():
    text = toolchain.cli_config_text()
    assert "filesystem_mirror" in text and str(toolchain.mirror_dir()) in text
    assert "direct" not in text


def test_build_script_is_idempotent_and_fast_when_cached():
    started = time.monotonic()
    run = subprocess.run([str(REPO / "scripts" / "build-toolchain")], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("[build-toolchain] cached ") == len(toolchain.COMPONENTS), run.stdout
    assert time.monotonic() - started < 10
    assert os.access(toolchain.mirrored_provider_path(), os.X_OK)
