"""民生诉求 cases of the demo city: a CSV like a real 坪山 export, plus the truth behind it.

Sizes: S ≈ 50k cases over 12 months, M ≈ 1M and L ≈ 10M over 24 months, all ending at the
reference time ``as_of`` (the moment of the export, local wall-clock time: ``onemap demo``
passes now, so the newest cases are minutes old; tests and benches pin it). Its own day is
cut at ``as_of`` and gets the share of a day's reports that its hours so far hold. Rows are
written in order of 上报时间, in chunks of about 100k rows (whole days), so memory stays flat
at any size; the output is the same for the same size, seed and ``as_of``.

What is true in the data, so the dashboard has something real to find:

* channel, category, case-type and resolution-level shares follow ``catalog``;
* places are a background weighted by the grids' density, plus hotspots — persistent ones,
  emerging ones that grow over the period and fading ones that die out — each dominated by
  one third-level category; ``<name>.truth.json`` next to the CSV lists them;
* reports peak 9–11h and 14–17h, are rare at night, and drop at weekends and Spring Festival;
* every case runs 上报 → 受理 → 分拨 → 处置 → 反馈 → 办结 → 评价 in order; ~90.8 % close within
  their deadline; cases whose next stage lies after ``as_of`` are still open (处理中), the late
  ones among them overdue then; of the cases open a day after their report, about 5 % were
  never accepted and 8 % never dispatched (stuck at 受理 / 分拨; ``STUCK_PERCENT``);
* ~3 % of rows carry only 社区编码 (no coordinates), as hotline cases often do;
* cases resolved at the grid level, once dispatched, name their 处置人: one of their grid's
  own workers in the roster (``democity.roster``), picked by the report time;
* ~1 % of rows report again, through another channel, an event reported hours before
  (``democity.duplicates``); ``<name>.duplicates.csv`` beside the CSV says which;
* every 500th row (offset 250) is deliberately bad, cycling through six reasons; the truth
  file counts them by reason and by the field the loader will name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from democity import catalog, duplicates
from democity.roster import Roster, build_roster
from democity.sampling import (
    ADDRESSES_PER_GRID,
    KM_PER_DEG_LAT,
    CsvSink,
    District,
    address_pool,
    choice,
    district,
    epoch,
    gazetteer,
    grids_near,
    locate,
    points_in_grids,
    rng,
    text_schema,
    time_text,
)

SIZES = {"S": 50_000, "M": 1_000_000, "L": 10_000_000}
MONTHS = {"S": 12, "M": 24, "L": 24}
CHUNK_ROWS = 100_000
HOUR, DAY = 3600, 86400

COLUMNS = ["工单编号", "渠道", "诉求类型", "一级分类", "二级分类", "三级分类", "四级分类",
           "标题", "诉求内容", "地址", "上报时间", "受理时间", "分拨时间", "处置时间",
           "反馈时间", "办结时间", "评价时间", "办理时限", "承办单位", "办理状态", "满意度",
           "解决层级", "姓名", "电话", "经度", "纬度", "社区编码", "处置人"]
SCHEMA = text_schema(COLUMNS, {"经度": pa.float64(), "纬度": pa.float64(), "满意度": pa.int8()})
# Of the cases open a day after their report, the share (%) stuck at 受理 and at 分拨.
STUCK_PERCENT = {"accepted": 5, "dispatched": 8}
TIME_COLUMNS = ("受理时间", "分拨时间", "处置时间", "反馈时间", "办结时间", "评价时间")

# Reports per hour of day (0-23): busy mornings and afternoons, quiet nights.
HOUR_WEIGHTS = np.array([0.8, 0.5, 0.35, 0.3, 0.3, 0.5, 1.2, 2.5, 4.5, 7.0, 7.5, 6.5,
                         4.0, 4.0, 6.0, 6.5, 6.3, 5.0, 3.5, 3.0, 2.8, 2.4, 1.8, 1.2])
WEEKDAY_FACTOR = np.array([1.08, 1.05, 1.02, 1.0, 0.97, 0.72, 0.68])    # Monday first
SPRING_FESTIVALS = ("2024-02-10", "2025-01-29", "2026-02-17")
HOTLINES = ("12345", "12319", "固话投诉")     # answered round the clock; others wait for 8:00

# Hotspots: (kind, how many, exponent of the density weight that picks their grids).
HOTSPOT_PLAN = (("persistent", 5, 1.5), ("emerging", 4, 0.5), ("fading", 3, 1.0))
HOTSPOT_TEMPLATES = {
    "persistent": (("市容环卫", "占道经营", "流动摊贩"), ("市容环卫", "生活垃圾", "垃圾清运不及时"),
                   ("环境保护", "噪声污染", "社会生活噪声"), ("城市管理", "占道停车", "人行道停车"),
                   ("交通运输", "道路拥堵", "学校周边拥堵")),
    "emerging": (("环境保护", "噪声污染", "施工噪声"), ("城市管理", "违法建设", "新建违建"),
                 ("市容环卫", "渣土运输", "泥头车撒漏"), ("公共安全", "电动车安全", "飞线充电"),
                 ("水务管理", "内涝积水", "道路积水")),
    "fading": (("市容环卫", "城中村环境", "城中村脏乱差"), ("环境保护", "大气污染", "餐饮油烟"),
               ("市容环卫", "乱堆乱放", "建筑垃圾乱倒"), ("城市管理", "共享单车", "单车乱停放")),
}
HOTSPOT_IN_CATEGORY = 0.7      # share of a hotspot's cases in its own category
HOTSPOT_MIN_SPACING_KM = 1.5

# Deliberately bad rows: every BAD_EVERY-th row from BAD_OFFSET, reasons in this order.
BAD_EVERY, BAD_OFFSET = 500, 250
BAD_KINDS = (("bad_date", "reported_at"), ("unknown_status", "status"),
             ("missing_category", "category_1"), ("far_outside", "geometry"),
             ("swapped", "geometry"), ("duplicate_id", "id"))
BAD_DATE = "0000-00-00 00:00:00"
BAD_STATUS = "待核实"
FAR_POINTS = np.array([(0.0, 0.0), (116.4074, 39.9042), (121.4737, 31.2304)])
STATUS_NAMES = pa.array([catalog.STATUS_CLOSED, *catalog.STATUS_OPEN])
LEVEL_NAMES = pa.array(list(catalog.RESOLUTION_LEVELS))


@dataclass(frozen=True)
class Hotspot:
    id: str
    kind: str
    x: float
    y: float
    radius_m: float
    grid: int
    category: tuple[str, str, str]
    leaves: np.ndarray        # leaf indices of its third-level category
    leaf_p: np.ndarray
    share: float              # mean share of all cases
    profile: np.ndarray       # relative intensity per day, mean 1
    candidates: np.ndarray    # grids it can reach


@dataclass(frozen=True)
class Plan:
    """Everything decided once per (district, size, seed) before rows are drawn."""

    n: int
    start: int                 # local epoch seconds of the first day
    now: int                   # local epoch seconds of the reference time (the export)
    cutoff: int                # seconds of the last day before ``now`` (DAY: a whole day)
    days: np.ndarray           # date of each day
    day_counts: np.ndarray
    comp_cum: np.ndarray       # (days, 1 + hotspots) cumulative component probabilities
    hotspots: list[Hotspot]
    bg_leaf_p: np.ndarray      # leaf probabilities of background cases
    channel_cum: np.ndarray    # (tops, channels) cumulative P(channel | top)
    units: np.ndarray          # unit names
    comm_unit: np.ndarray      # unit index of each community's 工作站
    street_unit: np.ndarray    # (streets, tops) unit index of the street department
    district_units: list[tuple[np.ndarray, np.ndarray]]   # per top: unit indices, probs
    roster: Roster             # the grid workers: who handles a grid-level case


def case_count(size: str) -> int:
    return SIZES[size.upper()]


def period(size: str, as_of: np.datetime64) -> tuple[np.datetime64, np.datetime64]:
    """First day and the (exclusive) end of the period of a size ending at ``as_of``."""
    end = np.datetime64(as_of, "s")
    start = pd.Timestamp(end) - pd.DateOffset(months=MONTHS[size.upper()])
    return np.datetime64(start.normalize(), "s"), end


def write_cases(grids, communities, streets, size: str, seed: int, path: str | Path,
                progress: Callable[[int], None] | None = None,
                n_cases: int | None = None, *, as_of: np.datetime64) -> dict:
    """Write the cases CSV and ``<stem>.truth.json`` beside it; return the truth.

    ``as_of`` is the reference time (naive local): every case is reported before it and
    open or closed as it stands then. ``n_cases`` overrides the size's row count (the
    period stays the size's), for tests. ``progress`` is called after each chunk with the
    number of rows just written.
    """
    d = district(grids, communities, streets, seed)
    plan = make_plan(d, size, seed, as_of, n_cases)
    stats = _Stats(len(plan.hotspots), len(d.grid_code))
    with CsvSink(path, SCHEMA) as sink:
        for columns in _chunks(d, plan, seed, stats):
            sink.write(columns)
            if progress:
                progress(len(columns["工单编号"]))
    truth = _truth(d, plan, size, seed, stats)
    duplicates.write_truth(duplicates.truth_path(path), stats.duplicates)
    truth_path(path).write_text(json.dumps(truth, ensure_ascii=False, indent=1),
                                encoding="utf-8")
    return truth


def truth_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}.truth.json")


# -- the plan ---------------------------------------------------------------------------------
def make_plan(d: District, size: str, seed: int, as_of: np.datetime64,
              n_cases: int | None = None) -> Plan:
    """Daily counts, hotspots, category and channel tables for a run ending at ``as_of``."""
    n = int(n_cases if n_cases is not None else case_count(size))
    first, end = period(size, as_of)
    # Up to the day holding the period's last second: a reference time at midnight ends
    # with the whole day before it, any other with its own day, cut at that time.
    days = np.arange(first.astype("datetime64[D]"),
                     (end - np.timedelta64(1, "s")).astype("datetime64[D]") + 1)
    cutoff = int((end - days[-1].astype("datetime64[s]")).astype("int64"))
    gen = rng(seed, "cases-plan")
    day_p = _day_weights(days, gen)
    day_p[-1] *= _elapsed(cutoff)
    day_p /= day_p.sum()
    day_counts = gen.multinomial(n, day_p)
    hotspots = _hotspots(d, seed, day_p)
    comp = np.column_stack([np.zeros(len(days))] + [h.share * h.profile for h in hotspots])
    comp[:, 0] = 1.0 - comp[:, 1:].sum(axis=1)
    lv = catalog.leaves()
    return Plan(n, epoch(first), epoch(end), cutoff, days, day_counts, np.cumsum(comp, axis=1),
                hotspots, _background_leaves(lv, hotspots), _channel_given_top(), *_units(d),
                build_roster(d, seed))


def _elapsed(cutoff: int) -> float:
    """The share of a day's reports made in its first ``cutoff`` seconds, by the hours'
    rhythm: 1 for a whole day."""
    hours = np.clip((cutoff - np.arange(24) * HOUR) / HOUR, 0, 1)
    return float(np.dot(HOUR_WEIGHTS, hours) / HOUR_WEIGHTS.sum())


def _day_weights(days: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Weekly rhythm, a summer high, the Spring Festival low, slow growth, daily noise."""
    weekday = (days.astype("int64") + 3) % 7          # 1970-01-01 was a Thursday
    month_pos = (days.astype("datetime64[M]").astype(int) % 12 + 0.5) / 12
    season = 1 + 0.12 * np.cos(2 * np.pi * (month_pos - 6.5 / 12))
    festival = np.ones(len(days))
    for day in SPRING_FESTIVALS:
        offset = (days - np.datetime64(day)).astype(int)
        festival[(offset >= -2) & (offset <= 6)] = 0.55
    trend = 1 + 0.08 * np.arange(len(days)) / 365
    noise = gen.gamma(50, 1 / 50, len(days))
    return WEEKDAY_FACTOR[weekday] * season * festival * trend * noise


