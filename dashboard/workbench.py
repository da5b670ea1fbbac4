"""The workbench page's state and building blocks: functions from its URL and data to
components; no queries.

Its state is the URL's, as on the desk: the desk's filters and language
(``dashboard.state.parse``) plus what the workbench adds: the case open in the detail
drawer (``case``), the handling unit whose cases are listed (``unit``), the ranking's order
(``sort``), a case search (``q``), the 并案 cluster on the map (``merge``) and whether the
case count leaves out merged duplicates (``count=events``). A link to a case opens it
(``case=``).

Acting (督办 / 提醒) is one thing here that writes: a small form under the open case
and under the listed unit (:func:`urge_form`), whose button the page's callback answers;
the other is a 并案 decision (``dashboard.merging``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from dash import dcc, html

from dashboard import glossary
from dashboard.components import due_text, pct, period_words, span_words
from dashboard.components import report_links as report_links_of
from dashboard.messages import t
from dashboard.state import RANGES, ViewState, parse, with_range, with_scope
from layers.times import shown
from layers.workbench import RANKED_BY

PATH = "/workbench"


@dataclass(frozen=True)
class BenchState:
    view: ViewState = ViewState()
    case: str | None = None     # the case open in the detail drawer
    unit: str | None = None     # the handling unit whose cases are listed
    sort: str = "received"      # the ranking's order (layers.workbench.RANKED_BY)
    q: str | None = None        # a case search (layers.search)
    merge: str | None = None    # the 并案 cluster shown on the map (its first report)
    events: bool = False        # the case count without merged duplicates

    @property
    def lang(self) -> str:
        return self.view.lang

    def query(self) -> str:
        """The URL query string that restores this state."""
        pairs = {**self.view.params(), "unit": self.unit,
                 "sort": self.sort if self.sort != "received" else None, "q": self.q,
                 "case": self.case, "merge": self.merge,
                 "count": "events" if self.events else None,
                 "lang": self.lang if self.lang != "zh" else None}
        return "?" + urlencode({k: v for k, v in pairs.items() if v})

    def href(self, **changes) -> str:
        return PATH + replace(self, **changes).query()


def parse_bench(search: str | None) -> BenchState:
    """The workbench's state of a URL query string (unknown values: the defaults)."""
    values = parse_qs((search or "").lstrip("?"))
    case, unit, sort, q, merge, count = ((values.get(name) or [None])[0] for name in
                                         ("case", "unit", "sort", "q", "merge", "count"))
    key, _, way = (sort or "").partition(".")
    return BenchState(view=parse(search), case=case[:100] if case else None,
                      unit=unit[:200] if unit else None,
                      q=(q or "").strip()[:100] or None,
                      sort=sort if key in RANKED_BY and way in ("", "asc") else "received",
                      merge=merge[:100] if merge else None, events=count == "events")


def crumbs(breadcrumb: list[dict], state: BenchState) -> list:
    """The scope's breadcrumb: each ancestor links to its workbench."""
    parts: list = []
    for i, crumb in enumerate(breadcrumb):
        if i:
            parts.append(html.Span(" › ", className="sep"))
        if i == len(breadcrumb) - 1:
            parts.append(html.Span(crumb["name"], className="here"))
            continue
        target = with_scope(state.view, crumb["code"] if crumb["level"] > 1 else None)
        parts.append(dcc.Link(crumb["name"], className="crumb",
                              href=state.href(view=target, case=None)))
    return parts


def range_links(state: BenchState, period: dict) -> html.Nav:
    """The period presets, the chosen one marked, and the local days of the ``period``."""
    chosen = state.view.range
    return html.Nav([html.Span(t("wb.period", state.lang), className="label"),
                     html.Span(period_words(period, chosen, state.lang), id="wb-period",
                               className="days"), *[
        html.Span(t(f"range.{r}", state.lang), className="chosen") if r == chosen else
        dcc.Link(t(f"range.{r}", state.lang), href=state.href(view=with_range(state.view, r)),
                 id=f"wb-range-{r}")
        for r in RANGES]], className="wb-ranges")


