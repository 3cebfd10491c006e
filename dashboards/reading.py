"""Read the panels and their PromQL back out of Grafana dashboard JSON.

The report and the tests work from the JSON Grafana gets, not from the catalogue
that produced it, so what they check is exactly what an operator sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dashboards.panels import CLUSTER_ONLY_ROW
from dashboards.promql import RATE_INTERVAL


@dataclass(frozen=True)
class PanelQueries:
    title: str
    unit: str
    row: str
    targets: tuple[tuple[str, str], ...]  # (expr, legend format)

    @property
    def cluster_only(self) -> bool:
        """Needs kube-state-metrics, which exists only on a cluster."""
        return self.row == CLUSTER_ONLY_ROW


def dashboard_panels(dashboard: dict) -> list[PanelQueries]:
    """Every panel with queries, in order, including those inside collapsed rows."""
    return [
        PanelQueries(
            title=panel["title"],
            unit=panel["fieldConfig"]["defaults"].get("unit", ""),
            row=row,
            targets=tuple((target["expr"], target.get("legendFormat", "")) for target in panel["targets"]),
        )
        for row, panel in _walk(dashboard["panels"])
    ]


def _walk(panels: list[dict], row: str = "") -> Iterator[tuple[str, dict]]:
    for panel in panels:
        if panel["type"] == "row":
            row = panel["title"]
            yield from _walk(panel.get("panels", []), row)
        elif panel.get("targets"):
            yield row, panel


def for_prometheus(expr: str, rate_interval: str) -> str:
    """A panel query as Prometheus itself takes it: Grafana's `$__rate_interval` made concrete."""
    return expr.replace(RATE_INTERVAL, rate_interval)


def legend(legend_format: str, labels: dict[str, str]) -> str:
    """Grafana's legend: `{{label}}` replaced by the series' label value (absent labels: empty)."""
    text = legend_format
    while "{{" in text and "}}" in text:
        start = text.index("{{")
        end = text.index("}}", start)
        text = text[:start] + labels.get(text[start + 2 : end].strip(), "") + text[end + 2 :]
    return text.strip() or "value"
