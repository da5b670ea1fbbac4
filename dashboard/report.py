"""The report as a document: a :class:`layers.report.Report` written as one self-contained
HTML page (``templates/report.html``: its style, its font and its map inside, no address
outside it), and that page as PDF (``dashboard.pdf``).

Every figure is written as the dashboard writes it (``dashboard.components``,
``dashboard.workbench``: counts with thousands separators, rates in % with one decimal,
hours, the mean score with two decimals, 环比 / 同比 as ▲/▼ with their unit), every time in
the deployment's zone, and the period named exactly (``report.period.*``).
"""

from __future__ import annotations

import calendar
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from dashboard.components import change_words, figure_text, pct, span_words
from dashboard.messages import t
from dashboard.report_font import STACK, font_face
from dashboard.report_map import Legend, svg_map
from dashboard.workbench import hours_text
from layers.backlog import COUNTS, STAGES
from layers.comparison import FLOWS, KINDS
from layers.report import Report, ReportPeriod
from layers.times import offset_name, shown

TEMPLATES = Path(__file__).parent / "templates"
FONT_SLOT = "/*font*/"  # where the embedded face goes, once the text is known


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)),
                       autoescape=select_autoescape(["html"]), trim_blocks=True,
                       lstrip_blocks=True)


def title(report: Report, lang: str) -> str:
    """``坪山区 周报``: the scope and the kind of report."""
    return f"{report.scope['name']} {t(f'report.kind.{report.period.kind}', lang)}"


def period_words(period: ReportPeriod, lang: str) -> str:
    """The period named exactly: 2026年第47周（2026-11-16 周一 至 2026-11-22 周日）,
    2026年11月（2026-11-01 至 2026-11-30）, 自定义 2026-11-03 至 2026-11-09（7天）."""
    year, week = period.week
    return t(f"report.period.{period.kind}", lang).format(
        year=year if period.kind == "week" else period.first.year, week=week,
        month=period.first.month, month_name=calendar.month_name[period.first.month],
        first=period.first.isoformat(), last=period.last.isoformat(), days=period.days)


def html_document(report: Report, lang: str, zone: str) -> str:
    """The report as one HTML page holding everything it shows (style, font, map)."""
    page = _environment().get_template("report.html").render(
        lang=lang, t=lambda key, **kw: t(key, lang).format(**kw) if kw else t(key, lang),
        title=title(report, lang), css=_css_strings(report, lang),
        crumbs=" › ".join(c["name"] for c in report.breadcrumb),
        period=period_words(report.period, lang),
        made=t("report.made", lang).format(now=shown(report.now, zone),
                                           zone=offset_name(zone)),
        newest=(t("report.newest", lang).format(newest=shown(report.newest_case, zone))
                if report.newest_case else ""),
        map_title=_map_title(report, lang), map=Markup(_map(report, lang)),
        kpis=kpi_rows(report, lang), compared=compared_lines(report, lang),
        backlog=backlog_counts(report, lang), stages=stage_words(report, lang),
        backlog_heading=t("report.backlog", lang).format(now=shown(report.now, zone)),
        categories=category_rows(report), hotspots=hotspot_rows(report, lang),
        overdue=overdue_rows(report, lang, zone), units=unit_rows(report, lang),
        counted=_counted(report, lang))
    return page.replace(FONT_SLOT, font_face(page), 1)


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string: quotes and backslashes escaped, and no ``<`` (a
    name holding ``</style>`` ends nothing)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")
    return f'"{escaped}"'.replace("\n", " ")


def _css_strings(report: Report, lang: str) -> dict:
    """What the page's style says: the font stack, the page numbers and the running title
    in the page margins."""
    page = t("report.page", lang).format(page='" counter(page) "', pages='" counter(pages) "')
    running = f"{title(report, lang)} · {period_words(report.period, lang)}"
    return {key: Markup(value) for key, value in (
        ("font", STACK), ("page", f'"{page}"'), ("running", css_string(running)))}


def _map_title(report: Report, lang: str) -> str:
    features = report.shapes["features"]
    own = len(features) == 1 and features[0]["id"] == report.scope["code"]
    level = report.scope["level"] if own else report.scope["level"] + 1
    key = "report.map.self" if own else "report.map"
    return t(key, lang).format(level=t(f"level.{max(level, 1)}", lang))


def map_values(report: Report) -> dict[str, int]:
    """The map's figure by unit: the period's cases of each child (of the unit itself at
    a grid)."""
    children = report.figures["children"]
    if children:
        return {c["code"]: c["total"] for c in children}
    return {f["id"]: report.figures["cases"]["total"] for f in report.shapes["features"]}


