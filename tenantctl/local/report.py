"""A tenant's dashboard as one PNG without Grafana: every panel's queries, run against
Prometheus over a time range and drawn with matplotlib, one plot per panel.

The panels come from the same code as the Grafana dashboard (dashboards/), read back out
of its JSON, so the picture shows exactly what the dashboard would.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from dashboards.grafana import build  # noqa: E402
from dashboards.panels import tenant_dashboard  # noqa: E402
from dashboards.reading import PanelQueries, dashboard_panels, for_prometheus, legend  # noqa: E402

# Grafana unit id -> (axis label, factor applied to values)
UNIT_LABELS = {
    "reqps": ("requests / s", 1.0),
    "s": ("seconds", 1.0),
    "percentunit": ("%", 100.0),
    "currencyUSD": ("US dollars", 1.0),
    "short": ("count", 1.0),
    "bool_on_off": ("1 = up, 0 = down", 1.0),
}
DURATION = re.compile(r"^(\d+)([smhd])$")
SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = 2


class ReportError(RuntimeError):
    pass


@dataclass(frozen=True)
class Series:
    name: str
    times: list[datetime]
    values: list[float]


@dataclass(frozen=True)
class ReportResult:
    path: Path
    panels: list[str]  # one plot per panel, in dashboard order
    panels_without_data: list[str]


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration such as 90s, 30m, 1h or 2d."""
    match = DURATION.match(text)
    if not match:
        raise ReportError(f"'{text}' is not a duration such as 30m, 1h or 2d")
    return int(match.group(1)) * SECONDS_PER[match.group(2)]


def unit_label(unit: str) -> tuple[str, float]:
    if unit.startswith("suffix:"):
        return unit.removeprefix("suffix:").strip(), 1.0
    if unit not in UNIT_LABELS:
        raise ReportError(f"no axis label for Grafana unit '{unit}': add it to tenantctl/local/report.py UNIT_LABELS")
    return UNIT_LABELS[unit]


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def query_range(self, expr: str, start: float, end: float, step: int) -> list[dict]:
        try:
            response = self._http.get(
                f"{self.url}/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": step}
            )
        except httpx.HTTPError as error:
            raise ReportError(
                f"cannot reach Prometheus at {self.url}: {error} (is `tenantctl up` running? or pass --prometheus URL)"
            ) from None
        document = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or document.get("status") != "success":
            raise ReportError(f"Prometheus refused the query {expr!r}: {document.get('error', response.text[:300])}")
        return document["data"]["result"]

    def close(self) -> None:
        self._http.close()


def panel_series(
    client: PrometheusClient, panel: PanelQueries, start: float, end: float, step: int, rate_interval: str
) -> list[Series]:
    series = []
    for expr, legend_format in panel.targets:
        for result in client.query_range(for_prometheus(expr, rate_interval), start, end, step):
            points = [(datetime.fromtimestamp(float(t)), float(v)) for t, v in result["values"]]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            if points:
                series.append(
                    Series(legend(legend_format, result["metric"]), [t for t, _ in points], [v for _, v in points])
                )
    return series


def render_report(
    tenant: str,
    prometheus_url: str,
    output: Path,
    *,
    time_range: str = "1h",
    rate_interval: str = "1m",
    end: float | None = None,
) -> ReportResult:
    """Query every panel of `tenant`'s dashboard over the last `time_range` and save the PNG."""
    end = time.time() if end is None else end
    start = end - parse_duration(time_range)
    step = max(5, parse_duration(time_range) // 300)
    panels = dashboard_panels(build(tenant_dashboard(tenant)))
    client = PrometheusClient(prometheus_url)
    try:
        data = [(panel, panel_series(client, panel, start, end, step, rate_interval)) for panel in panels]
    finally:
        client.close()

    rows = math.ceil(len(data) / COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(7 * COLUMNS, 3.3 * rows), squeeze=False)
    for ax, (panel, series) in zip(axes.flat, data, strict=False):
        _draw(ax, panel, series)
    for ax in list(axes.flat)[len(data) :]:
        ax.set_visible(False)
    figure.suptitle(f"LLM tenant {tenant} — last {time_range} — {prometheus_url}", fontsize=14)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    output.parent.mkdir(parents=True, exist_ok=True)
    titles = [panel.title for panel, _ in data]
    figure.savefig(
        output, dpi=80, metadata={"Title": f"LLM tenant {tenant}", "Description": json.dumps({"panels": titles})}
    )
    plt.close(figure)
    return ReportResult(output, titles, [panel.title for panel, series in data if not series])


def _draw(ax, panel: PanelQueries, series: list[Series]) -> None:
    label, factor = unit_label(panel.unit)
    ax.set_title(panel.title, fontsize=11)
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    if not series:
        why = "cluster mode only (kube-state-metrics)" if panel.cluster_only else "no data in this time range"
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        return
    for one in series:
        ax.plot(one.times, [value * factor for value in one.values], label=one.name, linewidth=1.5)
    ax.set_ylim(bottom=0)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.legend(fontsize=8, loc="upper left")
