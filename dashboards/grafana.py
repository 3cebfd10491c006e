"""Grafana dashboard JSON from the panel catalogue, built with grafana-foundation-sdk.

Panels read from a `datasource` variable (any Prometheus datasource, the default one
first), written `$datasource` rather than `${datasource}` so the JSON holds no `${`
that a Terraform template could take for its own.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DashboardLinkType, DataSourceRef

from dashboards import panels as catalogue

DATASOURCE = DataSourceRef(type_val="prometheus", uid="$datasource")
PANEL_HEIGHT, PANEL_WIDTH = 8, 12  # two panels side by side on Grafana's 24-column grid
REFRESH, TIME_RANGE = "30s", ("now-3h", "now")


def build(dashboard: catalogue.Dashboard) -> dict:
    """The Grafana JSON model of `dashboard`, as plain JSON-ready data."""
    builder = (
        grafana.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(list(dashboard.tags))
        .refresh(REFRESH)
        .time(*TIME_RANGE)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(grafana.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .link(
            grafana.DashboardLink("LLM dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["llm-tenants"])
            .as_dropdown(True)
            .keep_time(True)
        )
    )
    panel_id = 0
    for row in dashboard.rows:
        panel_id += 1
        row_builder = grafana.Row(row.title).id(panel_id).collapsed(row.cluster_only)
        panel_builders = []
        for panel in row.panels:
            panel_id += 1
            panel_builders.append(_panel(panel, panel_id))
        if row.cluster_only:  # collapsed rows carry their panels inside them
            for panel_builder in panel_builders:
                row_builder.with_panel(panel_builder)
            builder.with_row(row_builder)
        else:
            builder.with_row(row_builder)
            for panel_builder in panel_builders:
                builder.with_panel(panel_builder)
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def _panel(panel: catalogue.Panel, panel_id: int):
    if panel.kind == "stat":
        builder = (
            stat.Panel()
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
            .graph_mode(common.BigValueGraphMode.AREA)
        )
    else:
        builder = (
            timeseries.Panel()
            .legend(
                common_builders.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
            .fill_opacity(10)
        )
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .height(PANEL_HEIGHT)
        .span(PANEL_WIDTH)
        .min(0)
    )
    for index, target in enumerate(panel.targets):
        builder.with_target(
            prometheus.Dataquery()
            .expr(target.expr)
            .legend_format(target.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
    return builder


def render(dashboard: catalogue.Dashboard) -> str:
    """Stable JSON text for the committed files (sorted keys, two-space indent)."""
    return json.dumps(build(dashboard), indent=2, sort_keys=True) + "\n"
