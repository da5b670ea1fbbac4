"""Building blocks of the pages: header, breadcrumb, filter and layer panels, KPI cards,
lists and the case timeline. Functions from data to components; no queries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from dash import dcc, html, no_update

from dashboard import glossary, ids, workers
from dashboard.messages import t, user_message
from dashboard.state import (
    CASE_ORDERS,
    MAP_LAYERS,
    METRICS,
    ViewState,
    range_value,
    with_filters,
    with_scope,
)
from layers.comparison import FLOWS
from layers.filters import RANGES, STATUS_FILTERS, Period
from layers.report import period_of
from layers.times import age, shown
from layers.view import View
from onemap.database import waited_for_a_load

EXPORT_FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx", "html")
STAGES = ("reported_at", "accepted_at", "dispatched_at", "handled_at", "feedback_at",
          "closed_at", "evaluated_at")
CASE_ROWS = 20
HOTSPOT_ROWS = 30
# Plotly's modebar offers to upload a chart to its cloud ("Share chart…", on by default in
# this plotly.js, and the older Chart Studio links): a figure holds the district's data and
# must not leave the machine, so every graph is configured through ``graph_config``.
CLOUD_BUTTONS = ("sendChartToCloud", "sendDataToCloud", "editInChartStudio")


def graph_config(**options) -> dict:
    """A dcc.Graph ``config`` with ``options`` and no control that sends data elsewhere."""
    return {**options, "showSendToCloud": False, "showEditInChartStudio": False,
            "showLink": False, "plotlyServerURL": "",
            "modeBarButtonsToRemove": [*options.get("modeBarButtonsToRemove", ()),
                                       *CLOUD_BUTTONS]}


def only(outputs: dict, **changes) -> dict:
    """A callback's named ``outputs`` with ``changes`` and every other one left as it is."""
    return {**dict.fromkeys(outputs, no_update), **changes}


# The desk's pages, linked from the header: path -> label key.
PAGES = {"/": "page.desk", "/workbench": "page.workbench"}


def header(state: ViewState, page: str = "/", who: str | None = None,
           crumbs: list | None = None, query: str | None = None) -> html.Header:
    """Title, the pages (the same view on each), breadcrumb (``crumbs``, else filled by the
    page's callback), data time, who is signed in (with sign-out) and the language
    (``query``: the page's own URL query, default the view's)."""
    other = "en" if state.lang == "zh" else "zh"
    switch = page + (query or replace(state, lang=other).query())
    user = [html.Span([who, html.A(t("logout", state.lang), href="/logout", id="logout")],
                      className="who")] if who else []
    pages = [html.Span(t(key, state.lang), className="here") if path == page else
             dcc.Link(t(key, state.lang), href=path + state.query(), id=f"go-{key[5:]}")
             for path, key in PAGES.items()]
    return html.Header([
        html.H1(t("app.title", state.lang)),
        html.Span(t("app.subtitle", state.lang), className="sub"),
        html.Nav(pages, className="pages"),
        html.Nav(crumbs, id=ids.BREADCRUMB, className="breadcrumb"),
        html.Span(id=ids.ASOF, className="asof"),
        *user,
        html.A(t("lang.switch", state.lang), href=switch, className="lang", id="lang-switch"),
    ], id=ids.HEADER)


def breadcrumb(crumbs: list[dict], state: ViewState, page: str = "/") -> list:
    """坪山区 › 龙田街道 › 南布社区 › …: every ancestor is a link back up (on ``page``)."""
    parts: list = []
    for i, crumb in enumerate(crumbs):
        if i:
            parts.append(html.Span(" › ", className="sep"))
        last = i == len(crumbs) - 1
        target = with_scope(state, crumb["code"] if crumb["level"] > 1 else None)
        parts.append(html.Span(crumb["name"], className="here") if last else
                     dcc.Link(crumb["name"], href=page + target.query(), className="crumb"))
    return parts


