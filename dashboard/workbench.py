"""The workbench page's state and building blocks: functions from its URL and data to
components; no queries.

Its state is the URL's, as on the desk: the desk's filters and language
(``dashboard.state.parse``) plus what the workbench adds: the case open in the detail
drawer (``case``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from dash import dcc, html

from dashboard import glossary
from dashboard.components import period_words, span_words
from dashboard.messages import t
from dashboard.state import RANGES, ViewState, parse, with_range, with_scope
from layers.times import shown

PATH = "/workbench"


@dataclass(frozen=True)
class BenchState:
    view: ViewState = ViewState()
    case: str | None = None     # the case open in the detail drawer

    @property
    def lang(self) -> str:
        return self.view.lang

    def query(self) -> str:
        """The URL query string that restores this state."""
        pairs = {**self.view.params(), "case": self.case,
                 "lang": self.lang if self.lang != "zh" else None}
        return "?" + urlencode({k: v for k, v in pairs.items() if v})

    def href(self, **changes) -> str:
        return PATH + replace(self, **changes).query()


def parse_bench(search: str | None) -> BenchState:
    """The workbench's state of a URL query string (unknown values: the defaults)."""
    values = parse_qs((search or "").lstrip("?"))
    case = (values.get("case") or [None])[0]
    return BenchState(view=parse(search), case=case[:100] if case else None)


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


def case_drawer(case: dict | None, state: BenchState, zone: str, timeline) -> html.Aside:
    """The open case's lifecycle (``timeline``: the desk's drawer), with a close link."""
    if case is None:
        return html.Aside(id="wb-detail", className="wb-detail empty")
    return html.Aside([dcc.Link("×", href=state.href(case=None), className="close",
                                id="wb-detail-close"),
                       timeline(case, state.lang, zone),
                       html.P(f"{t('col.unit', state.lang)}: {case.get('handling_unit') or '—'}",
                              id="detail-unit")],
                      id="wb-detail", className="wb-detail")


def as_of(now: str, lang: str, zone: str) -> str:
    return f"{t('wb.now', lang)} {shown(now, zone)}"