def _hotspots(d: District, seed: int, day_p: np.ndarray) -> list[Hotspot]:
    gen = rng(seed, "hotspots")
    lv = catalog.leaves()
    u = np.linspace(0, 1, len(day_p))
    spots: list[Hotspot] = []
    for kind, count, exponent in HOTSPOT_PLAN:
        templates = HOTSPOT_TEMPLATES[kind]
        for t in gen.permutation(len(templates))[:count]:
            g, x, y = _spaced_centre(d, spots, exponent, gen)
            radius = float(gen.uniform(250, 450) if kind == "persistent" else
                           gen.uniform(200, 380))
            if kind == "persistent":
                profile, share = np.ones(len(u)), gen.uniform(0.012, 0.02)
            else:
                sign = 1 if kind == "emerging" else -1
                u0 = gen.uniform(0.5, 0.7) if kind == "emerging" else gen.uniform(0.3, 0.5)
                profile, share = 1 / (1 + np.exp(-sign * (u - u0) / 0.07)), gen.uniform(0.008,
                                                                                       0.012)
            profile = profile / np.dot(profile, day_p)
            cat = templates[t]
            leaves = np.flatnonzero((lv.l1 == cat[0]) & (lv.l2 == cat[1]) & (lv.l3 == cat[2]))
            spots.append(Hotspot(
                f"H{len(spots) + 1:02d}", kind, x, y, round(radius), g, cat, leaves,
                lv.p[leaves] / lv.p[leaves].sum(), float(share), profile,
                grids_near(d, x, y, 1.5 * radius / 1000)))
    return spots


