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
    "closure_rate": (PERIOD, "办结率：所选时段内上报的诉求中，已办结的比例（已办结 ÷ 诉求总量）。",
                     "Closure rate: of the cases reported in the period, the share closed."),
    "on_time_closure_rate": (PERIOD, "按期办结率：同按时办结率，所选时段内上报并已办结、可判定是否"
                                     "按时的诉求中，在办理时限内办结的比例；需要办理时限或按时标志。",
                             "On-time closure rate: as on-time closure, of the cases reported "
                             "in the period and closed whose timeliness is known, the share "
                             "closed by their deadline; needs a deadline or an on-time flag."),
    "same_day_closure_rate": (PERIOD, "当日办结率：同当日办结率，所选时段内上报并已办结的诉求中，"
                                      "上报当日（本地时间）办结的比例；需要办结时间。",
                              "Same-day closure rate: of the cases reported in the period and "
                              "closed, the share closed on the (local) day they were reported; "
                              "needs the closing time."),
    "within_3d_closure_rate": (PERIOD, "三日办结率：所选时段内上报并已办结的诉求中，上报后 72 小时"
                                       "内办结的比例；需要办结时间。",
                               "3-day closure rate: of the cases reported in the period and "
                               "closed, the share closed within 72 hours; needs the closing "
                               "time."),
    "satisfied_rate": (PERIOD, "满意率：所选时段内上报并已评价的诉求中，满意度为 4 或 5 分（满意、"
                               "非常满意）的比例；3 分为基本满意，不计入满意；需要满意度。",
                       "Satisfied rate: of the cases reported in the period and rated, the "
                       "share rated 4 or 5 (satisfied); 3 is neutral and not counted as "
                       "satisfied; needs the satisfaction score."),
    "accept_notified_rate": (PERIOD, "受理告知率：受理后告知诉求人的诉求所占比例。需要案件映射字段 "
                                     "accept_notified_at（受理告知时间，尚未提供）：未映射时显示为"
                                     "不可用。",
                             "Acceptance notice rate: the share of cases whose reporter was "
                             "told of the acceptance. Needs the case mapping field "
                             "accept_notified_at (not offered yet): not available without it."),
    "handle_notified_rate": (PERIOD, "办理告知率：办理结果告知诉求人的诉求所占比例。需要案件映射"
                                     "字段 handle_notified_at（办理告知时间，尚未提供）：未映射时"
                                     "显示为不可用。",
                             "Handling notice rate: the share of cases whose reporter was told "
                             "the outcome. Needs the case mapping field handle_notified_at "
                             "(not offered yet): not available without it."),
    "instant_answer_rate": (PERIOD, "即时答复率：当即答复（秒回）的诉求所占比例。需要案件映射字段 "
                                    "answered_at（首次答复时间，尚未提供）：未映射时显示为不可用。",
                            "Instant answer rate: the share of cases answered at once. Needs "
                            "the case mapping field answered_at (not offered yet): not "
                            "available without it."),
    "repeat_rate": (PERIOD, "重复件率：重复诉求所占比例。需要案件映射字段 repeat_of（所重复的"
                            "诉求编号，尚未提供）：未映射时显示为不可用。",
                    "Repeat rate: the share of cases repeating an earlier one. Needs the case "
                    "mapping field repeat_of (not offered yet): not available without it."),
    "unsatisfied": (PERIOD, "不满意件：所选时段内上报、满意度为 1 或 2 分的诉求，最新在前。",
                    "Not satisfied: the cases reported in the period rated 1 or 2, newest "
                    "first."),
    "rank_received": (PERIOD, "承办单位受理量：所选时段内上报、由该单位承办的诉求数。",
                      "Received: cases reported in the period that the unit handles."),
    "rank_closed": (PERIOD, "承办单位办结量：其中已办结的数量。",
                    "Closed: of those, the cases closed."),
    "rank_on_time_rate": (PERIOD, "承办单位按期办结率：其中已办结、可判定是否按时的诉求中按时办结的"
                                  "比例。",
                          "On time: of those closed whose timeliness is known, the share "
                          "closed by their deadline."),
    "rank_median_hours": (PERIOD, "承办单位办理时长中位数：其中已办结诉求从上报到办结的时长"
                                  "中位数。",
                          "Median time: of those closed, the median time from report to "
                          "closure."),
    "rank_overdue": (NOW, "承办单位超期：此刻由该单位承办、在办且已超过办理时限的诉求数（不随时间"
                          "范围变化）。",
                     "Overdue: cases the unit handles that are open now past their deadline "
                     "(whatever the time range)."),
    "rank_satisfied_rate": (PERIOD, "承办单位满意率：其中已评价诉求评 4 或 5 分的比例。",
                            "Satisfied: of those rated, the share rated 4 or 5."),
    "rank_satisfaction": (PERIOD, "承办单位满意度：其中已评价诉求的平均分（1–5）。",
                          "Satisfaction: of those rated, the mean score (1 to 5)."),
    "rank_supervised": (NOW, "承办单位督办·提醒：在本范围内对该单位（或对其承办的诉求，按当时的承办"
                             "单位）所作督办与提醒的次数，不论何时所作，不随筛选变化。",
                        "Urged: the 督办 (supervise) and 提醒 (remind) made in this scope on "
                        "the unit, or on a case it handled then, at any time, whatever the "
                        "filters."),
    "merge_cases": (PERIOD, "所选时段内上报的诉求数，同一事件的多次反映各计一件。",
                    "Cases reported in the chosen period, each report of an event counted."),
    "merge_events": (PERIOD, "所选时段内上报的诉求数，不计已确认并案的重复件：确认并案的事件只按"
                             "其首报工单计一件（驳回的建议不影响计数）。",
                     "Cases reported in the chosen period without the duplicates of confirmed "
                     "merges: a confirmed event counts once, as its first report (a rejected "
                     "suggestion changes nothing)."),
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
    "alarms": (NOW, "此刻处于告警状态的物联设备数；“未确认”为其中尚无人确认（或转工单）的告警数。",
               "IoT devices in alarm now; \"not acknowledged\": those whose alarm nobody has "
               "acknowledged (or dispatched as a case) yet."),
}
LANGS = {"zh": 1, "en": 2}
# The flows' comparisons and the weekday × hour grid (``layers.comparison``,
# ``layers.case_query.CaseQuery.weekday_hours``): name -> (zh, en).
COMPARISONS: dict[str, tuple[str, str]] = {
    "previous": ("环比：与紧邻所选时段之前、长度相同（本地自然日天数相同）的上一时段相比。",
                 "vs prev.: against the period of equal length (the same number of local "
                 "days) right before the chosen one."),
    "year_before": ("同比：与上一年的同一时段（相同的月、日）相比；2 月 29 日对应上一年的 2 月 "
                    "28 日。",
                    "vs yr ago: against the same days (month and day) one year before; 29 "
                    "February stands for 28 February of that year."),
    "change": ("诉求总量、已办结与办理时长中位数的变化按对比期的百分比计，各办结率按百分点计，"
               "满意度按分差计；▲ 上升、▼ 下降，绿色为向好（办结率、满意度升高，办理时长缩短），"
               "红色为变差，诉求量与办结量不分好坏（灰色）。对比期为 0 或无从计算比率时只说明"
               "情况，不写 +∞% 或 0。",
               "Cases, closed and the median handling time change as a percentage of the "
               "compared figure, the closure rates in percentage points, satisfaction as a "
               "difference of score; ▲ up, ▼ down, green better (higher rates and "
               "satisfaction, shorter handling), red worse; cases and closed are neither "
               "(grey). A compared figure of 0, or a rate with nothing to divide by, is said "
               "as such, never as +∞% or 0."),
    "none": ("不比较：时段不限起止（如“全部”）、时段不是整日，或对比时段早于数据的第一天（显示"
             "“无同期数据”/“无上期数据”，而不是 0）。积压（在办、超期未办结、即将超期）是此刻的"
             "存量，不作时段比较。",
             "Not compared: an open range (such as all), a period of part days, or a compared "
             "period beginning before the data's first day (shown as no data, not as 0). The "
             "backlog (open, overdue, due soon) is a stock now and has no period to compare."),
    "weekday_hours": ("报件时段分布：所选时段与筛选条件下的诉求，按上报时间的本地星期（周一至"
                      "周日）与小时（0–23 时）计数，共 7 × 24 格（ONEMAP_TIMEZONE 时区）。",
                      "Reports by weekday and hour: the cases of the chosen period and "
                      "filters counted by the local weekday (Monday to Sunday) and hour (0–23) "
                      "they were reported at, 7 × 24 cells (in ONEMAP_TIMEZONE)."),
}


def counts(key: str, lang: str, soon_hours: float) -> str:
    """What the figure ``key`` counts."""
    return GLOSSARY[key][LANGS[lang]].format(soon=f"{soon_hours:g}")


def tooltip(key: str, lang: str, soon_hours: float, period: str) -> str:
    """The card's tooltip: its label, what it counts and its period (``period``: the words
    of the chosen range, for flows)."""
    when = t("period.now", lang) if GLOSSARY[key][0] == NOW else period
    return (f"{t(f'kpi.{key}', lang)}{t('colon', lang)}{counts(key, lang, soon_hours)} "
            f"{t('period.of', lang)}{when}")


def comparing(lang: str) -> str:
    """The flows' tooltips on what 环比 and 同比 compare with."""
    return " ".join(COMPARISONS[key][LANGS[lang] - 1] for key in ("previous", "year_before"))


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
        lines += ["", f"### {t('compare.previous', lang)} · {t('compare.year_before', lang)}"
                      f" · {t('chart.weekday_hours', lang)}", ""]
        lines += [f"- {words[LANGS[lang] - 1]}" for words in COMPARISONS.values()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from onemap.settings import DUE_SOON_HOURS

    sys.stdout.write(markdown(DUE_SOON_HOURS))
