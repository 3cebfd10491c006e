"""`tenantctl report <tenant>`: a valid PNG with one plot per dashboard panel, drawn from real Prometheus data."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from dashboards.generate import tenant_dashboard_json
from dashboards.reading import dashboard_panels
from tenantctl.local.report import render_report
from tests.helpers import REPO_ROOT, free_port

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def panel_titles(tenant: str) -> list[str]:
    return [p.title for p in dashboard_panels(json.loads(tenant_dashboard_json(tenant)))]


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tenantctl", "report", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )


def test_report_is_a_png_with_one_plot_per_panel(observed_platform, tmp_path):
    output = tmp_path / "acme-corp.png"
    result = run_report(
        "acme-corp",
        "--prometheus",
        observed_platform.prometheus_url,
        "--range",
        "10m",
        "--rate-interval",
        "30s",
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    titles = panel_titles("acme-corp")
    assert f"{len(titles)} panels" in result.stdout
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(output) as image:
        image.verify()
    with Image.open(output) as image:
        assert image.format == "PNG" and image.width > 800 and image.height > 200 * (len(titles) // 2)
        assert json.loads(image.text["Description"])["panels"] == titles


def test_every_panel_has_data_except_the_cluster_only_one(observed_platform, tmp_path):
    result = render_report(
        "closed-ai",
        observed_platform.prometheus_url,
        tmp_path / "closed-ai.png",
        time_range="10m",
        rate_interval="30s",
        end=observed_platform.finished_at,
    )
    assert result.panels == panel_titles("closed-ai")
    assert result.panels_without_data == ["Namespace quota usage"]


def test_unknown_tenant_is_refused():
    result = run_report("globex", "--prometheus", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "unknown tenant 'globex'" in result.stderr


def test_unreachable_prometheus_is_a_clear_error(tmp_path):
    result = run_report(
        "acme-corp", "--prometheus", f"http://127.0.0.1:{free_port()}", "--output", str(tmp_path / "x.png")
    )
    assert result.returncode == 1
    assert "cannot reach Prometheus" in result.stderr and "tenantctl up" in result.stderr
    assert not (tmp_path / "x.png").exists()
