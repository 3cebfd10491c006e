"""The Alertmanager image (Debian's prometheus-alertmanager on the Debian base) run as its Pod runs it:
user nobody, read-only root, the rendered config and a tenant's token file mounted, data on a tmpfs."""

from __future__ import annotations

import httpx
import pytest
import yaml

from alert_config_sync.routing import AlertTenant, PlatformAlerts, TenantAlerts, render_alertmanager_config
from tests.helpers import free_port, wait_for

pytestmark = [pytest.mark.images, pytest.mark.timeout(900)]


def test_the_alertmanager_image_serves_a_rendered_config(built_images, docker_daemon, tmp_path):
    from testcontainers.core.container import DockerContainer

    config_dir = tmp_path / "alertmanager"
    config_dir.mkdir()
    (config_dir / "acme-corp.token").write_text("acme-token")
    config = render_alertmanager_config(
        PlatformAlerts(webhook_urls=["https://oncall.example.com/am"]),
        [
            AlertTenant(
                "acme-corp",
                frozenset({"smollm2-135m-instruct", "openai"}),
                TenantAlerts(webhook_urls=["https://hooks.acme.example/am"], webhook_token_secret="alerts-webhook"),
            ),
            AlertTenant("closed-ai", frozenset({"smollm2-135m-instruct"}), None),
        ],
        {"acme-corp": "/etc/alertmanager/acme-corp.token"},
    )
    (config_dir / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    config_dir.chmod(0o755)
    for file in config_dir.iterdir():
        file.chmod(0o644)

    port = free_port()
    container = (
        DockerContainer(built_images["alertmanager"].reference, docker_client_kw={"version": "1.41"})
        .with_command(
            [
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ]
        )
        .with_volume_mapping(str(config_dir), "/etc/alertmanager", "ro")
        .with_tmpfs_mount("/alertmanager", "uid=65534,gid=65534")
        .with_kwargs(network_mode="host", read_only=True, user="65534")
    )
    container.start()
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(url + "/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=120, what="Alertmanager ready")
        status = httpx.get(url + "/api/v2/status", timeout=10).json()
        assert status["versionInfo"]["version"].startswith("0.25")  # Debian's, as in local mode
        assert 'tenant="acme-corp"' in status["config"]["original"]
        check = container.get_wrapped_container().exec_run(
            ["amtool", "check-config", "/etc/alertmanager/alertmanager.yml"]
        )
        assert check.exit_code == 0 and b"SUCCESS" in check.output, check.output
    finally:
        container.stop()
