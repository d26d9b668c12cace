"""`b2p report --html FILE`: the capacity report as one self-contained HTML file with charts.

The same questions as the Superset dashboard (bi/), read from the same marts: capacity,
monetized and unsold hours per day by slot type; sell-through by site with its site sections;
the series with the most unsold hours; preroll, midroll and overlay by hour of day; delivery
health. Charts are plotly's, with plotly.js inlined once: the file opens with no network and no
server. Nothing here recomputes a metric: hours are the marts' seconds / 3600, sell-through is
sum(monetized) / sum(capacity) as the marts define it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ingest.errors import UserError

# plotly's categorical palette, fixed per slot type so every chart colours a type the same way
SLOT_TYPE_COLOURS = {
    "preroll": "#636efa",
    "midroll": "#ef553b",
    "overlay": "#00cc96",
    "postroll": "#ab63fa",
    "display": "#ffa15a",
    "other": "#19d3f3",
}
TOP_SERIES = 15


@dataclass(frozen=True)
class ReportScope:
    """Which days (inclusive, None = unbounded) and which site (name or id, None = all)."""

    first_day: dt.date | None = None
    last_day: dt.date | None = None
    site: str | None = None

    def where(self, with_site: bool) -> tuple[str, list[object]]:
        """A where clause on event_date (and site, when the relation has one) with parameters."""
        clauses, parameters = ["1 = 1"], []
        if self.first_day is not None:
            clauses.append("event_date >= ?")
            parameters.append(self.first_day)
        if self.last_day is not None:
            clauses.append("event_date <= ?")
            parameters.append(self.last_day)
        if with_site and self.site is not None:
            clauses.append("(site_name = ? or cast(site_id as varchar) = ?)")
            parameters.extend([self.site, self.site])
        return " and ".join(clauses), parameters

    def describe(self) -> str:
        days = f"{self.first_day or 'first day'} .. {self.last_day or 'last day'}"
        return f"{days}, {'site ' + self.site if self.site else 'all sites'}"


Rows = list[tuple[Any, ...]]


def query(connection: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[object]) -> Rows:
    return connection.execute(sql, list(parameters)).fetchall()


def load_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UserError(
            "b2p report --html needs plotly: pip install 'bones2peaches[report]' "
            "(make install does)"
        ) from None
    return go


# ---- the figures


def daily_figure(go: Any, rows: Rows) -> Any:
    """Monetized and unsold hours per day, stacked, one panel per slot type (their sum is the
    capacity)."""
    from plotly.subplots import make_subplots

    slot_types = sorted(
        {row[1] for row in rows}, key=lambda t: -sum(r[2] for r in rows if r[1] == t)
    )
    figure = make_subplots(rows=1, cols=max(1, len(slot_types)), subplot_titles=slot_types)
    for column, slot_type in enumerate(slot_types, start=1):
        days = [row for row in rows if row[1] == slot_type]
        x = [str(row[0]) for row in days]
        for label, index, opacity in (("monetized h", 3, 1.0), ("unsold h", 4, 0.45)):
            figure.add_trace(
                go.Bar(
                    x=x,
                    y=[row[index] for row in days],
                    name=f"{slot_type} {label}",
                    marker={"color": SLOT_TYPE_COLOURS.get(slot_type, "#888"), "opacity": opacity},
                    hovertemplate="%{x}<br>%{y:,.1f} h<extra>" + f"{slot_type} {label}</extra>",
                ),
                row=1,
                col=column,
            )
    figure.update_layout(barmode="stack", showlegend=False, height=360)
    figure.update_xaxes(type="category")  # days, not a time axis: no 00:00:00 ticks
    return figure


def site_figure(go: Any, rows: Rows) -> Any:
    """Sell-through by site, drilling down into its sections (click a site): a sunburst whose
    size is capacity hours and colour sell-through."""
    ids, labels, parents, values, colours, texts = [], [], [], [], [], []
    sites: dict[str, list[float]] = {}
    for site, section, capacity, monetized in rows:
        totals = sites.setdefault(site, [0.0, 0.0])
        totals[0] += capacity
        totals[1] += monetized
        ids.append(f"{site}/{section}")
        labels.append(section)
        parents.append(site)
        values.append(capacity)
        colours.append(monetized / capacity if capacity else 0.0)
    for site, (capacity, monetized) in sites.items():
        ids.append(site)
        labels.append(site)
        parents.append("")
        values.append(capacity)
        colours.append(monetized / capacity if capacity else 0.0)
    texts = [f"{c:.1%}" for c in colours]
    figure = go.Figure(
        go.Sunburst(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="total",
            text=texts,
            textinfo="label+text",
            marker={"colors": colours, "colorscale": "RdYlGn", "cmin": 0, "cmax": 1},
            hovertemplate=(
                "%{label}<br>%{value:,.1f} capacity h<br>sell-through %{text}<extra></extra>"
            ),
        )
    )
    figure.update_layout(height=520)
    return figure


def site_bar_figure(go: Any, rows: Rows) -> Any:
    figure = go.Figure(
        go.Bar(
            x=[row[1] for row in rows],
            y=[row[0] for row in rows],
            orientation="h",
            text=[f"{row[1]:.1%}" for row in rows],
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=160 + 40 * len(rows),
        xaxis={"tickformat": ".0%", "range": [0, 1]},
        yaxis={"autorange": "reversed"},
        margin={"l": 240},
    )
    return figure


def series_figure(go: Any, rows: Rows) -> Any:
    figure = go.Figure(
        go.Bar(
            x=[row[1] for row in rows],
            y=[row[0] for row in rows],
            orientation="h",
            hovertemplate="%{y}: %{x:,.1f} unsold h<extra></extra>",
        )
    )
    figure.update_layout(
        height=160 + 28 * len(rows), yaxis={"autorange": "reversed"}, margin={"l": 240}
    )
    return figure


def hour_of_day_figure(go: Any, rows: Rows) -> Any:
    figure = go.Figure()
    for slot_type in ("preroll", "midroll", "overlay"):
        hours = [row for row in rows if row[0] == slot_type]
        figure.add_trace(
            go.Scatter(
                x=[row[1] for row in hours],
                y=[row[2] for row in hours],
                mode="lines+markers",
                name=slot_type,
                line={"color": SLOT_TYPE_COLOURS[slot_type]},
                hovertemplate="%{x}:00 UTC<br>%{y:,.2f} capacity h<extra>" + slot_type + "</extra>",
            )
        )
    figure.update_layout(
        height=360, xaxis={"title": "hour of day (UTC)", "dtick": 2}, yaxis={"title": "capacity h"}
    )
    return figure


def health_figure(go: Any, rows: Rows) -> Any:
    """Rows delivered per hour (a day per row, an hour per column); gaps in red below."""
    days = sorted({row[1] for row in rows})
    grid = [[None] * 24 for _ in days]
    for _network, day, hour, events, _status in rows:
        grid[days.index(day)][hour] = events
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(range(24)),
            y=[str(day) for day in days],
            colorscale="Blues",
            hovertemplate="%{y} %{x}:00 UTC<br>%{z:,} rows<extra></extra>",
        )
    )
    gaps = [row for row in rows if row[4] != "ok"]
    if gaps:
        figure.add_trace(
            go.Scatter(
                x=[row[2] for row in gaps],
                y=[str(row[1]) for row in gaps],
                mode="markers",
                marker={"symbol": "x", "size": 14, "color": "#d62728"},
                text=[row[4] for row in gaps],
                hovertemplate="%{y} %{x}:00 UTC: %{text}<extra></extra>",
                name="gap",
            )
        )
    figure.update_layout(
        height=160 + 26 * len(days),
        xaxis={"title": "hour of day (UTC)", "dtick": 1},
        yaxis={"type": "category", "autorange": "reversed"},
    )
    return figure


# ---- the page


def table_html(table_id: str, headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; margin-top: 2.5rem; }}
table {{ border-collapse: collapse; margin: .5rem 0; }}
th, td {{ padding: .25rem .75rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.note {{ color: #666; font-size: .9rem; }}
</style>
<script>{plotly_js}</script>
</head><body>
<h1>{title}</h1>
<p class="note">{scope}. Generated {generated} from {warehouse}. Hours of ad time (seconds / 3600);
sell-through = monetized / capacity. Definitions: models/docs.md.</p>
{sections}
</body></html>
"""