def filter_panel(state: ViewState, categories: list[str], channels: list[str]) -> html.Div:
    """Time, category tree, channel, status, layers, metric and exports, set from the URL."""
    lang = state.lang
    chosen = state.filters
    chosen_subcategories = [c for c in chosen.categories if c not in categories]
    return html.Div([
        html.Label(t("filter.range", lang)),
        dcc.RadioItems(id=ids.RANGE, value=range_value(state), className="ranges",
                       options=range_options(state)),
        html.Label(t("filter.category", lang)),
        dcc.Dropdown(id=ids.CATEGORY, value=[c for c in chosen.categories if c in categories],
                     multi=True, options=categories, placeholder=t("filter.any", lang)),
        html.Label(t("filter.subcategory", lang)),
        # The link's subcategories are options from the start: a dropdown drops a value it
        # has no option for, which would rewrite the URL without it before the callback
        # filling the options has answered.
        dcc.Dropdown(id=ids.SUBCATEGORY, multi=True, placeholder=t("filter.any", lang),
                     value=chosen_subcategories, options=chosen_subcategories),
        html.Label(t("filter.channel", lang)),
        dcc.Dropdown(id=ids.CHANNEL, value=list(chosen.channels), multi=True, options=channels,
                     placeholder=t("filter.any", lang)),
        html.Label(t("filter.status", lang)),
        dcc.Checklist(id=ids.STATUS, value=list(chosen.statuses), className="checks",
                      options=[{"label": t(f"status.{s}", lang), "value": s}
                               for s in STATUS_FILTERS]),
        html.Label(t("layers.title", lang)),
        dcc.Checklist(id=ids.LAYER_TOGGLES, value=list(state.layers), className="checks",
                      options=[{"label": t(f"layer.{name}", lang), "value": name}
                               for name in MAP_LAYERS]),
        html.Label(t("metric.title", lang)),
        dcc.Dropdown(id=ids.METRIC, value=state.metric, clearable=False,
                     options=[{"label": t(f"metric.{m}", lang), "value": m} for m in METRICS]),
        html.Label(t("export.title", lang)),
        html.Div(id=ids.EXPORT, className="exports"),
        html.Small(t("export.png", lang), className="hint"),
    ], className="panel")


def range_options(state: ViewState) -> list[dict]:
    """The named ranges, and the link's own period when it names one (自定义 2025-11-21 至
    2026-11-20): the control shows the period the view uses, and offers it back after
    another range was chosen."""
    lang = state.lang
    options = [{"label": t(f"range.{r}", lang), "value": r} for r in RANGES]
    period = state.filters.period
    if period.range is None and (period.start or period.end):
        days = f"{period.start or '…'}{t('period.to', lang)}{period.end or '…'}"
        options.append({"label": f"{t('range.custom', lang)} {days}",
                        "value": range_value(state)})
    return options


def export_links(state: ViewState, allowed: bool = True) -> list:
    """Links to the read API's exports of exactly this view (cases layer); none for those
    who may not export (kiosks). Each opens in a tab of its own: the file downloads and
    the tab closes, and a refused export (429 while others are written) shows its page
    there, the map untouched."""
    if not allowed:
        return []
    query = urlencode(state.params())
    return [html.A(fmt.upper(), href=f"/export/cases.{fmt}?{query}", className="export",
                   id=f"export-{fmt}", target="_blank", rel="noopener")
            for fmt in EXPORT_FORMATS]


def report_links(scope: dict, period: dict, lang: str, allowed: bool = True) -> list:
    """报告 PDF · HTML: the report of the view's ``scope`` and ``period`` (``/report.pdf``,
    its period as ``onemap report`` takes it), opened in a tab of their own as the exports
    are; for an open range or part days, why there is none; nothing for those who may not
    take files away (kiosks)."""
    if not allowed:
        return []
    days = period_of(period)
    if days is None:
        return [html.Span(t("report.download.open", lang), className="hint")]
    query = urlencode({k: v for k, v in (("scope", scope["code"]), ("period", days.code),
                                         ("lang", lang if lang != "zh" else None)) if v})
    return [html.Span(t("report.download", lang), className="label",
                      title=t("report.download.title", lang).format(period=days.code)),
            *[html.A(fmt.upper(), href=f"/report.{fmt}?{query}", className="export",
                     id=f"report-{fmt}", target="_blank", rel="noopener")
              for fmt in ("pdf", "html")]]