def hours_text(value: float | None, lang: str) -> str:
    """A time in a stage: minutes under an hour, hours with a decimal under two days, else
    days with a decimal (``—``: nothing measured)."""
    if value is None:
        return "—"
    if value < 1:
        return t("wb.minutes", lang).format(n=f"{value * 60:.0f}")
    if value < 48:
        return t("wb.hours", lang).format(n=f"{value:.1f}")
    return t("wb.days", lang).format(n=f"{value / 24:.1f}")


def funnel(stages: list[dict], state: BenchState, zone: str, soon_hours: float) -> html.Div:
    """The lifecycle funnel: each stage's open cases now, its dwell over the period, and
    the cases waiting at it longest (each opens its detail)."""
    lang = state.lang
    head = html.Tr([html.Th(t(f"wb.funnel.{c}", lang)) for c in
                    ("stage", "open", "median", "p90", "measured", "oldest")])
    most = max([s["open"] for s in stages] + [1])
    rows = []
    for s in stages:
        bar = html.Div(className="wb-bar", style={"width": f"{100 * s['open'] / most:.1f}%"})
        oldest = html.Ul([html.Li([
            dcc.Link(c["id"], href=state.href(case=c["id"]), className="case-link",
                     id=f"stuck-{s['stage']}-{n}"),
            html.Span(t("wb.waited", lang).format(span=span_words(c["waited_hours"], lang)),
                      className="waited"),
            html.Span(c["handling_unit"] or "", className="unit")])
            for n, c in enumerate(s["oldest"])], className="wb-oldest")
        rows.append(html.Tr([
            html.Td(t(f"stage.{s['stage']}", lang), className="stage"),
            html.Td([html.Span(f"{s['open']:,}", className="n"), bar], className="open"),
            html.Td(hours_text(s["median_hours"], lang), className="median"),
            html.Td(hours_text(s["p90_hours"], lang), className="p90"),
            html.Td(f"{s['measured']:,}", className="measured"),
            html.Td(oldest, className="oldest")], id=f"funnel-{s['stage']}"))
    return html.Section([
        html.H2(t("wb.funnel", lang), title=" ".join(
            glossary.counts(key, lang, soon_hours) for key in ("stages", "dwell", "stuck"))),
        html.P(t("wb.funnel.note", lang), className="hint"),
        html.Table([html.Thead(head), html.Tbody(rows)], className="table wb-funnel")],
        id="funnel", className="wb-panel")


def case_drawer(case: dict | str | None, state: BenchState, zone: str,
                timeline, can_act: bool) -> html.Aside:
    """The open case's lifecycle (``timeline``: the desk's drawer) and its 督办 (with the
    form to add one when ``can_act``), with a close link; the reason when it cannot be
    shown (``case`` as words)."""
    if case is None:
        return html.Aside(id="wb-detail", className="wb-detail empty")
    close = dcc.Link("×", href=state.href(case=None), className="close", id="wb-detail-close")
    if isinstance(case, str):
        return html.Aside([close, html.P(case, className="banner warn", id="wb-detail-problem")],
                          id="wb-detail", className="wb-detail")
    lang = state.lang
    return html.Aside([close,
                       timeline(case, lang, zone),
                       html.P(f"{t('col.unit', lang)}: {case.get('handling_unit') or '—'}",
                              id="detail-unit"),
                       html.H4(t("urge.title", lang)),
                       urged(case.get("supervisions", []), lang, zone, "wb-urge-case-list"),
                       urge_form("case", lang, can_act)],
                      id="wb-detail", className="wb-detail")


def urged(rows: list[dict], lang: str, zone: str, list_id: str,
          state: BenchState | None = None) -> html.Ul:
    """督办 and 提醒, newest first: which, when, by whom, the note (as text); with
    ``state``, a unit's list, each row on one of its cases names it (a link)."""
    if not rows:
        return html.Ul(html.Li(t("urge.none", lang), className="none"), id=list_id,
                       className="wb-urged")
    return html.Ul([html.Li([
        html.Span(t(f"urge.kind.{r['kind']}", lang), className=f"kind {r['kind']}"),
        html.Span(shown(r["at"], zone), className="when"),
        html.Span(r["user_name"], className="who"),
        *([html.Span(r["handling_unit"], className="unit")]
          if r.get("handling_unit") and not r.get("case_id") else []),
        *([dcc.Link(r["case_id"], href=state.href(case=r["case_id"]), className="case-link")]
          if state is not None and r.get("case_id") else []),
        html.Div(r["note"], className="note")]) for r in rows],
        id=list_id, className="wb-urged")