def _spaced_centre(d: District, spots: list[Hotspot], exponent: float, gen):
    """A centre in a grid weighted by density**exponent, away from earlier hotspots."""
    w = d.weight ** exponent
    best = None
    for _ in range(200):
        g = int(choice(w, 1, gen)[0])
        x, y = points_in_grids(d, np.array([g]), gen)
        gap = min((float(d.km(x[0] - h.x, y[0] - h.y)) for h in spots), default=np.inf)
        if best is None or gap > best[0]:
            best = (gap, g, float(x[0]), float(y[0]))
        if gap >= HOTSPOT_MIN_SPACING_KM:
            break
    return best[1:]


def _background_leaves(lv: catalog.Leaves, hotspots: list[Hotspot]) -> np.ndarray:
    """Leaf probabilities for background cases so that all cases meet the top shares."""
    target = np.array([catalog.TOP_CATEGORIES[t][0] for t in catalog.TOP_NAMES])
    spot_total = sum(h.share for h in hotspots)
    from_spots = spot_total * (1 - HOTSPOT_IN_CATEGORY) * target
    for h in hotspots:
        from_spots[catalog.TOP_NAMES.index(h.category[0])] += h.share * HOTSPOT_IN_CATEGORY
    background = (target - from_spots) / (1 - spot_total)
    if np.any(background < 0):
        raise ValueError("hotspots take more of a category than its share")
    p = lv.p * (background / target)[lv.top]
    return p / p.sum()