def section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f"<section><h2>{html.escape(title)}</h2>{note_html}{body}</section>"


def chart(figure: Any, chart_id: str) -> str:
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=chart_id,
        config={"displaylogo": False, "responsive": True},
    )


# The marts the report reads (models/exposures.yml lists the same: tests/bi/test_exposures.py)
HOURLY_MARTS = {
    slot_type: f"capacity_{slot_type}" for slot_type in ("preroll", "midroll", "overlay")
}
MART_NAMES = (
    "capacity_by_site",
    "capacity_by_site_section",
    "capacity_by_series",
    *HOURLY_MARTS.values(),
    "dq_freewheel__delivery_health",
)


@dataclass(frozen=True)
class Marts:
    """Relation names ("schema"."table") of the marts the report reads."""

    by_site: str
    by_site_section: str
    by_series: str
    hourly: dict[str, str]
    delivery_health: str


def daily_rows(connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope) -> Rows:
    where, parameters = scope.where(with_site=True)
    return query(
        connection,
        f"""select event_date, slot_type, sum(capacity_seconds) / 3600.0,
                   sum(monetized_seconds) / 3600.0, sum(unsold_seconds) / 3600.0
            from {marts.by_site} where {where} group by 1, 2 order by 1, 2""",
        parameters,
    )