def kpi_cards(data: View, lang: str, range_: str | None = None) -> list:
    """Two groups of cards: the backlog and the devices now, then the flows of the period
    (``range_``: the chosen range's name, else custom dates), each flow with its 环比 and
    同比 arrows. Every card's tooltip (its ``title``) says what it counts and over which
    period (``dashboard.glossary``), and what it is compared with."""
    cases, iot = data.cases, data.iot
    soon = data.backlog["soon_hours"]
    period = period_words(data.period, range_, lang)
    now = [
        ("open", f"{cases['open']:,}", ""),
        ("overdue", f"{cases['overdue']:,}", "alert" if cases["overdue"] else ""),
        ("due_soon", f"{cases['due_soon']:,}", "warn" if cases["due_soon"] else ""),
        ("iot_online", pct(iot["online_rate"]), ""),
        ("alarms", f"{iot['alarm']:,}", "alert" if iot["alarm"] else ""),
    ]

    def card(key: str, value: str, extra: str, flow: bool = False) -> html.Div:
        title = glossary.tooltip(key, lang, soon, period)
        parts = [html.Div(value, className="value", id=f"kpi-{key}"),
                 html.Div(t(f"kpi.{key}", lang), className="label")]
        if key == "alarms" and iot["alarm"]:  # how many nobody has acknowledged yet
            parts.append(html.Div(t("kpi.alarms_open", lang).format(n=f"{data.alarms_open:,}"),
                                  className="sub", id="kpi-alarms-open"))
        if flow:
            title = "\n".join([title, glossary.comparing(lang),
                               *compare_lines(data.compare, key, cases[key], lang)])
            parts += deltas(data.compare, key, cases[key], lang)
        return html.Div(parts, className=f"card {extra}", id=f"card-{key}", title=title)

    return [html.Div(t("kpi.group.now", lang), className="card-group", id="kpi-group-now"),
            *[card(*c) for c in now], stage_list(data.backlog["stages"], lang, soon),
            html.Div(t("kpi.group.period", lang).format(period=period), className="card-group",
                     id="kpi-group-period"),
            *[card(key, figure_text(key, cases[key], lang, cases.get("median_approx")), "",
                   flow=True) for key in FLOWS], *_above_grid(cases, lang)]


def figure_text(key: str, value, lang: str, approx: bool = False) -> str:
    """A flow as its card shows it: a count, a rate in %, hours, or the mean score."""
    if key in ("total", "closed"):
        return f"{value:,}"
    if key == "median_hours":
        return _hours(value, lang, approx)
    if key == "satisfaction":
        return "—" if value is None else f"{value:.2f}"
    return pct(value)


def deltas(compare: dict, key: str, now, lang: str) -> list:
    """The card's 环比 and 同比 arrows (▲ up, ▼ down; green better, red worse, grey
    neither): none for a period without comparisons (the tooltip says why), "no data" for
    one the data does not reach (``now``: the figure of the view's period)."""
    chips = []
    for kind, found in compare.items():
        if found["reason"] in ("open", "not_days"):
            continue
        words, verdict = change_words(found, kind, key, now, lang)
        chips.append(html.Span([html.Span(t(f"compare.{kind}", lang), className="kind"),
                                html.Span(words, className="by")],
                               id=f"delta-{kind}-{key}",
                               className=f"delta {verdict or 'neutral'}"))
    return [html.Div(chips, className="deltas")] if chips else []


def change_words(found: dict, kind: str, key: str, now,
                 lang: str) -> tuple[str, str | None]:
    """A figure's change from the compared period to ``now`` as read (▲12.3%, ▼1.5个百分点,
    持平, 上期为 0, 无可比, 无同期数据) and its verdict ("better", "worse" or None)."""
    if found["reason"]:
        return t(f"compare.before_data.{kind}", lang), None
    change = found["changes"][key]
    by = change["by"]
    if by is None:
        # From a count or a time of 0 (no percentage of it); a rate or a mean with
        # nothing to divide by on either side has no change at all.
        zero = change["unit"] == "percent" and now is not None and found["figures"][key] == 0
        return t(f"compare.zero.{kind}" if zero else "compare.nothing", lang), None
    digits = 2 if change["unit"] == "score" else 1
    if round(abs(by), digits) == 0:  # no change at the shown precision: 持平, not ▼0.0
        return t("compare.same", lang), None
    amount = t(f"compare.{change['unit']}", lang).format(v=f"{abs(by):.{digits}f}")
    return ("▲" if by > 0 else "▼") + amount, change["verdict"]