# Affinity of channels (columns, in catalog.CHANNELS order) for top categories: 12319 and
# 美丽深圳 are the 城管 channels, 政府信箱 takes planning and government matters, 12345 labour,
# social and education ones.
_AFFINITY = {
    "市容环卫": (1, 2.0, 0.5, 3.0, 0.3, 1), "城市管理": (1, 2.0, 0.6, 3.0, 0.5, 1),
    "环境保护": (1, 1.2, 1.0, 1.2, 1.0, 1.2), "水务管理": (1, 1.0, 1.0, 1.5, 0.5, 1),
    "劳动保障": (1, 0.3, 3.0, 0.2, 2.0, 1), "政务服务": (1, 0.3, 3.0, 0.2, 3.0, 1),
    "民政服务": (1, 0.3, 3.0, 0.2, 1.5, 1), "教育卫生": (1, 0.4, 2.5, 0.2, 1.5, 1),
    "住房建设": (1, 0.6, 2.0, 0.5, 2.0, 1), "市场监管": (1, 0.4, 2.0, 0.2, 1.0, 1),
    "规划国土": (1, 0.5, 2.0, 0.3, 4.0, 1), "其他": (1, 0.5, 1.5, 0.3, 3.0, 1),
    "治安管理": (1, 0.5, 1.0, 0.3, 1.0, 1.5), "消防安全": (1, 0.8, 1.0, 0.5, 1.0, 1.5),
}


def _channel_given_top() -> np.ndarray:
    """Cumulative P(channel | top) whose margins are the top and channel shares (IPF)."""
    tops = np.array([catalog.TOP_CATEGORIES[t][0] for t in catalog.TOP_NAMES])
    chans = np.array(list(catalog.CHANNELS.values()))
    joint = np.array([_AFFINITY.get(t, (1,) * len(chans)) for t in catalog.TOP_NAMES], float)
    for _ in range(500):
        joint *= (tops / joint.sum(axis=1))[:, None]
        joint *= chans / joint.sum(axis=0)
    cond = joint / joint.sum(axis=1, keepdims=True)
    return np.cumsum(cond, axis=1)


def _units(d: District):
    """Unit names and the lookup tables that pick a case's unit from its level and place."""
    names: dict[str, int] = {}

    def idx(name: str) -> int:
        return names.setdefault(name, len(names))

    comm_unit = np.array([idx(f"{c}工作站") for c in d.comm_label])
    street_unit = np.zeros((len(d.street_code), len(catalog.TOP_NAMES)), dtype=np.int64)
    for s, street in enumerate(d.street_label):
        stem = street.removesuffix("街道")
        for t, top in enumerate(catalog.TOP_NAMES):
            dept = catalog.STREET_DEPTS[top]
            street_unit[s, t] = idx(f"{stem}{dept}" if dept in ("派出所", "市场监督管理所")
                                    else f"{street}{dept}")
    district_units = []
    for top in catalog.TOP_NAMES:
        units = catalog.DISTRICT_UNITS[top]
        w = 0.6 ** np.arange(len(units))
        district_units.append((np.array([idx(u) for u in units]), np.cumsum(w / w.sum())))
    return np.array(list(names), dtype=object), comm_unit, street_unit, district_units


# -- rows ---------------------------------------------------------------------------------------
class _Stats:
    """Counts gathered while writing, for the truth file."""

    def __init__(self, n_spots: int, n_grids: int):
        self.rows = 0
        self.channels = np.zeros(len(catalog.CHANNELS), np.int64)
        self.tops = np.zeros(len(catalog.TOP_NAMES), np.int64)
        self.levels = np.zeros(len(catalog.RESOLUTION_LEVELS), np.int64)
        self.spot_cases = np.zeros(n_spots, np.int64)
        self.spot_in_category = np.zeros(n_spots, np.int64)
        self.spot_grids = np.zeros((n_spots, n_grids), np.int64)  # cases per hotspot and grid
        self.closed = self.on_time = self.open = self.code_only = 0
        self.bad = {k: 0 for k, _ in BAD_KINDS}
        self.duplicates: list[tuple[str, str]] = []   # (id, event id) of planted repeats
        self.units: np.ndarray | None = None