KIND_OPTIONS = ("supervise", "remind")  # as onemap.supervision.KINDS, in the form's order


def urge_form(target: str, lang: str, can_act: bool) -> html.Div:
    """The form urging the open case (``target`` "case") or the listed unit ("unit"): 督办
    or 提醒, a note, a button; for a role that only reads, a line saying so."""
    prefix = f"wb-urge-{target}"
    if not can_act:
        return html.Div(html.P(t("urge.readonly", lang), className="hint"), id=prefix)
    return html.Div([
        dcc.RadioItems(id=f"{prefix}-kind", value=KIND_OPTIONS[0], inline=True,
                       options=[{"label": t(f"urge.kind.{k}", lang), "value": k}
                                for k in KIND_OPTIONS]),
        dcc.Textarea(id=f"{prefix}-note", maxLength=500, placeholder=t("urge.note", lang),
                     className="note"),
        html.Button(t("urge.send", lang), id=f"{prefix}-send", n_clicks=0),
        html.Span(id=f"{prefix}-said", className="said")], id=prefix, className="wb-urge")


def warnings(data, state: BenchState, zone: str, soon_hours: float) -> html.Section:
    """即将超期 and 超期未办结 now, most urgent first, each opening its detail."""
    lang = state.lang
    return html.Section([
        html.H2(t("wb.warning", lang),
                title=" ".join(glossary.counts(k, lang, soon_hours)
                               for k in ("due_soon", "overdue"))),
        html.P(t("wb.warning.note", lang), className="hint"),
        html.Div([
            html.Div([html.H3(t("wb.due_soon", lang)),
                      _due_list(data.due_soon, data.due_soon_total, state, zone, "due-soon")],
                     className="half"),
            html.Div([html.H3(t("wb.overdue", lang)),
                      _due_list(data.overdue, data.overdue_total, state, zone, "overdue")],
                     className="half")], className="wb-halves")],
        id="warning", className="wb-panel")


def _due_list(rows: list[dict], total: int, state: BenchState, zone: str,
              list_id: str) -> html.Div:
    lang = state.lang
    head = html.Tr([html.Th(t(f"col.{c}", lang)) for c in
                    ("id", "unit", "deadline", "left", "supervised")])
    body = [html.Tr([
        html.Td(dcc.Link(r["id"], href=state.href(case=r["id"]), className="case-link")),
        html.Td(r["handling_unit"] or "—", className="unit"),
        html.Td(shown(r["deadline"], zone), className="deadline"),
        html.Td(due_text(r["due"], lang), className=f"due {r['due']['due']}"),
        html.Td(f"{r['supervised']:,}", className="supervised")]) for r in rows]
    note = (t("list.all", lang).format(total=total) if len(rows) >= total else
            t("list.shown", lang).format(shown=len(rows), total=total))
    return html.Div([html.P(note, className="list-note", id=f"{list_id}-count"),
                     html.Div(html.Table([html.Thead(head), html.Tbody(body)],
                                         className="table"), className="wb-scroll short")],
                    id=f"{list_id}-list")


def search_box(state: BenchState) -> html.Form:
    """The case search: a plain form (GET /workbench) carrying the view's other state, so
    the search is a URL like every view of the workbench."""
    kept = {k: v[0] for k, v in parse_qs(replace(state, q=None, case=None).query()
                                         .lstrip("?")).items()}
    return html.Form([
        dcc.Input(id="wb-search", name="q", type="search", value=state.q or "",
                  placeholder=t("search.placeholder", state.lang), debounce=True),
        *[dcc.Input(type="hidden", name=k, value=v) for k, v in kept.items()],
        html.Button(t("search.go", state.lang), type="submit", id="wb-search-go")],
        action=PATH, method="get", className="wb-search")


