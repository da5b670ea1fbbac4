"""What each KPI counts and over which period, in Chinese and English: the one glossary.

The KPI cards' tooltips are read from here, and so is ``docs/glossary.md``
(``python -m dashboard.glossary > docs/glossary.md``; a test keeps the two equal). A figure
is either part of the *backlog*, counted now whatever the time range, or a *flow*, counted
over the cases reported in the chosen period (``layers.backlog`` says why).
"""

from __future__ import annotations

import sys

from dashboard.messages import t

NOW, PERIOD = "now", "period"
# key -> (period kind, what it counts in zh, in en); the label is the card's (kpi.<key>).
GLOSSARY: dict[str, tuple[str, str, str]] = {
    "open": (NOW, "此刻状态为在办（未办结）的诉求数，不论何时上报。",
             "Cases open (not closed) now, whenever they were reported."),
    "overdue": (NOW, "此刻在办且已超过办理时限的诉求数。",
                "Cases open now whose deadline has passed."),
    "due_soon": (NOW, "此刻在办、尚未超期、办理时限在 {soon} 小时内到期的诉求数"
                      "（ONEMAP_DUE_SOON_HOURS）。",
                 "Cases open now, not yet overdue, whose deadline falls within the next "
                 "{soon} hours (ONEMAP_DUE_SOON_HOURS)."),
    "stages": (NOW, "此刻在办的诉求按所处环节（受理→分拨→处置→反馈→评价）计数：每件诉求处于"
                    "其最后一个有时间记录的环节之后的环节；尚无任何环节时间的，处于受理。",
               "Cases open now by the stage they wait at (accept → dispatch → handle → "
               "feedback → evaluate): the stage after the last one with a recorded time; a "
               "case with none waits to be accepted."),
    "dwell": (PERIOD, "所选时段内上报的诉求在各环节的用时（中位数、第90百分位）：受理＝上报→受理，"
                      "分拨＝受理→分拨，处置＝分拨→处置，反馈＝处置→反馈，评价＝反馈→办结（回访评价"
                      "后办结）；只计两端时间都有记录、且结束不早于开始的诉求。",
              "Time the cases reported in the period spent in each stage (median and 90th "
              "percentile): accept = reported → accepted, dispatch = accepted → dispatched, "
              "handle = dispatched → handled, feedback = handled → feedback, evaluate = "
              "feedback → closed (closed after the return visit); only cases with both times "
              "recorded, the end not before the start."),
    "stuck": (NOW, "此刻在办的诉求中，在所处环节停留最久的几件：进入该环节的时间为其最后一个有"
                   "记录的环节时间（尚无则为上报时间），停留时长算到此刻。",
              "The open cases that have waited longest at the stage they wait at now: they "
              "entered it at their last recorded stage time (else when reported), and have "
              "waited until now."),
    "total": (PERIOD, "所选时段内上报的诉求数。",
              "Cases reported in the chosen period."),
    "closed": (PERIOD, "所选时段内上报的诉求中，已办结的数量。",
               "Of the cases reported in the period, those closed."),
    "on_time_rate": (PERIOD, "所选时段内上报并已办结、可判定是否按时的诉求中，在办理时限内"
                             "办结的比例。",
                     "Of the cases reported in the period and closed whose timeliness is "
                     "known, the share closed by their deadline."),
    "same_day_rate": (PERIOD, "所选时段内上报并已办结的诉求中，上报当日（本地时间）办结的比例。",
                      "Of the cases reported in the period and closed, the share closed on "
                      "the (local) day they were reported."),
    "within_3d_rate": (PERIOD, "所选时段内上报并已办结的诉求中，上报后 72 小时内办结的比例。",
                       "Of the cases reported in the period and closed, the share closed "
                       "within 72 hours of being reported."),
    "median_hours": (PERIOD, "所选时段内上报并已办结的诉求，从上报到办结所用时长的中位数。",
                     "Of the cases reported in the period and closed, the median time from "
                     "report to closure."),
    "satisfaction": (PERIOD, "所选时段内上报并已评价的诉求的平均满意度（1–5 分）。",
                     "Of the cases reported in the period and rated, the mean satisfaction "
                     "(1 to 5)."),
    "iot_online": (NOW, "此刻在线的物联设备占全部设备的比例。",
                   "Share of the IoT devices that are online now."),
    "alarms": (NOW, "此刻处于告警状态的物联设备数。", "IoT devices in alarm now."),
}
LANGS = {"zh": 1, "en": 2}


def counts(key: str, lang: str, soon_hours: float) -> str:
    """What the figure ``key`` counts."""
    return GLOSSARY[key][LANGS[lang]].format(soon=f"{soon_hours:g}")


def tooltip(key: str, lang: str, soon_hours: float, period: str) -> str:
    """The card's tooltip: its label, what it counts and its period (``period``: the words
    of the chosen range, for flows)."""
    when = t("period.now", lang) if GLOSSARY[key][0] == NOW else period
    return (f"{t(f'kpi.{key}', lang)}{t('colon', lang)}{counts(key, lang, soon_hours)} "
            f"{t('period.of', lang)}{when}")


def markdown(soon_hours: float) -> str:
    """The glossary as the docs page ``docs/glossary.md``."""
    lines = ["# 指标说明 / What the figures count", "",
             "Generated from `dashboard/glossary.py` (`python -m dashboard.glossary > "
             "docs/glossary.md`); the dashboard's KPI cards show the same words as tooltips.",
             "",
             "- **此刻 / now**: the backlog and the devices, counted at the moment the view is "
             "read, whatever time range is chosen. They follow the scope, category, channel, "
             "status and map-box filters: the backlog of what is filtered.",
             "- **所选时段 / period**: flows, counted over the cases *reported* in the chosen "
             "range (today, 7 or 30 or 90 days, this year, all, or custom dates; local days).",
             f"- 即将超期 / due soon uses `ONEMAP_DUE_SOON_HOURS` (default {soon_hours:g}).", ""]
    for lang in LANGS:
        lines += [f"## {t('glossary.title', lang)}", "",
                  f"| {t('glossary.figure', lang)} | {t('glossary.period', lang)} | "
                  f"{t('glossary.counts', lang)} |", "|---|---|---|"]
        for key, (kind, *_) in GLOSSARY.items():
            when = t("period.now" if kind == NOW else "period.chosen", lang)
            lines.append(f"| {t(f'kpi.{key}', lang)} | {when} | "
                         f"{counts(key, lang, soon_hours)} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from onemap.settings import DUE_SOON_HOURS

    sys.stdout.write(markdown(DUE_SOON_HOURS))