def site_rows(connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope) -> Rows:
    where, parameters = scope.where(with_site=True)
    return query(
        connection,
        f"""select site_name, sum(monetized_seconds) / nullif(sum(capacity_seconds), 0)
            from {marts.by_site} where {where} group by 1
            having sum(capacity_seconds) > 0 order by 2 desc, 1""",
        parameters,
    )


def section_rows(connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope) -> Rows:
    where, parameters = scope.where(with_site=True)
    return query(
        connection,
        f"""select site_name, site_section_name, sum(capacity_seconds) / 3600.0,
                   sum(monetized_seconds) / 3600.0
            from {marts.by_site_section} where {where} group by 1, 2
            having sum(capacity_seconds) > 0 order by 1, 2""",
        parameters,
    )


def series_rows(connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope) -> Rows:
    where, parameters = scope.where(with_site=False)
    return query(
        connection,
        f"""select series_name, sum(unsold_seconds) / 3600.0
            from {marts.by_series} where {where} group by 1 order by 2 desc, 1
            limit {TOP_SERIES}""",
        parameters,
    )


def hour_of_day_rows(
    connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope
) -> Rows:
    where, parameters = scope.where(with_site=False)
    union = " union all ".join(
        f"select '{slot_type}' as slot_type, event_hour, capacity_seconds, monetized_seconds "
        f"from {relation} where {where}"
        for slot_type, relation in marts.hourly.items()
    )
    return query(
        connection,
        f"""select slot_type, event_hour, sum(capacity_seconds) / 3600.0,
                   sum(monetized_seconds) / nullif(sum(capacity_seconds), 0)
            from ({union}) group by 1, 2 order by 1, 2""",
        parameters * len(marts.hourly),
    )


def health_rows(connection: duckdb.DuckDBPyConnection, marts: Marts, scope: ReportScope) -> Rows:
    where, parameters = scope.where(with_site=False)
    return query(
        connection,
        f"""select network_id, event_date, event_hour, events, delivery_status
            from {marts.delivery_health} where {where} order by 2, 3, 1""",
        parameters,
    )


def render(
    connection: duckdb.DuckDBPyConnection,
    marts: Marts,
    scope: ReportScope,
    summary: tuple[list[str], list[list[str]]],
    warehouse: Path,
) -> str:
    go = load_plotly()
    from plotly.offline import get_plotlyjs

    daily = daily_rows(connection, marts, scope)
    if not daily:
        raise UserError(f"no capacity rows for {scope.describe()}: widen --from/--to or --site")
    sites, sections = site_rows(connection, marts, scope), section_rows(connection, marts, scope)
    series, hourly = (
        series_rows(connection, marts, scope),
        hour_of_day_rows(connection, marts, scope),
    )
    health = health_rows(connection, marts, scope)
    gaps = [row for row in health if row[4] != "ok"]
    no_site = "Not filtered by site: this mart has no site column." if scope.site else ""
    headers, rows = summary
    sections_html = [
        section("Summary by slot type", table_html("summary", headers, rows)),
        section(
            "Capacity, monetized and unsold hours per day by slot type",
            chart(daily_figure(go, daily), "chart-daily"),
            "Each bar is a day's capacity: monetized (solid) plus unsold (light).",
        ),
        section("Sell-through by site", chart(site_bar_figure(go, sites), "chart-sites")),
        section(
            "Sell-through by site and site section",
            chart(site_figure(go, sections), "chart-site-sections"),
            "Click a site to drill down into its sections; size = capacity hours, "
            "colour = sell-through.",
        ),
        section(
            f"Series with the most unsold hours (top {TOP_SERIES})",
            chart(series_figure(go, series), "chart-series"),
            no_site,
        ),
        section(
            "Preroll, midroll and overlay capacity by hour of day",
            chart(hour_of_day_figure(go, hourly), "chart-hour-of-day"),
            no_site,
        ),
        section(
            "Delivery health",
            chart(health_figure(go, health), "chart-delivery-health")
            + (
                table_html(
                    "delivery-gaps",
                    ["network", "date", "hour (UTC)", "rows", "status"],
                    [[str(r[0]), str(r[1]), str(r[2]), f"{r[3]:,}", r[4]] for r in gaps],
                )
                if gaps
                else '<p id="delivery-gaps">No missing or low-volume hour.</p>'
            ),
            f"{len(gaps)} hour(s) missing or far below their usual volume "
            "(dq_freewheel__delivery_health; DECISIONLOG.md). " + no_site,
        ),
    ]
    shown = ReportScope(scope.first_day or daily[0][0], scope.last_day or daily[-1][0], scope.site)
    return PAGE.format(
        title="Ad capacity report",
        scope=html.escape(shown.describe()),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        warehouse=html.escape(str(warehouse.resolve())),
        plotly_js=get_plotlyjs(),
        sections="\n".join(sections_html),
    )


def write(path: Path, content: str) -> None:
    """Written whole or not at all: a temporary file renamed over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(content, encoding="utf-8")
    partial.replace(path)