def compare_lines(compare: dict, key: str, now, lang: str) -> list[str]:
    """The tooltip's lines on the comparisons: each compared period with the figure there
    and the change, or why there is none."""
    lines = []
    for kind, found in compare.items():
        name = t(f"compare.{kind}", lang)
        if found["figures"] is not None:
            days = found["period"]
            when = f"{days['start'][:10]}{t('period.to', lang)}{days['last']}"
            lines.append(t("compare.line", lang).format(
                kind=name, period=when, was=figure_text(key, found["figures"][key], lang),
                change=change_words(found, kind, key, now, lang)[0]))
            continue
        why = t(f"compare.why.{found['reason']}", lang)
        if found["reason"] == "before_data":
            days = found["period"]
            why = why.format(period=f"{days['start'][:10]}{t('period.to', lang)}{days['last']}",
                             first=found["data_from"] or "—")
        lines.append(t("compare.none", lang).format(kind=name, why=why))
    return lines


def stage_list(stages: dict[str, int], lang: str, soon_hours: float) -> html.Div:
    """The open cases by the stage they wait at (受理 分拨 处置 反馈 评价), now."""
    items = [html.Li([html.Span(t(f"stage.{stage}", lang), className="stage"),
                      html.Span(f"{n:,}", className="n")], id=f"backlog-stage-{stage}")
             for stage, n in stages.items()]
    return html.Div([html.Div(t("kpi.stages", lang), className="label"),
                     html.Ul(items, className="stages")], className="card stages-card",
                    id="card-stages",
                    title=glossary.tooltip("stages", lang, soon_hours, ""))


def period_words(period: dict, range_: str | None, lang: str) -> str:
    """The flows' period as read: the range's name and its local days (近7天 11-27 至 12-03);
    an open side reads as the range's name alone."""
    name = t(f"range.{range_}", lang) if range_ else t("range.custom", lang)
    if not period.get("start") or not period.get("end"):
        return name
    first = date.fromisoformat(period["start"][:10])
    last = datetime.fromisoformat(period["end"])
    last = (last - timedelta(days=1) if last.time() == time(0) else last).date()
    fmt = "%m-%d" if first.year == last.year else "%Y-%m-%d"
    days = (first.strftime(fmt) if first == last else
            f"{first.strftime(fmt)}{t('period.to', lang)}{last.strftime(fmt)}")
    return f"{name} {days}"


def due_text(due: dict | None, lang: str) -> str:
    """超期 3天4小时 / 剩 5小时 for a case's ``due`` mark; empty without one."""
    if not due:
        return ""
    return t(f"due.{due['due']}", lang).format(span=span_words(due["hours"], lang))