def search_results(found: dict, state: BenchState, zone: str, figure: dict) -> html.Section:
    """A search's hits in a table (each opening its detail) and on a map."""
    lang = state.lang
    personal = any("reporter_phone" in f["properties"] for f in found["features"])
    columns = ("id", "reported_at", "address", "unit", "status", "matched",
               *(("phone",) if personal else ()))
    body = []
    for f in found["features"]:
        p = f["properties"]
        body.append(html.Tr([
            html.Td(dcc.Link(p["id"], href=state.href(case=p["id"]), className="case-link")),
            html.Td(shown(p["reported_at"], zone)),
            html.Td(p["address"] or "—", className="address"),
            html.Td(p["handling_unit"] or "—"),
            html.Td(t(f"status.{p['status']}", lang)),
            html.Td(t(f"match.{p['matched']}", lang), className="matched"),
            *([html.Td(p.get("reporter_phone") or "—", className="phone")] if personal else [])],
            className="chosen" if p["id"] == state.case else None))
    total, unlocated = found["numberMatched"], sum(
        1 for f in found["features"] if not f.get("geometry"))
    note = (t("list.all", lang).format(total=total) if len(body) >= total else
            t("list.shown", lang).format(shown=len(body), total=total))
    return html.Section([
        html.H2([t("search.title", lang).format(q=found["query"]),
                 dcc.Link("×", href=state.href(q=None), className="close", id="search-close")]),
        html.Div([
            html.Div([html.P(note, className="list-note", id="search-count"),
                      html.Div(html.Table([html.Thead(html.Tr([
                          html.Th(t(f"col.{c}", lang)) for c in columns])),
                          html.Tbody(body)], className="table", id="search-table"),
                          className="wb-scroll short")], className="wide"),
            html.Div([dcc.Graph(id="search-map", figure=figure, config={"displaylogo": False},
                                className="search-map"),
                      *([html.P(t("search.unlocated", lang).format(n=unlocated),
                                className="hint", id="search-unlocated")] if unlocated else [])],
                     className="narrow")], className="wb-halves")],
        id="search", className="wb-panel")


def report_links(scope: dict, period: dict, state: BenchState, allowed: bool) -> html.Span:
    """The report of this scope and period (``dashboard.components.report_links``)."""
    return html.Span(report_links_of(scope, period, state.lang, allowed), id="wb-report",
                     className="wb-report")


def as_of(now: str, lang: str, zone: str) -> str:
    return f"{t('wb.now', lang)} {shown(now, zone)}"


def indicator_cards(shown: list[dict], satisfaction: dict, lang: str,
                    soon_hours: float) -> html.Section:
    """The seeds' indicators: a share, or 不可用 when the source lacks what it needs (the
    tooltip says which fields); the mean score beside the share satisfied."""
    cards = []
    for ind in shown:
        value = pct(ind["value"]) if ind["available"] else t("wb.na", lang)
        extra = (f"{ind['part']:,} / {ind['whole']:,}" if ind["available"] else
                 t("wb.needs", lang).format(fields=", ".join(ind["needs"])))
        cards.append(html.Div([
            html.Div(t(f"kpi.{ind['key']}", lang), className="label"),
            html.Div(value, className="value", id=f"ind-{ind['key']}"),
            html.Div(extra, className="extra")],
            className="card" + ("" if ind["available"] else " na"),
            title=glossary.tooltip(ind["key"], lang, soon_hours, t("period.chosen", lang))))
        if ind["key"] == "satisfied_rate":
            mean = satisfaction["mean"]
            cards.append(html.Div([
                html.Div(t("kpi.satisfaction", lang), className="label"),
                html.Div("—" if mean is None else f"{mean:.2f}", className="value",
                         id="ind-satisfaction"),
                html.Div(t("wb.rated", lang).format(n=f"{satisfaction['rated']:,}"),
                         className="extra")], className="card",
                title=glossary.tooltip("satisfaction", lang, soon_hours,
                                       t("period.chosen", lang))))
    return html.Section([html.H2(t("wb.indicators", lang)),
                         html.Div(cards, className="wb-cards")],
                        id="indicators", className="wb-panel")