def _chunk_days(counts: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive day ranges of about CHUNK_ROWS rows each."""
    first, rows = 0, 0
    for i, c in enumerate(counts):
        if rows and rows + c > CHUNK_ROWS:
            yield first, i
            first, rows = i, 0
        rows += int(c)
    if first < len(counts):
        yield first, len(counts)


def _chunks(d: District, plan: Plan, seed: int, stats: _Stats) -> Iterator[dict]:
    lv = catalog.leaves()
    gaz = gazetteer(d, seed)
    text = _Texts(lv, d, plan, address_pool(d, gaz, seed))
    offset = 0
    for k, (a, b) in enumerate(_chunk_days(plan.day_counts)):
        n = int(plan.day_counts[a:b].sum())
        if n:
            yield _rows(d, plan, lv, text, a, b, offset, rng(seed, "cases", k), stats,
                        rng(seed, "duplicates", k))
            offset += n


def _rows(d: District, plan: Plan, lv, text: _Texts, a: int, b: int, offset: int,
          gen: np.random.Generator, stats: _Stats, dup_gen: np.random.Generator) -> dict:
    """The CSV columns of the cases reported on days a..b-1 (global rows from ``offset``);
    the duplicates planted among them drawn from ``dup_gen`` (every other value stays what
    ``gen`` alone makes it)."""
    day = np.repeat(np.arange(a, b), plan.day_counts[a:b])
    n = len(day)
    hour = choice(HOUR_WEIGHTS, n, gen)
    t0 = plan.start + day.astype(np.int64) * DAY + hour * HOUR + gen.integers(0, HOUR, n)
    if plan.cutoff < DAY:
        _before_now(plan, day, hour, t0, gen)
    order = np.argsort(t0, kind="stable")
    t0, day, hour = t0[order], day[order], hour[order]

    comp = (plan.comp_cum[day] <= gen.random(n)[:, None]).sum(axis=1)
    comp = np.minimum(comp, len(plan.hotspots))
    leaf = choice(plan.bg_leaf_p, n, gen)
    grid, x, y = _places(d, plan, comp, leaf, gen)
    top = lv.top[leaf]
    channel = (plan.channel_cum[top] <= gen.random(n)[:, None]).sum(axis=1)
    channel = np.minimum(channel, len(catalog.CHANNELS) - 1)
    code_only = gen.random(n) < np.array(list(catalog.CHANNEL_CODE_ONLY.values()))[channel]
    case_type = choice(np.array(list(catalog.CASE_TYPES.values())), n, gen)
    planted = duplicates.plant(
        d, t0, duplicates.spoiled_rows(offset, n, BAD_EVERY, BAD_OFFSET), dup_gen, leaf=leaf,
        channel=channel, case_type=case_type, comp=comp, code_only=code_only, grid=grid, x=x,
        y=y)
    top = lv.top[leaf]
    life = _lifecycle(lv, leaf, channel, hour, t0, plan.now, gen)
    comm = d.grid_comm[grid]
    unit = _unit(d, plan, life["level"], top, comm, gen)

    cols = text.columns(day, leaf, channel, case_type, grid, comm, gen, planted)
    stats.duplicates += duplicates.pairs(cols["工单编号"], planted, {})
    cols.update(life["columns"])
    cols["承办单位"] = text.units.take(pa.array(unit, mask=life["undispatched"]))
    cols["处置人"] = _handlers(plan.roster, grid, t0, life)
    lon = np.where(code_only, np.nan, x)
    lat = np.where(code_only, np.nan, y)
    _spoil(cols, offset, x, y, lon, lat, stats)
    cols["经度"] = pa.array(lon, from_pandas=True)
    cols["纬度"] = pa.array(lat, from_pandas=True)
    _count(stats, plan, channel, top, comp, leaf, grid, np.isnan(lon), life)
    used = np.bincount(unit[~life["undispatched"]], minlength=len(plan.units))
    stats.units = used if stats.units is None else stats.units + used
    return cols


def _handlers(roster: Roster, grid, t0, life) -> pa.Array:
    """The grid worker of each dispatched case resolved at the grid level (none for the
    others); picked by the report time, so no value drawn for the other columns moves."""
    named = (life["level"] == 0) & ~life["undispatched"]
    return pa.array(roster.handler(grid, t0 // 60), type=pa.string(), mask=~named)


def _before_now(plan: Plan, day, hour, t0, gen) -> None:
    """The reference time's own day: its reports drawn again from its hours so far, each
    hour by its weight and the part of it gone by (in place; none at or after ``now``)."""
    rows = np.flatnonzero(day == len(plan.days) - 1)
    if not len(rows):
        return
    span = np.clip(plan.cutoff - np.arange(24) * HOUR, 0, HOUR)
    hour[rows] = choice(HOUR_WEIGHTS * span, len(rows), gen)
    t0[rows] = (plan.start + day[rows].astype(np.int64) * DAY + hour[rows] * HOUR
                + gen.integers(0, span[hour[rows]]))


def _places(d: District, plan: Plan, comp, leaf, gen):
    """Grid and point of each case; hotspot cases mostly take the hotspot's category."""
    n = len(comp)
    grid = np.zeros(n, np.int64)
    x, y = np.zeros(n), np.zeros(n)
    bg = np.flatnonzero(comp == 0)
    grid[bg] = choice(d.weight, len(bg), gen)
    x[bg], y[bg] = points_in_grids(d, grid[bg], gen)
    all_p = catalog.leaves().p
    for k, h in enumerate(plan.hotspots, start=1):
        rows = np.flatnonzero(comp == k)
        if not len(rows):
            continue
        own = gen.random(len(rows)) < HOTSPOT_IN_CATEGORY
        leaf[rows[own]] = h.leaves[choice(h.leaf_p, int(own.sum()), gen)]
        leaf[rows[~own]] = choice(all_p, int((~own).sum()), gen)
        grid[rows], x[rows], y[rows] = _around(d, h, len(rows), gen)
    return grid, x, y


def _around(d: District, h: Hotspot, m: int, gen):
    """``m`` points around a hotspot: Gaussian (σ = radius/2), cut at 1.5 radii, in grids."""
    sigma = h.radius_m / 2000
    grid = np.full(m, -1, np.int64)
    x, y = np.zeros(m), np.zeros(m)
    todo = np.arange(m)
    for _ in range(30):
        if not len(todo):
            break
        dx, dy = gen.normal(0, sigma, len(todo)), gen.normal(0, sigma, len(todo))
        cx = np.round(h.x + dx / d.km_per_deg_lon, 6)
        cy = np.round(h.y + dy / KM_PER_DEG_LAT, 6)
        g = locate(d, cx, cy, h.candidates)
        ok = (g >= 0) & (np.hypot(dx, dy) <= 1.5 * h.radius_m / 1000)
        grid[todo[ok]], x[todo[ok]], y[todo[ok]] = g[ok], cx[ok], cy[ok]
        todo = todo[~ok]
    if len(todo):
        grid[todo] = h.grid
        x[todo], y[todo] = points_in_grids(d, grid[todo], gen)
    return grid, x, y


def _lifecycle(lv, leaf, channel, hour, t0, now: int, gen) -> dict:
    """Stage times (in order), deadline, status, level and satisfaction of each case as they
    stand at ``now`` (local epoch seconds): stages after it have not happened yet."""
    n = len(t0)
    level = choice(np.array(list(catalog.RESOLUTION_LEVELS.values())), n, gen)
    late_p = np.array(list(catalog.OVERDUE_BY_LEVEL.values()))[level]
    overdue = gen.random(n) < late_p
    deadline_s = lv.deadline_h[leaf] * HOUR
    r = np.where(overdue, 1.002 + gen.exponential(0.4, n),
                 np.clip(gen.beta(1.2, 3.2, n), 0.01, 0.995))
    accept = np.clip(gen.lognormal(np.log(600), 0.9, n), 30, 3 * HOUR)
    hotline = np.isin(np.array(list(catalog.CHANNELS))[channel], HOTLINES)
    night = ~hotline & ((hour >= 22) | (hour < 8))
    next8 = t0 - t0 % DAY + 8 * HOUR + np.where(hour >= 22, DAY, 0)
    accept = np.where(night, next8 - t0 + gen.integers(0, 5400, n), accept)
    dispatch = np.clip(gen.lognormal(np.log(1500), 0.8, n), 60, 4 * HOUR)
    total = np.maximum(r * deadline_s, accept + dispatch + 1800)
    accepted = t0 + accept.astype(np.int64)
    dispatched = np.maximum(accepted + dispatch.astype(np.int64), accepted + 1)
    closed = np.maximum(t0 + total.astype(np.int64), dispatched + 3)
    handled = dispatched + ((closed - dispatched) * gen.uniform(0.55, 0.92, n)).astype(np.int64)
    handled = np.clip(handled, dispatched + 1, closed - 2)
    feedback = handled + ((closed - handled) * gen.uniform(0.3, 0.95, n)).astype(np.int64)
    feedback = np.clip(feedback, handled + 1, closed - 1)
    evaluated = closed + np.clip(gen.lognormal(np.log(4 * HOUR), 1.0, n), 60, 7 * DAY) \
        .astype(np.int64)
    deadline = t0 + deadline_s

    is_open = closed > now
    # A few cases open for over a day never got past 受理 or 分拨 (lost in a queue): their
    # later stages move past ``now`` with their closing. Picked by their report time, not
    # drawn from ``gen``, so every other value stays as it was.
    pick = t0 * 7919 % 100
    waiting = is_open & (now - t0 > DAY)
    for stuck, first in ((waiting & (pick < STUCK_PERCENT["accepted"]), 0),
                         (waiting & (pick >= 100 - STUCK_PERCENT["dispatched"]), 1)):
        for stamp in (accepted, dispatched, handled, feedback)[first:]:
            stamp[stuck] = closed[stuck]
    rated = ~is_open & (gen.random(n) < catalog.EVALUATED_SHARE) & (evaluated <= now)
    on_time = closed <= deadline
    sat = np.where(on_time, choice(np.array(catalog.SATISFACTION_P), n, gen),
                   choice(np.array(catalog.SATISFACTION_OVERDUE_P), n, gen)) + 1
    status = np.where(~is_open, 0, np.where(accepted > now, 1, np.where(dispatched > now, 2, 3)))
    stamps = dict(zip(TIME_COLUMNS, (accepted, dispatched, handled, feedback, closed, evaluated),
                      strict=True))
    columns = {name: time_text(v, (v > now) | (is_open if name == "评价时间" else False))
               for name, v in stamps.items()}
    columns["评价时间"] = time_text(evaluated, ~rated)
    columns["上报时间"] = time_text(t0)
    columns["办理时限"] = time_text(deadline)
    columns["办理状态"] = STATUS_NAMES.take(status)
    columns["满意度"] = pa.array(sat.astype(np.int8), mask=~rated)
    columns["解决层级"] = LEVEL_NAMES.take(pa.array(level, mask=is_open))
    return {"columns": columns, "level": level, "undispatched": dispatched > now,
            "open": is_open, "on_time": on_time}


def _unit(d: District, plan: Plan, level, top, comm, gen) -> np.ndarray:
    """Handling unit: the community's 工作站 (网格, 社区), a street department, a district body."""
    unit = plan.comm_unit[comm].copy()
    street = d.comm_street[comm]
    at_street = level == 2
    unit[at_street] = plan.street_unit[street[at_street], top[at_street]]
    for t, (units, cum) in enumerate(plan.district_units):
        rows = np.flatnonzero((level == 3) & (top == t))
        if len(rows):
            pick = np.searchsorted(cum, gen.random(len(rows)) * cum[-1], side="right")
            unit[rows] = units[np.minimum(pick, len(units) - 1)]
    return unit


class _Texts:
    """The string columns, taken from vocabularies built once per run.

    Titles come from every (case type, community, third-level type); descriptions are a
    head (channel, case type), the address and a tail (case type, third-level type, detail,
    closing sentence) — two Arrow ``take``s and one C++ join per row, no Python loops.
    """

    DETAILS_PER_TOP = 3

    def __init__(self, lv, d: District, plan: Plan, addresses: pa.Array):
        thirds = list(dict.fromkeys(zip(lv.l1, lv.l2, lv.l3, strict=True)))
        index = {t: i for i, t in enumerate(thirds)}
        self.third = np.array([index[t] for t in zip(lv.l1, lv.l2, lv.l3, strict=True)])
        self.n3 = len(thirds)
        types = list(catalog.CASE_TYPES)
        text = [catalog.CASE_TYPE_TEXT[t] for t in types]
        self.l1, self.l2, self.l3, self.l4 = (_strings(c) for c in (lv.l1, lv.l2, lv.l3, lv.l4))
        self.channels = _strings(catalog.CHANNELS)
        self.types = _strings(types)
        self.n_comm = len(d.comm_label)
        self.titles = _strings(f"{pre}{comm}{third[2]}{suf}" for pre, suf, *_ in text
                               for comm in d.comm_label for third in thirds)
        self.heads = _strings(f"{catalog.CHANNEL_INTRO[ch]}{t[2]}" for ch in catalog.CHANNELS
                              for t in text)
        self.n_asks = len(catalog.ASKS[types[0]])
        self.tails = _strings(
            f"{t[3]}{third[2]}{t[4]}{self._detail(ct, third[0], k)}{catalog.ASKS[ct][a]}"
            for ct, t in zip(types, text, strict=True) for third in thirds
            for k in range(self.DETAILS_PER_TOP) for a in range(self.n_asks))
        self.names = _strings(f"{s}某{k:04d}" for s in catalog.SURNAMES for k in range(10_000))
        self.comm_codes = _strings(d.comm_code)
        self.date_number = np.char.replace(np.datetime_as_string(plan.days), "-", "") \
            .astype(np.int64) * 1_000_000
        self.addresses = addresses
        self.units = _strings(plan.units)

    def _detail(self, case_type: str, top: str, k: int) -> str:
        return f"{catalog.DETAILS[top][k]}，" if case_type == "投诉" else ""

    def columns(self, day, leaf, channel, case_type, grid, comm, gen,
                planted: duplicates.Planted) -> dict:
        n = len(leaf)
        first_of_day = np.searchsorted(day, day, side="left")
        number = self.date_number[day] + np.arange(n) - first_of_day + 1
        third = self.third[leaf]
        place = grid * ADDRESSES_PER_GRID + gen.integers(0, ADDRESSES_PER_GRID, n)
        same = planted.same_as(n)
        place = np.where(same >= 0, place[np.maximum(same, 0)], place)
        address = duplicates.named(self.addresses.take(place), planted)
        detail = gen.integers(0, self.DETAILS_PER_TOP, n)
        ask = gen.integers(0, self.n_asks, n)
        # A repeat tells the event's facts (its detail) in its own words (its ask).
        detail = np.where(same >= 0, detail[np.maximum(same, 0)], detail)
        tail = ((case_type * self.n3 + third) * self.DETAILS_PER_TOP + detail) * self.n_asks \
            + ask
        head = channel * len(self.types) + case_type
        anonymous = gen.random(n) < 0.04
        name = pa.array(gen.integers(0, len(self.names), n), mask=anonymous)
        phone = pa.array(10_000_000_000 + gen.integers(0, 100_000_000, n), mask=anonymous)
        return {
            "工单编号": pc.binary_join_element_wise("PS", pa.array(number).cast(pa.string()), ""),
            "渠道": self.channels.take(channel), "诉求类型": self.types.take(case_type),
            "一级分类": self.l1.take(leaf), "二级分类": self.l2.take(leaf),
            "三级分类": self.l3.take(leaf), "四级分类": self.l4.take(leaf),
            "标题": self.titles.take((case_type * self.n_comm + comm) * self.n3 + third),
            "诉求内容": pc.binary_join_element_wise(self.heads.take(head), address,
                                                self.tails.take(tail), ""),
            "地址": address,
            "姓名": pc.if_else(pa.array(anonymous), "匿名", self.names.take(name)),
            "电话": phone.cast(pa.string()),
            "社区编码": self.comm_codes.take(comm),
        }


def _strings(values) -> pa.Array:
    return pa.array([str(v) for v in values], type=pa.string())


def _spoil(cols: dict, offset: int, x, y, lon, lat, stats: _Stats) -> None:
    """Make every BAD_EVERY-th row bad for one reason (never a chunk's first row)."""
    n = len(x)
    g = offset + np.arange(n)
    rows = np.flatnonzero(((g - BAD_OFFSET) % BAD_EVERY == 0) & (g >= BAD_OFFSET)
                          & (np.arange(n) > 0))
    kinds = ((g[rows] - BAD_OFFSET) // BAD_EVERY) % len(BAD_KINDS)
    for k, (name, _) in enumerate(BAD_KINDS):
        at = rows[kinds == k]
        stats.bad[name] += len(at)
        if not len(at):
            continue
        mask = np.zeros(n, bool)
        mask[at] = True
        if name == "bad_date":
            cols["上报时间"] = pc.if_else(pa.array(mask), BAD_DATE, cols["上报时间"])
        elif name == "unknown_status":
            cols["办理状态"] = pc.if_else(pa.array(mask), BAD_STATUS, cols["办理状态"])
        elif name == "missing_category":
            cols["一级分类"] = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()),
                                      cols["一级分类"])
        elif name == "far_outside":
            far = FAR_POINTS[np.arange(len(at)) % len(FAR_POINTS)]
            lon[at], lat[at] = far[:, 0], far[:, 1]
        elif name == "swapped":
            lon[at], lat[at] = y[at], x[at]
        else:
            ids = cols["工单编号"].to_numpy(zero_copy_only=False).astype(object)
            ids[at] = ids[at - 1]
            cols["工单编号"] = pa.array(ids, type=pa.string())


