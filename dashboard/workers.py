"""Grid workers (网格员) on the page: the grid view's panel of the grid's workers with their
figures, and the workers named in a case's detail. Pure functions of what
``layers.roster`` returns; phones arrive masked (or not at all) as the viewer may see them.
"""

from __future__ import annotations

from dash import html

from dashboard.messages import t


def panel(data: dict | None, lang: str) -> list:
    """The grid's workers, each with role, phone and figures over the view's period: cases
    naming them as handler received, closed, the on-time share and the median handling
    time. Nothing at other levels (``data`` None)."""
    if data is None:
        return []
    title = html.H3(t("workers.title", lang))
    if not data["workers"]:
        return [title, html.P(t("workers.none", lang), id="workers-none", className="hint")]
    rows = [html.Div([
        html.Div([html.Span(w["name"], className="worker-name"),
                  html.Span(_role(w, lang), className="worker-role"),
                  html.Span(w["phone"] or "—", className="worker-phone")], className="who"),
        html.Div([part for key, value in (
            ("received", f"{w['received']:,}"), ("closed", f"{w['closed']:,}"),
            ("on-time", _pct(w["on_time_rate"])),
            ("median", _hours(w["median_hours"], lang)))
            for part in (html.Span(t(f"workers.col.{key}", lang), className="label"),
                         html.Span(value, className=f"worker-{key}"))],
            className="figures")], id=f"worker-{w['id']}", className="worker-row")
        for w in data["workers"]]
    notes = [html.P(t("workers.note", lang), className="hint")]
    if data["unlisted"]:
        notes.append(html.P(t("workers.unlisted", lang).format(n=f"{data['unlisted']:,}"),
                            id="workers-unlisted", className="hint"))
    return [title, *rows, *notes]


def _role(worker: dict, lang: str) -> str:
    """The role; a station head's grids when they cover more than the one shown."""
    role = t(f"role.{worker['role']}", lang)
    grids = len(worker.get("grids") or ())
    return role if grids <= 1 else f"{role} · {t('workers.grids', lang).format(n=grids)}"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _hours(value, lang: str) -> str:
    return "—" if value is None else f"{value:.1f} {t('unit.hours', lang)}"


def in_detail(case: dict, lang: str) -> list:
    """A case detail's workers: its handler first, then its grid's workers (or its
    community's station heads), each with role and phone as the viewer may see it."""
    workers = case.get("workers")
    if workers is None:
        return []
    handler = case.get("handler")
    items = [html.Li([html.Span(w["name"], className="worker-name"),
                      html.Span(f" {_role(w, lang)}", className="worker-role"),
                      html.Span(f" {w['phone'] or '—'}", className="worker-phone"),
                      *([html.Span(f" · {t('detail.handler', lang)}", className="handler")]
                        if w["handler"] else [])],
                     className="worker")
             for w in workers]
    if handler and not any(w["handler"] for w in workers):
        # The case names a handler the roster (or the viewer's part of it) does not hold.
        items.insert(0, html.Li(f"{handler} · {t('detail.handler', lang)} "
                                f"({t('workers.not_listed', lang)})", className="worker"))
    body = html.Ul(items) if items else html.P(t("workers.none", lang), className="hint")
    return [html.Div([html.H4(t("workers.title", lang)), body], id="case-workers")]