def span_words(hours: float, lang: str) -> str:
    """A duration in days and hours, hours, or minutes under an hour (rounded down)."""
    minutes = int(hours * 60)
    if minutes < 60:
        return t("span.minutes", lang).format(m=minutes)
    if minutes < 24 * 60:
        return t("span.hours", lang).format(h=minutes // 60)
    return t("span.days", lang).format(d=minutes // 1440, h=minutes % 1440 // 60)


def _above_grid(cases: dict, lang: str) -> list:
    """A line under the cards when some of the view's cases are placed above the grids (no
    coordinates, only a community, street or district): grid figures do not count them."""
    n = cases.get("above_grid") or 0
    if not n:
        return []
    return [html.P(t("kpi.above_grid", lang).format(n=f"{n:,}"), id="kpi-above-grid",
                   className="hint")]


def pct(value) -> str:
    """A rate (0–1) as the pages write it: 93.4%; — for none."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _hours(value, lang: str, approx: bool = False) -> str:
    """Hours with one decimal; ``approx`` (from hourly buckets only) marks it with ≈."""
    if value is None:
        return "—"
    return f"{'≈ ' if approx else ''}{value:.1f} {t('unit.hours', lang)}"


def case_rows(latest: list[dict], lang: str, zone: str) -> html.Table:
    """The view's cases (newest, or the backlog most overdue first); a click on a row opens
    its lifecycle. An overdue or due-soon case says so, with how long over or left. Every
    component costs the browser time on each view (the page's components are all
    re-checked per update), so a row is one clickable component around its cells and the
    table shows the first ``CASE_ROWS`` (the export has them all)."""
    head = html.Tr([html.Th(t(f"col.{c}", lang)) for c in ("id", "reported_at", "category",
                                                          "status", "due")])
    body = [html.Tr([html.Td(r["id"], className="case-link"),
                     html.Td(shown(r["reported_at"], zone), className="reported"),
                     html.Td(f"{r['category_1']} / {r['category_2'] or ''}"),
                     html.Td(status_words(r, lang), className="status"),
                     html.Td(due_text(r["due"], lang), className="due")],
                    id={"type": "case", "id": r["id"]}, n_clicks=0,
                    className=f"case-row {r['due']['due'] if r['due'] else ''}")
            for r in latest[:CASE_ROWS]]
    return html.Table([html.Thead(head), html.Tbody(body)], className="table")


def status_words(case: dict, lang: str) -> str:
    """在办, 已办结, or 超期未办结 / 即将超期 for an open case so marked."""
    if case.get("due"):
        return t(f"kpi.{case['due']['due']}", lang)
    return t(f"status.{case['status']}", lang)


def case_order(state: ViewState) -> dcc.RadioItems:
    """The case table's order: newest of the range, or the backlog most overdue first."""
    return dcc.RadioItems(id=ids.CASE_ORDER, value=state.cases, className="ranges",
                          options=[{"label": t(f"cases.order.{o}", state.lang), "value": o}
                                   for o in CASE_ORDERS])


def hotspot_rows(hotspots: dict | None, state: ViewState) -> html.Div:
    """The view's hot grids by name (e.g. 六和社区第12网格), hottest first; a click on one
    opens its grid (those of the hotspot layer: none read while it is off, which the list
    says rather than "none"). The note under them says how they were judged."""
    lang = state.lang
    if hotspots is None:
        return html.P(t("list.hotspots_off", lang), id="hotspot-count", className="list-note")
    hot = [f["properties"] for f in hotspots["features"] if f["properties"]["hot"]]
    rows = hot[:HOTSPOT_ROWS]
    head = html.Tr([html.Th(t(f"col.{c}", lang)) for c in ("where", "cases", "trend")] +
                   [html.Th("z")])
    body = [html.Tr([html.Td(dcc.Link(r.get("name") or r["id"],
                                      href="/" + with_scope(state, r["id"]).query()),
                             className="hotspot-name"),
                     html.Td(r["n"]),
                     html.Td(t(f"trend.{r['trend']}", lang) if r["trend"] else ""),
                     html.Td(f"{r['z']:.2f}")]) for r in rows]
    note = t("hotspots.note", lang).format(alpha=f"{hotspots.get('alpha', 0):.0%}")
    return html.Div([list_note(len(rows), len(hot), lang, "hotspot"),
                     html.Table([html.Thead(head), html.Tbody(body)], className="table"),
                     html.P(note, className="note")])


def list_note(shown: int, total: int, lang: str, name: str) -> html.P:
    """How many rows a list shows of how many there are: 共 M, or 显示 N / 共 M when it
    shows fewer (``name``: the note's id, ``<name>-count``)."""
    text = (t("list.all", lang).format(total=total) if shown >= total else
            t("list.shown", lang).format(shown=shown, total=total))
    return html.P(text, id=f"{name}-count", className="list-note" + (
        " cut" if shown < total else ""))


def alarm_rows(alarms: list[dict], total: int, lang: str, zone: str,
               selected: str | None = None, now: datetime | None = None) -> html.Div:
    """Devices in alarm, newest alarm first: what, where, since when (local time), for
    how long, when the device last reported (an alarm stays an alarm when its device
    falls silent: the last report's age tells how current it is) and what was done about
    it (未确认, 已确认 by whom and when, 已转工单 with the case, a click opening it); a click
    on a row shows the device on the map and its alarm's actions."""
    now = now or datetime.now(UTC)
    head = html.Tr([html.Th(t(f"col.{c}", lang)) for c in ("device", "where", "alarm_since",
                                                          "duration", "last_seen",
                                                          "handled")])
    body = []
    for alarm in alarms:
        a = alarm["properties"]
        since = a["alarm_since"]
        body.append(html.Tr(
            [html.Td(f"{a['kind']} {a['name'] or ''}", className="alarm-link"),
             html.Td(a.get("grid_name") or a.get("community_name") or ""),
             html.Td(shown(since, zone), className="alarm-since"),
             html.Td(duration(now - since, lang) if since else "—", className="alarm-for"),
             html.Td(seen(a.get("last_seen"), lang, zone), className="last-seen"),
             html.Td(alarm_handled(a, lang, zone, "alarm-case"), className="alarm-handled")],
            id={"type": "alarm", "id": a["id"]}, n_clicks=0,
            className="alarm-row" + (" selected" if a["id"] == selected else "")
            + ("" if a.get("acknowledged_by") else " unacknowledged")))
    return html.Div([list_note(len(alarms), total, lang, "alarm"),
                     html.Table([html.Thead(head), html.Tbody(body)], className="table")])


def alarm_handled(alarm: dict, lang: str, zone: str, link: str | None = None) -> list:
    """What was done about an alarm: 未确认; 已确认 · who · when (and its note); 已转工单 and
    the case, a clickable ``link`` (a pattern id's type) when given."""
    if not alarm.get("acknowledged_by"):
        return [html.Span(t("alarm.open", lang), className="alarm-open")]
    parts = [html.Span(alarm_handled_text(alarm, lang, zone, case=False), className="alarm-ack")]
    if alarm.get("ack_note"):
        parts.append(html.Span(f" · {alarm['ack_note']}", className="alarm-note-text"))
    case = alarm.get("case_id")
    if case:
        parts += [html.Br(), html.Span(f"{t('alarm.dispatched', lang)} ", className="alarm-case"),
                  html.Span(case, className="case-link", id={"type": link, "id": case},
                            n_clicks=0) if link else html.Span(case, className="case-id")]
    return parts


def alarm_handled_text(alarm: dict, lang: str, zone: str, case: bool = True) -> str:
    """:func:`alarm_handled` as one line of text (map hover, the wall's ticker)."""
    if not alarm.get("acknowledged_by"):
        return t("alarm.open", lang)
    text = t("alarm.acknowledged", lang).format(who=alarm["acknowledged_by"],
                                                 when=shown(alarm["acknowledged_at"], zone))
    if case and alarm.get("case_id"):
        text += f" · {t('alarm.dispatched', lang)} {alarm['case_id']}"
    return text


def alarm_panel_state(device: dict | None, lang: str, zone: str) -> list:
    """The head of the clicked alarm's panel: the device, where, since when, and what was
    done about it."""
    if device is None:
        return []
    a = device["properties"]
    if a["status"] != "alarm":
        return [html.H4(f"{a['kind']} {a['name'] or ''}"),
                html.P(t("alarm.not_alarm", lang), className="note")]
    return [html.H4(f"{a['kind']} {a['name'] or ''}", className="alarm-title"),
            html.P(f"{a.get('grid_name') or ''} · {t('col.alarm_since', lang)} "
                   f"{shown(a['alarm_since'], zone)}"),
            html.P(alarm_handled(a, lang, zone, "alarm-case-detail"), id="alarm-handled")]


def duration(span: timedelta, lang: str) -> str:
    """A duration as a person reads it: days and hours, hours and minutes, or minutes
    (whole units, rounded down)."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return t("duration.dh", lang).format(d=days, h=hours)
    if minutes >= 60:
        return t("duration.hm", lang).format(h=minutes // 60, m=mins)
    return t("duration.m", lang).format(m=mins)


def seen(moment, lang: str, zone: str) -> str:
    """``2026-11-20 23:55 (12天16小时前)``: a local time and how long ago it was."""
    if not moment:
        return shown(None, zone)
    ago = duration(age(moment, datetime.now(UTC)), lang)
    return f"{shown(moment, zone)} ({t('age.ago', lang).format(age=ago)})"


def feed_times(feeds: dict, lang: str, zone: str) -> list:
    """数据截至: each feed's newest event in local time (a stale one marked)."""
    if not feeds:
        return [f"{t('asof', lang)} {shown(None, zone)}"]
    return [t("asof", lang), *[
        html.Span(f" {t(f'feed.{feed}', lang)} {shown(info['newest'], zone)}",
                  id=f"asof-{feed}", className="feed stale" if info["stale"] else "feed")
        for feed, info in feeds.items()]]


def stale_warnings(feeds: dict, lang: str, zone: str) -> list:
    """A warning per feed older than its limit, with its age and newest event."""
    return [html.Div("⚠ " + t(f"stale.{feed}", lang).format(
                age=duration(timedelta(seconds=info["age_s"]), lang),
                newest=shown(info["newest"], zone)),
                     id=f"stale-{feed}", className="banner warn stale")
            for feed, info in feeds.items() if info["stale"]]


def elsewhere_notice(found: dict | None, state: ViewState, zone: str) -> list:
    """A period without cases while the scope has some at other times: say when the
    newest was, and offer the shortest range holding it."""
    if not found:
        return []
    target = with_filters(state, period=Period(range=found["range"]))
    label = t("elsewhere.go", state.lang).format(range=t(f"range.{found['range']}", state.lang))
    return [html.Div([
        html.Span(t("elsewhere.none", state.lang).format(newest=shown(found["newest"], zone))),
        dcc.Link(label, href="/" + target.query(), id="elsewhere-go", className="go"),
    ], id="elsewhere", className="banner info")]


def timeline(case: dict, lang: str, zone: str) -> html.Div:
    """The case's lifecycle stages in order, with the deadline (local times)."""
    items = [html.Li([html.Span(t(f"stage.{stage}", lang), className="stage"),
                      html.Span(shown(case.get(stage), zone), className="when",
                                id=f"stage-{stage}")],
                     className="done" if case.get(stage) else "todo") for stage in STAGES]
    deadline = shown(case.get("deadline"), zone)
    due = case.get("due")
    return html.Div([
        html.H3(f"{t('detail.title', lang)} {case['id']}"),
        html.P(f"{case['category_1']} › {case.get('category_2') or ''} › "
               f"{case.get('category_3') or ''}"),
        html.P(f"{case.get('street_name') or ''} {case.get('community_name') or ''} "
               f"{case.get('grid_name') or ''}"),
        *_placed(case, lang),
        html.Ol(items, className="timeline"),
        html.P([f"{t('stage.deadline', lang)}: {deadline}",
                *([html.Span(f" {status_words(case, lang)} · {due_text(due, lang)}",
                             className=f"due-mark {due['due']}", id="detail-due")]
                  if due else [])], id="case-deadline"),
        *_reporter(case, lang),
        *workers.in_detail(case, lang),
    ])


def _placed(case: dict, lang: str) -> list:
    """At which level the case was placed, and how (a point, or a code or name only)."""
    if not case.get("placed_level"):
        return []
    how = t("detail.by_point" if case.get("located_by") == "point" else "detail.by_code", lang)
    level = t(f"level.{case['placed_level']}", lang)
    return [html.P(f"{t('detail.placed', lang)}: {level} · {how}", id="case-placed")]


def _reporter(case: dict, lang: str) -> list:
    """The reporter as the read side served it (masked unless the viewer holds the grant;
    absent for kiosks)."""
    if "reporter_name" not in case:
        return []
    who = " ".join(v for v in (case.get("reporter_name"), case.get("reporter_phone")) if v)
    return [html.P(f"{t('detail.reporter', lang)}: {who or '—'}", className="reporter")]


def database_banner(exc: Exception, lang: str) -> html.Div:
    """The banner of a failed read: a load being committed (wait) or the database away."""
    busy = waited_for_a_load(exc)
    return html.Div(user_message(exc, lang), className="banner warn" if busy else "banner error",
                    id="db-busy" if busy else "db-down")


def empty_state(lang: str, key: str = "empty") -> html.Div:
    return html.Div([html.H2(t(f"{key}.title", lang)), html.P(t(f"{key}.body", lang))],
                    id=ids.EMPTY, className="empty")