def _count(stats: _Stats, plan: Plan, channel, top, comp, leaf, grid, code_only,
           life) -> None:
    n = len(channel)
    stats.rows += n
    stats.channels += np.bincount(channel, minlength=len(stats.channels))
    stats.tops += np.bincount(top, minlength=len(stats.tops))
    closed = ~life["open"]
    stats.levels += np.bincount(life["level"][closed], minlength=len(stats.levels))
    stats.closed += int(closed.sum())
    stats.on_time += int((closed & life["on_time"]).sum())
    stats.open += int(life["open"].sum())
    stats.code_only += int(code_only.sum())
    for k, h in enumerate(plan.hotspots):
        mine = comp == k + 1
        stats.spot_cases[k] += int(mine.sum())
        stats.spot_in_category[k] += int(np.isin(leaf[mine], h.leaves).sum())
        stats.spot_grids[k] += np.bincount(grid[mine], minlength=stats.spot_grids.shape[1])


# -- the truth --------------------------------------------------------------------------------
def _planted_grids(d: District, counts: np.ndarray) -> dict[str, int]:
    """The grids a hotspot's cases fell in, with how many, most first (its footprint, which
    a detector of hot grids is measured against)."""
    order = np.argsort(-counts, kind="stable")
    return {str(d.grid_code[g]): int(counts[g]) for g in order if counts[g] > 0}


