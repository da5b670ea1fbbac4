"""Every label the UI shows, in Chinese (default) and English: the one message table."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from layers.errors import Forbidden
from onemap.database import waited_for_a_load

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh": "一张图", "en": "One Map"},
    "app.subtitle": {"zh": "基层治理一张图", "en": "One-map governance"},
    "empty.title": {"zh": "尚未加载数据", "en": "No data loaded yet"},
    "empty.body": {
        "zh": "数据库中还没有行政区划。请在项目目录运行 make demo 生成并加载演示城市。",
        "en": "The database holds no admin units yet. Run make demo in the project folder "
              "to generate and load the demo city.",
    },
    "db.down": {"zh": "数据库不可用，正在自动重试…", "en": "Database unavailable, retrying…"},
    "db.loading": {"zh": "正在入库一批数据，完成后自动刷新…",
                   "en": "A data load is being committed; the page refreshes when it is done…"},
    "error.generic": {"zh": "出现错误，请稍后再试。", "en": "Something went wrong; try again."},
    "level.1": {"zh": "区", "en": "District"},
    "level.2": {"zh": "街道", "en": "Street"},
    "level.3": {"zh": "社区", "en": "Community"},
    "level.4": {"zh": "网格", "en": "Grid"},
    "kpi.total": {"zh": "诉求总量", "en": "Cases"},
    "kpi.open": {"zh": "在办", "en": "Open"},
    "kpi.overdue": {"zh": "超期未办结", "en": "Overdue"},
    "kpi.due_soon": {"zh": "即将超期", "en": "Due soon"},
    "kpi.stages": {"zh": "在办环节", "en": "Open by stage"},
    "kpi.group.now": {"zh": "积压 · 此刻", "en": "Backlog · now"},
    "kpi.group.period": {"zh": "时段流量 · {period}", "en": "Flows · {period}"},
    "period.now": {"zh": "此刻（不随时间范围变化）", "en": "now (whatever the time range)"},
    "period.of": {"zh": "统计时段：", "en": "Period: "},
    "period.chosen": {"zh": "所选时段", "en": "chosen period"},
    "period.to": {"zh": " 至 ", "en": " to "},
    "colon": {"zh": "：", "en": ": "},
    "glossary.title": {"zh": "指标说明", "en": "What the figures count"},
    "glossary.figure": {"zh": "指标", "en": "Figure"},
    "glossary.period": {"zh": "时段", "en": "Period"},
    "glossary.counts": {"zh": "统计内容", "en": "Counts"},
    "due.overdue": {"zh": "超期 {span}", "en": "{span} overdue"},
    "due.due_soon": {"zh": "剩 {span}", "en": "{span} left"},
    "span.days": {"zh": "{d}天{h}小时", "en": "{d} d {h} h"},
    "span.hours": {"zh": "{h}小时", "en": "{h} h"},
    "span.minutes": {"zh": "{m}分钟", "en": "{m} min"},
    "cases.order.latest": {"zh": "最新诉求", "en": "Newest"},
    "cases.order.overdue": {"zh": "积压（最超期在前）", "en": "Backlog, most overdue first"},
    "col.due": {"zh": "时限", "en": "Due"},
    "bigscreen.period": {"zh": "统计时段：{period} · 积压为此刻",
                         "en": "Period: {period} · backlog now"},
    "kpi.closed": {"zh": "已办结", "en": "Closed"},
    "kpi.on_time_rate": {"zh": "按时办结率", "en": "On-time closure"},
    "kpi.same_day_rate": {"zh": "当日办结率", "en": "Same-day closure"},
    "kpi.within_3d_rate": {"zh": "3日办结率", "en": "3-day closure"},
    "kpi.median_hours": {"zh": "办理时长中位数", "en": "Median handling"},
    "kpi.satisfaction": {"zh": "满意度", "en": "Satisfaction"},
    "kpi.iot_online": {"zh": "设备在线率", "en": "Devices online"},
    "kpi.alarms": {"zh": "设备告警", "en": "Device alarms"},
    "unit.hours": {"zh": "小时", "en": "h"},
    "filter.range": {"zh": "时间", "en": "Time"},
    "range.today": {"zh": "今日", "en": "Today"},
    "range.7d": {"zh": "近7天", "en": "7 days"},
    "range.30d": {"zh": "近30天", "en": "30 days"},
    "range.90d": {"zh": "近90天", "en": "90 days"},
    "range.year": {"zh": "本年", "en": "This year"},
    "range.all": {"zh": "全部", "en": "All"},
    "range.custom": {"zh": "自定义", "en": "Custom"},
    "filter.category": {"zh": "诉求分类", "en": "Category"},
    "filter.subcategory": {"zh": "二级分类", "en": "Subcategory"},
    "filter.channel": {"zh": "渠道", "en": "Channel"},
    "filter.status": {"zh": "状态", "en": "Status"},
    "status.open": {"zh": "在办", "en": "Open"},
    "status.closed": {"zh": "已办结", "en": "Closed"},
    "status.overdue": {"zh": "超期", "en": "Overdue"},
    "filter.any": {"zh": "全部", "en": "All"},
    "layers.title": {"zh": "图层", "en": "Layers"},
    "layer.units": {"zh": "区划着色", "en": "Units by metric"},
    "layer.hexbins": {"zh": "诉求热力(六边形)", "en": "Case hex bins"},
    "layer.cases": {"zh": "诉求点位", "en": "Case points"},
    "layer.facilities": {"zh": "公共设施", "en": "Facilities"},
    "layer.iot": {"zh": "物联设备", "en": "IoT devices"},
    "layer.hotspots": {"zh": "热点网格", "en": "Hotspot grids"},
    "metric.title": {"zh": "着色指标", "en": "Colour by"},
    "metric.total": {"zh": "诉求量", "en": "Cases"},
    "metric.open": {"zh": "在办量", "en": "Open"},
    "metric.overdue": {"zh": "超期量", "en": "Overdue"},
    "metric.on_time_rate": {"zh": "按时办结率", "en": "On-time rate"},
    "metric.per_km2": {"zh": "每平方公里诉求", "en": "Cases per km²"},
    "chart.trend.day": {"zh": "诉求趋势（按日）", "en": "Cases per day"},
    "chart.trend.week": {"zh": "诉求趋势（按周）", "en": "Cases per week"},
    "chart.trend.partial": {"zh": " · ○ 不完整周", "en": " · ○ partial week"},
    "trend.partial_week": {"zh": "（不完整周：{days} 天）", "en": "(partial week: {days} days)"},
    "chart.categories": {"zh": "高发诉求分类", "en": "Top categories"},
    "chart.channels": {"zh": "渠道构成", "en": "Channels"},
    "chart.resolution": {"zh": "解决层级", "en": "Resolved at"},
    "resolution.grid": {"zh": "网格", "en": "Grid"},
    "resolution.community": {"zh": "社区", "en": "Community"},
    "resolution.street": {"zh": "街道", "en": "Street"},
    "resolution.district": {"zh": "区", "en": "District"},
    "table.cases": {"zh": "最新诉求", "en": "Latest cases"},
    "table.hotspots": {"zh": "热点", "en": "Hotspots"},
    "table.alarms": {"zh": "设备告警", "en": "IoT alarms"},
    "col.id": {"zh": "编号", "en": "ID"},
    "col.reported_at": {"zh": "上报时间", "en": "Reported"},
    "col.category": {"zh": "分类", "en": "Category"},
    "col.status": {"zh": "状态", "en": "Status"},
    "col.where": {"zh": "位置", "en": "Where"},
    "col.cases": {"zh": "诉求数", "en": "Cases"},
    "col.trend": {"zh": "趋势", "en": "Trend"},
    "col.device": {"zh": "设备", "en": "Device"},
    "col.alarm_since": {"zh": "告警时间", "en": "Alarm since"},
    "col.duration": {"zh": "已持续", "en": "For"},
    "duration.dh": {"zh": "{d}天{h}小时", "en": "{d} d {h} h"},
    "duration.hm": {"zh": "{h}小时{m}分", "en": "{h} h {m} min"},
    "duration.m": {"zh": "{m}分钟", "en": "{m} min"},
    "list.all": {"zh": "共 {total:,} 条", "en": "{total:,} in all"},
    "list.shown": {"zh": "显示 {shown:,} / 共 {total:,}", "en": "Showing {shown:,} of {total:,}"},
    "list.hotspots_off": {"zh": "热点按需计算：请在“图层”中打开“热点网格”",
                          "en": "Hotspots are computed on demand: switch on Hotspot grids"},
    "map.shown": {"zh": "{layer}：显示 {shown:,} / 共 {total:,}",
                  "en": "{layer}: showing {shown:,} of {total:,}"},
    "map.binned": {"zh": "{layer}：{total:,} 件按 {bins:,} 个六边形汇总，圆点越大件数越多",
                   "en": "{layer}: {total:,} cases in {bins:,} hexagons, larger dots for more"},
    "map.none": {"zh": "{layer}：当前筛选下没有数据",
                 "en": "{layer}: nothing matches these filters"},
    "map.unlocated": {"zh": "；另有 {n:,} 条无坐标，未上图",
                      "en": "; {n:,} more have no location and are not on the map"},
    "map.focus": {"zh": "选中设备", "en": "Selected device"},
    "layer.cases_binned": {"zh": "诉求点位(汇总)", "en": "Cases (binned)"},
    "unit.cases": {"zh": "件", "en": "cases"},
    "trend.persistent": {"zh": "持续热点", "en": "Persistent"},
    "trend.emerging": {"zh": "新兴热点", "en": "Emerging"},
    "trend.fading": {"zh": "消退热点", "en": "Fading"},
    "hotspots.note": {"zh": "Getis-Ord Gi*：每个网格与全区所有网格比较，"
                            "错误发现率 {alpha}（Benjamini–Hochberg）；"
                            "所选时段无案件的网格不算热点；趋势比较时段前后两半。",
                      "en": "Getis-Ord Gi*: every grid is compared with all of the "
                            "district's grids, false discovery rate {alpha} "
                            "(Benjamini–Hochberg); a grid with no case in the period is never "
                            "hot; the trend compares the period's two halves."},
    "detail.title": {"zh": "诉求详情", "en": "Case detail"},
    "stage.reported_at": {"zh": "上报", "en": "Reported"},
    "stage.accepted_at": {"zh": "受理", "en": "Accepted"},
    "stage.dispatched_at": {"zh": "分拨", "en": "Dispatched"},
    "stage.handled_at": {"zh": "处置", "en": "Handled"},
    "stage.feedback_at": {"zh": "反馈", "en": "Feedback"},
    "stage.closed_at": {"zh": "办结", "en": "Closed"},
    "stage.evaluated_at": {"zh": "评价", "en": "Evaluated"},
    "stage.deadline": {"zh": "办理时限", "en": "Deadline"},
    "export.title": {"zh": "导出当前图层", "en": "Export this view"},
    "export.png": {"zh": "地图截图(PNG)：地图右上角相机按钮",
                   "en": "Map PNG: the camera button on the map"},
    "empty.view": {"zh": "当前筛选条件下没有数据", "en": "Nothing matches these filters"},
    "lang.switch": {"zh": "English", "en": "中文"},
    "asof": {"zh": "数据截至", "en": "Data as of"},
    "feed.cases": {"zh": "诉求", "en": "cases"},
    "feed.iot": {"zh": "设备", "en": "devices"},
    "stale.cases": {"zh": "诉求数据已{age}未更新：最新一条上报于 {newest}，图表只反映到那时为止",
                    "en": "No new case for {age}: the newest was reported at {newest}; the "
                          "figures show nothing after it"},
    "stale.iot": {"zh": "设备数据已{age}未上报：最新一条于 {newest}，设备视为离线",
                  "en": "No device has reported for {age} (last at {newest}); devices count "
                        "as offline"},
    "age.ago": {"zh": "{age}前", "en": "{age} ago"},
    "elsewhere.none": {"zh": "所选时间内没有诉求；最新一条上报于 {newest}",
                       "en": "No case in this period; the newest was reported at {newest}"},
    "elsewhere.go": {"zh": "查看{range}", "en": "Show {range}"},
    "col.last_seen": {"zh": "最后上报", "en": "Last report"},
    "bigscreen.title": {"zh": "城市运行指挥中心", "en": "City operations centre"},
    "bigscreen.ticker": {"zh": "最新超期与告警", "en": "New overdue cases and alarms"},
    "device.online": {"zh": "在线", "en": "online"},
    "device.offline": {"zh": "离线", "en": "offline"},
    "device.alarm": {"zh": "告警", "en": "alarm"},
    "login.title": {"zh": "请登录", "en": "Please sign in"},
    "login.name": {"zh": "用户名", "en": "User name"},
    "login.password": {"zh": "密码", "en": "Password"},
    "login.submit": {"zh": "登录", "en": "Sign in"},
    "login.wrong": {"zh": "用户名或密码错误，或账号已停用", "en":
                    "Wrong user name or password, or the account is disabled"},
    "login.locked": {"zh": "失败次数过多，请 {seconds} 秒后再试",
                     "en": "Too many failed attempts; try again in {seconds} s"},
    "logout": {"zh": "退出", "en": "Sign out"},
    "detail.reporter": {"zh": "诉求人", "en": "Reporter"},
    "detail.placed": {"zh": "定位到", "en": "Placed in"},
    "detail.by_point": {"zh": "按坐标", "en": "by its coordinates"},
    "detail.by_code": {"zh": "按编码或名称（无坐标）", "en": "by code or name (no coordinates)"},
    "kpi.above_grid": {"zh": "其中 {n} 件无坐标、只定位到网格以上（社区、街道或区），"
                             "不计入任何网格",
                       "en": "{n} of them have no coordinates and are placed above the grids "
                             "(in a community, street or district), not in any grid"},
    "access.denied": {"zh": "无权查看该范围的数据", "en": "You may not see data of that area"},
}

LANGUAGES = ("zh", "en")


def t(key: str, lang: str = "zh") -> str:
    """The label ``key`` in ``lang``; an unknown key shows itself rather than failing."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["zh"]


def user_message(exc: Exception, lang: str = "zh") -> str:
    """The one place where errors become words on the screen (never a traceback)."""
    if waited_for_a_load(exc):
        return t("db.loading", lang)
    if isinstance(exc, OperationalError | DBAPIError):
        return t("db.down", lang)
    if isinstance(exc, Forbidden):
        return t("access.denied", lang)
    return t("error.generic", lang)