def short_name(name: str, parent: str) -> str:
    """A unit's name on its parent's map: without the start it shares with its parent's
    name when the rest is a number (碧岭社区第05网格 in 碧岭社区居委会: 第05网格)."""
    shared = 0
    while shared < min(len(name), len(parent)) and name[shared] == parent[shared]:
        shared += 1
    rest = name[shared:]
    return rest if shared and rest.startswith("第") else name


def _map(report: Report, lang: str) -> str:
    parent = report.scope["name"]
    features = [{**f, "properties": {**f["properties"],
                                     "name": short_name(f["properties"]["name"], parent)}}
                for f in report.shapes["features"]]
    return svg_map(features, map_values(report),
                   Legend(t("metric.total", lang), t("report.no_data", lang)), font=STACK)


def kpi_rows(report: Report, lang: str) -> list[dict]:
    """Each flow: its figure, and per comparison the compared figure and the change."""
    cases, compare = report.figures["cases"], report.figures["compare"]
    rows = []
    for key in FLOWS:
        now = cases[key]
        row = {"key": key, "name": t(f"kpi.{key}", lang),
               "value": figure_text(key, now, lang, cases.get("median_approx"))}
        for kind in KINDS:
            found = compare[kind]
            words, verdict = change_words(found, kind, key, now, lang)
            row[kind] = {"was": ("—" if found["figures"] is None
                                 else figure_text(key, found["figures"][key], lang)),
                         "change": words, "verdict": verdict or "neutral"}
        rows.append(row)
    return rows


def compared_lines(report: Report, lang: str) -> list[str]:
    """The compared periods' days (or why there is none)."""
    lines = []
    for kind in KINDS:
        found = report.figures["compare"][kind]
        name = t(f"compare.{kind}", lang)
        if found["period"] is None:
            why = t(f"compare.why.{found['reason']}", lang)
            lines.append(t("compare.none", lang).format(kind=name, why=why))
            continue
        days = found["period"]
        note = ""
        if found["reason"] == "before_data":
            why = t(f"compare.before_data.{kind}", lang)
            note = f"（{why}）" if lang == "zh" else f" ({why})"
        lines.append(t("report.compared", lang).format(kind=name, first=days["start"][:10],
                                                       last=days["last"], note=note))
    return lines


def backlog_counts(report: Report, lang: str) -> list[dict]:
    """The backlog now: open, overdue and due soon."""
    cases = report.figures["cases"]
    return [{"key": key, "name": t(f"kpi.{key}", lang), "value": f"{cases[key]:,}"}
            for key in COUNTS]


def stage_words(report: Report, lang: str) -> list[dict]:
    stages = report.figures["backlog"]["stages"]
    return [{"key": s, "name": t(f"stage.{s}", lang), "value": f"{stages[s]:,}"}
            for s in STAGES]


def category_rows(report: Report) -> list[dict]:
    total = report.figures["cases"]["total"]
    return [{"name": c["key"], "n": f"{c['n']:,}",
             "share": pct(c["n"] / total) if total else "—"}
            for c in report.figures["categories"]]


def hotspot_rows(report: Report, lang: str) -> list[dict]:
    return [{"name": h.get("name") or h["id"], "n": f"{h['n']:,}",
             "trend": t(f"trend.{h['trend']}", lang) if h["trend"] else "",
             "z": f"{h['z']:.2f}"} for h in report.hotspots]


def overdue_rows(report: Report, lang: str, zone: str) -> list[dict]:
    return [{"id": c["id"], "reported": shown(c["reported_at"], zone),
             "category": " / ".join(x for x in (c["category_1"], c["category_2"]) if x),
             "deadline": shown(c["deadline"], zone),
             "by": span_words(c["due"]["hours"], lang)} for c in report.overdue]


def unit_rows(report: Report, lang: str) -> list[dict]:
    """The ranking's rows, each figure written as the workbench writes it."""
    return [{"n": i + 1, "unit": u["unit"], "received": f"{u['received']:,}",
             "closed": f"{u['closed']:,}", "on_time_rate": pct(u["on_time_rate"]),
             "median_hours": hours_text(u["median_hours"], lang),
             "overdue": f"{u['overdue']:,}", "satisfied_rate": pct(u["satisfied_rate"]),
             "satisfaction": "—" if u["satisfaction"] is None else f"{u['satisfaction']:.2f}"}
            for i, u in enumerate(report.units)]


def _counted(report: Report, lang: str) -> dict:
    """How many of each list are shown, of how many (nothing is cut silently)."""
    def note(shown_: int, total: int) -> str:
        return (t("list.all", lang).format(total=total) if shown_ >= total else
                t("list.shown", lang).format(shown=shown_, total=total))

    return {"hotspots": note(len(report.hotspots), report.hotspots_total),
            "overdue": note(len(report.overdue), report.figures["cases"]["overdue"]),
            "units": note(len(report.units), report.units_total)}