def _truth(d: District, plan: Plan, size: str, seed: int, stats: _Stats) -> dict:
    def shares(counts, names):
        return {k: round(float(v) / max(int(counts.sum()), 1), 4)
                for k, v in zip(names, counts, strict=True)}

    first, end = period(size, np.datetime64(plan.now, "s"))
    by_field: dict[str, int] = {}
    for name, field in BAD_KINDS:
        by_field[field] = by_field.get(field, 0) + stats.bad[name]
    window = 30
    return {
        "generator": "democity.cases", "size": size.upper(), "seed": seed, "rows": stats.rows,
        "period": {"start": str(first).replace("T", " "), "end": str(end).replace("T", " ")},
        "now": str(end).replace("T", " "),
        "hotspots": [{
            "id": h.id, "kind": h.kind, "lon": round(h.x, 6), "lat": round(h.y, 6),
            "radius_m": h.radius_m, "category_1": h.category[0], "category_2": h.category[1],
            "category_3": h.category[2], "grid_code": str(d.grid_code[h.grid]),
            "community_code": str(d.comm_code[d.grid_comm[h.grid]]),
            "share": round(h.share, 5),
            "share_first_30_days": round(h.share * float(h.profile[:window].mean()), 5),
            "share_last_30_days": round(h.share * float(h.profile[-window:].mean()), 5),
            "cases": int(stats.spot_cases[k]),
            "cases_in_category": int(stats.spot_in_category[k]),
            "grids": _planted_grids(d, stats.spot_grids[k]),
        } for k, h in enumerate(plan.hotspots)],
        "rejects": {name: {"field": field, "count": stats.bad[name]} for name, field in BAD_KINDS},
        "rejects_by_field": by_field,
        "rejects_total": int(sum(stats.bad.values())),
        "code_only": stats.code_only,
        "duplicates": len(stats.duplicates),
        "open": stats.open,
        "closed": stats.closed,
        "on_time_share": round(stats.on_time / max(stats.closed, 1), 4),
        "channels": shares(stats.channels, catalog.CHANNELS),
        "top_categories": shares(stats.tops, catalog.TOP_NAMES),
        "resolution_levels": shares(stats.levels, catalog.RESOLUTION_LEVELS),
        "handling_units": int(np.sum(stats.units > 0)) if stats.units is not None else 0,
    }
