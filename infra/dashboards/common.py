"""Panel factories shared by every dashboard: one datasource, one look, JSON with sorted keys."""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

# The provisioned Prometheus datasource (config/grafana/provisioning/datasources/prometheus.yml).
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)
    return q.instant() if instant else q.range()


def _targets(panel, exprs: list[tuple[str, str]], instant: bool = False):
    for i, (expr, legend) in enumerate(exprs):
        panel = panel.with_target(query(expr, legend, chr(ord("A") + i), instant))
    return panel


def graph(
    title: str,
    exprs: list[tuple[str, str]],
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time series of one or more (expr, legend) pairs."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
    )
    return _targets(panel, exprs)


def single(
    title: str,
    expr: str,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    width: int = 4,
) -> stat.Panel:
    """One number, coloured by thresholds [(None, 'green'), (value, 'red'), ...]."""
    steps = [model.Threshold(value=v, color=c) for v, c in (thresholds or [(None, "green")])]
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .thresholds(db.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
    )
    return _targets(panel, [(expr, "")], instant=True)


def top_table(title: str, expr: str, unit: str = "short", description: str = "", width: int = 24) -> table.Panel:
    """An instant table of a labelled vector (for top-N lists)."""
    panel = table.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit).span(width).height(8)
    return panel.with_target(query(expr, "", "A", instant=True).format(_table_format()))


def _table_format():
    from grafana_foundation_sdk.models import prometheus as prom_model

    return prom_model.PromQueryFormat.TABLE


def row(title: str) -> db.Row:
    return db.Row(title)


def dashboard(uid: str, title: str, description: str, items: list) -> db.Dashboard:
    """A dashboard of rows and panels in order, refreshing every 30 s over the last 3 hours."""
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["agentdb"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .editable()
    )
    for item in items:
        builder = builder.with_row(item) if isinstance(item, db.Row) else builder.with_panel(item)
    return builder


def to_json(builder: db.Dashboard) -> str:
    """The dashboard as stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