def case_list(rows: list[dict], total: int, state: BenchState, zone: str,
              list_id: str, score: bool = False) -> html.Div:
    """Listed cases, newest first, each opening its detail; how many of how many."""
    lang = state.lang
    head = html.Tr([html.Th(t(f"col.{c}", lang)) for c in
                    ("id", "reported_at", "category", "unit", "status")
                    + (("satisfaction",) if score else ())])
    body = [html.Tr([
        html.Td(dcc.Link(r["id"], href=state.href(case=r["id"]), className="case-link")),
        html.Td(shown(r["reported_at"], zone)),
        html.Td(f"{r['category_1']} / {r['category_2'] or ''}"),
        html.Td(r["handling_unit"] or "—"),
        html.Td(t(f"status.{r['status']}", lang)),
        *([html.Td(str(r["satisfaction"]), className="score")] if score else [])])
        for r in rows]
    note = (t("list.all", lang).format(total=total) if len(rows) >= total else
            t("list.shown", lang).format(shown=len(rows), total=total))
    return html.Div([html.P(note, className="list-note", id=f"{list_id}-count"),
                     html.Table([html.Thead(head), html.Tbody(body)], className="table")],
                    id=list_id)


def unsatisfied(rows: list[dict], total: int, state: BenchState, zone: str,
                soon_hours: float) -> html.Section:
    return html.Section([
        html.H2(t("wb.unsatisfied", state.lang),
                title=glossary.counts("unsatisfied", state.lang, soon_hours)),
        case_list(rows, total, state, zone, "unsatisfied-list", score=True)],
        id="unsatisfied", className="wb-panel")


RANK_COLUMNS = ("received", "closed", "on_time_rate", "median_hours", "overdue",
                "satisfied_rate", "satisfaction", "supervised")


def ranking(units: list[dict], state: BenchState, zone: str, soon_hours: float,
            unit_cases: list[dict], unit_total: int, unit_urged: list[dict],
            can_act: bool) -> html.Section:
    """The handling units, ordered by the chosen column (a click on a heading orders by it,
    a second click reverses); a unit's name lists its cases and its latest 督办, with the
    form to urge it."""
    lang = state.lang
    key, _, way = state.sort.partition(".")
    heads = [html.Th("#"), html.Th(t("col.unit", lang))]
    for column in RANK_COLUMNS:
        again = f"{column}.asc" if column == key and way != "asc" else column
        arrow = (" ▲" if way == "asc" else " ▼") if column == key else ""
        heads.append(html.Th(dcc.Link(t(f"wb.rank.{column}", lang) + arrow,
                                      href=state.href(sort=again, case=None),
                                      id=f"sort-{column}"),
                             title=glossary.counts(f"rank_{column}", lang, soon_hours)))
    body = [html.Tr([
        html.Td(str(n + 1)),
        html.Td(dcc.Link(u["unit"], href=state.href(unit=u["unit"], case=None),
                         className="unit-link")),
        html.Td(f"{u['received']:,}", className="received"),
        html.Td(f"{u['closed']:,}", className="closed"),
        html.Td(pct(u["on_time_rate"]), className="on_time_rate"),
        html.Td(hours_text(u["median_hours"], lang), className="median_hours"),
        html.Td(f"{u['overdue']:,}", className="overdue" + (" alert" if u["overdue"] else "")),
        html.Td(pct(u["satisfied_rate"]), className="satisfied_rate"),
        html.Td("—" if u["satisfaction"] is None else f"{u['satisfaction']:.2f}",
                className="satisfaction"),
        html.Td(f"{u['supervised']:,}", className="supervised")],
        className="chosen" if u["unit"] == state.unit else None)
        for n, u in enumerate(units)]
    drill = []
    if state.unit is not None:
        drill = [html.H3([t("wb.unit_cases", lang).format(unit=state.unit),
                          dcc.Link("×", href=state.href(unit=None, case=None),
                                   className="close", id="unit-close")]),
                 case_list(unit_cases, unit_total, state, zone, "unit-cases"),
                 html.H4(t("urge.unit_title", lang).format(unit=state.unit)),
                 urged(unit_urged, lang, zone, "wb-urge-unit-list", state),
                 urge_form("unit", lang, can_act)]
    return html.Section([
        html.H2(t("wb.ranking", lang)),
        html.P(t("wb.ranking.note", lang), className="hint"),
        html.Div(html.Table([html.Thead(html.Tr(heads)), html.Tbody(body)],
                            className="table wb-ranking", id="ranking-table"),
                 className="wb-scroll"),
        *drill], id="ranking", className="wb-panel")
