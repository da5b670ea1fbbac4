"""The case aggregates, declared once: their tables, grain, levels and measures.

Every case load brings them up to date in its transaction (``etl.rollup``: a small batch
by adding each changed case's new contribution less its old one, a large one by recounting
the days it touched) and the views read them
(``layers.case_query``, ``layers.cases``) and show what ``SHOWN`` and ``RATIOS`` make of
their sums (``layers.summary``); both build their SQL from what is declared here, and a
test holds the migrated schema to it (``tests/test_aggregates.py``). The baseline
migration creates the tables described here.

The grain: a row per admin unit (``level``, ``unit_code``), local day (in the zone of
``ZONE_TABLE``) and the table's keys, for the levels the table keeps. ``case_unit_day``
keeps every measure by status at every level (district, street, community, grid);
``case_rollup`` keeps them by category, channel and status too, but not for grids
(``COARSE``: district, streets, communities). A grid's view under a category or channel
filter, and its channel and category mixes, are counted from its own cases through their
index (a few hundred over 90 days at the M city); a community's are not (its 90 days held
10,000 cases of the M city on as many pages: 0.35-0.65 s where its rows take a few ms).
Each daily table has a weekly one holding the sums of its days (weeks from Monday, keyed by
their Monday in the column ``week``), from which a range's whole weeks are read, at the
levels where that pays: ``case_rollup_week`` for the district and streets alone (a
community's 90 days are a few thousand rows of ``case_rollup``, read by its key). The full
grain at every level had 2.87 rows per case at M; this one 1.3 (``bench/bench_grain.py``).
A case counts in every unit from the one it was placed in up to the district.

A measure is an SQL expression over one case row (``c``) counted per group; a coarser row,
a week or a view sums it. ``{day}`` and ``{closed_day}`` in an expression stand for the
local days the case was reported and closed on. Being a sum over cases, a measure changes
by what it counts over a batch's new rows less what it counts over their old ones: the
delta the loader adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

from onemap.schema import LEVEL_COLUMN

# The one-row table naming the time zone whose local days the aggregates count.
ZONE_TABLE = "rollup_zone"

# Upper bounds (hours) of the handling-time buckets every aggregate row counts closed cases
# in, h0 … h16 (one more open-ended bucket follows the last bound): the median of a view
# under a category or channel filter, when too many cases to sort, is read from them.
HOUR_BUCKETS = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504, 720)
HOURS_COLUMNS = tuple(f"h{i}" for i in range(len(HOUR_BUCKETS) + 1))

# The fine handling-time histogram the exact-enough median is read from (HISTOGRAM_DAY and
# HISTOGRAM_WEEK: per unit and day or week, the closed cases' bucket numbers and counts as
# two arrays, only the buckets that hold cases). Buckets are 5 minutes wide up to 250
# minutes, then each 2 % wider than the one before: a median reported as its bucket's middle
# is within 2.5 minutes or 1 % of the true one.
FINE_WIDTH_HOURS = 5 / 60
FINE_LINEAR_BUCKETS = 50                # [0, 250 min) in 5-minute buckets
FINE_RATIO = 1.02

# resolved_level of a closed case → the measure counting it (琐事不出网格…).
RESOLVED = {"res_grid": 4, "res_community": 3, "res_street": 2, "res_district": 1}


@dataclass(frozen=True)
class Measure:
    """A figure counted per aggregate row from its cases and summed across rows."""

    name: str
    raw: str                  # over one case row ``c``; {day}, {closed_day}: its local days
    type: str = "integer"

    def counted(self, day: str, closed_day: str) -> str:
        """The expression over cases ``c``, its local days given as SQL."""
        return self.raw.format(day=day, closed_day=closed_day)

    def summed(self, alias: str = "r", cast: bool = False) -> str:
        """The sum of this measure over aggregate rows ``alias``."""
        total = f"sum({alias}.{self.name})"
        return f"{total}::{self.type}" if cast else total


def _hour_bucket(low: float, high: float | None) -> str:
    upper = f" AND c.handling_hours < {high}" if high is not None else ""
    return f"count(*) FILTER (WHERE c.handling_hours >= {low}{upper})"


# The status decides what is closed (a closing time on an open case counts for nothing);
# on_time and handling_hours are set on closed cases only (etl.places.DERIVED).
MEASURES = (
    Measure("total", "count(*)"),
    Measure("closed", "count(*) FILTER (WHERE c.status = 'closed')"),
    Measure("closed_on_time", "count(*) FILTER (WHERE c.on_time)"),
    Measure("closed_late", "count(*) FILTER (WHERE NOT c.on_time)"),
    Measure("closed_same_day",
            "count(*) FILTER (WHERE c.status = 'closed' AND {closed_day} = {day})"),
    Measure("closed_3d", "count(*) FILTER (WHERE c.status = 'closed' "
                         "AND c.closed_at <= c.reported_at + interval '72 hours')"),
    *(Measure(name, _hour_bucket(low, high)) for name, low, high in
      zip(HOURS_COLUMNS, (0, *HOUR_BUCKETS), (*HOUR_BUCKETS, None), strict=True)),
    Measure("satisfaction_sum", "coalesce(sum(c.satisfaction), 0)"),
    Measure("satisfaction_n", "count(c.satisfaction)"),
    *(Measure(name, f"count(*) FILTER (WHERE c.resolved_level = {level} "
                    f"AND c.status = 'closed')") for name, level in RESOLVED.items()),
    Measure("above_grid", "count(*) FILTER (WHERE c.grid_code IS NULL)"),
)
MEASURE = {m.name: m for m in MEASURES}


@dataclass(frozen=True)
class Ratio:
    """A figure a view derives from its summed measures: ``part`` over the sum of
    ``whole`` (None when that is 0), to ``digits`` decimals."""

    name: str
    part: str
    whole: tuple[str, ...]
    digits: int = 6


# What a view shows of its summed measures: these counts as they are, these ratios, and
# the share of each resolution level (RESOLVED) among the closed cases resolved at one.
SHOWN = ("total", "closed", "above_grid")
RATIOS = (
    Ratio("on_time_rate", "closed_on_time", ("closed_on_time", "closed_late")),
    Ratio("same_day_rate", "closed_same_day", ("closed",)),
    Ratio("within_3d_rate", "closed_3d", ("closed",)),
    Ratio("satisfaction", "satisfaction_sum", ("satisfaction_n",), 2),  # the mean score
)
TOTAL = MEASURE["total"]
# What trends, mixes and hotspot counts read: a table keeping only these answers them.
COUNTS = (TOTAL,)


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Table:
    """An aggregate table: rows per unit (``level``, ``unit_code``), period and ``keys``.

    ``period`` is ``day`` (a local day) or ``week`` (its Monday); a weekly table sums the
    rows of its ``daily`` one. ``values`` are what a row holds beside its key; the primary
    key covers the key and includes ``total`` when the table has it, so counts are read
    from the index alone. ``clustered``: written in unit and period order (read row by row
    over a unit's days); ``levels``: the levels it keeps."""

    name: str
    period: str
    keys: tuple[str, ...]
    values: tuple[Column, ...]
    daily: str | None = None
    clustered: bool = True
    levels: tuple[int, ...] = (1, 2, 3, 4)

    @cached_property  # a table's SQL is made once per process, not on every view
    def key(self) -> tuple[str, ...]:
        return ("level", "unit_code", self.period, *self.keys)

    @cached_property
    def columns(self) -> tuple[Column, ...]:
        """Every column, in table order, with its SQL type."""
        types = {"level": "smallint", self.period: "date"}
        return (*(Column(k, types.get(k, "text")) for k in self.key), *self.values)

    @cached_property
    def primary_key(self) -> str:
        """Its primary key as PostgreSQL states it."""
        include = " INCLUDE (total)" if "total" in {v.name for v in self.values} else ""
        return f"PRIMARY KEY ({', '.join(self.key)}){include}"

    @cached_property
    def level_check(self) -> str:
        """The check of its levels (a first few, district down) as PostgreSQL states it."""
        assert self.levels == tuple(range(1, len(self.levels) + 1)), self.levels
        return f"CHECK (((level >= 1) AND (level <= {len(self.levels)})))"

    def keeps(self, level: int) -> bool:
        """Whether the table has rows of ``level`` (the district's rows stand for level 0,
        every district, too)."""
        return max(level, 1) in self.levels

    @cached_property
    def measures(self) -> tuple[Measure, ...]:
        names = {v.name for v in self.values}
        return tuple(m for m in MEASURES if m.name in names)

    @cache  # noqa: B019 (tables live as long as the process)
    def read_as_days(self, source: Table) -> str:
        """Its columns as a select list over ``source`` (itself, or its daily or weekly
        table), the period named ``day`` (a week by its Monday): a range's whole weeks and
        the days around them are read as one set of rows."""
        names = (source.period if c.name == self.period else c.name for c in self.columns)
        return ", ".join(f"{n} AS day" if n == "week" else n for n in names)


def _values(measures) -> tuple[Column, ...]:
    return tuple(Column(m.name, m.type) for m in measures)


HISTOGRAM_VALUES = (Column("buckets", "smallint[]"), Column("counts", "integer[]"))
CATEGORY_KEYS = ("category_1", "channel", "status")
# The levels whose units keep their cases by category and channel, and those whose weeks
# of them are kept too.
COARSE = (1, 2, 3)
COARSE_WEEKS = (1, 2)

ROLLUP = Table("case_rollup", "day", CATEGORY_KEYS, _values(MEASURES), levels=COARSE)
UNIT_DAY = Table("case_unit_day", "day", ("status",), _values(MEASURES))
# By category and channel, the counts only: what mixes, trends and hotspots read, by its key
# index alone (so its row order does not matter); the other figures under those filters
# come by day, which keeps its refresh short.
ROLLUP_WEEK = Table("case_rollup_week", "week", CATEGORY_KEYS, _values(COUNTS),
                    daily=ROLLUP.name, clustered=False, levels=COARSE_WEEKS)
UNIT_WEEK = Table("case_unit_week", "week", ("status",), _values(MEASURES),
                  daily=UNIT_DAY.name)
# The fine handling-time histograms, for the district, streets and communities (a grid's
# cases are few: its median is exact from them). A view reads one unit's rows by their key
# (a few dozen), so their order on disk does not matter.
HISTOGRAM_DAY = Table("case_hours_day", "day", (), HISTOGRAM_VALUES, clustered=False,
                      levels=(1, 2, 3))
HISTOGRAM_WEEK = Table("case_hours_week", "week", (), HISTOGRAM_VALUES,
                       daily=HISTOGRAM_DAY.name, clustered=False, levels=(1, 2, 3))

TABLES = (ROLLUP, UNIT_DAY, ROLLUP_WEEK, UNIT_WEEK, HISTOGRAM_DAY, HISTOGRAM_WEEK)
TABLE = {t.name: t for t in TABLES}
WEEKLY = {t.daily: t for t in TABLES if t.daily}    # daily table name → its weekly table

# A level's rows carry its own code column and its ancestors': grid first, district last.
ANCESTRY = tuple(LEVEL_COLUMN[level] for level in (4, 3, 2, 1))


def fine_bucket(column: str) -> str:
    """SQL giving the fine histogram bucket of a number of hours."""
    start = FINE_LINEAR_BUCKETS * FINE_WIDTH_HOURS
    return (f"CASE WHEN {column} < {start!r} THEN floor({column} / {FINE_WIDTH_HOURS!r}) "
            f"ELSE {FINE_LINEAR_BUCKETS} + floor(ln({column} / {start!r}) / ln({FINE_RATIO!r}))"
            f" END::smallint")


def fine_bucket_bounds(bucket: int) -> tuple[float, float]:
    """The handling hours [low, high) of a fine bucket."""
    if bucket < FINE_LINEAR_BUCKETS:
        return bucket * FINE_WIDTH_HOURS, (bucket + 1) * FINE_WIDTH_HOURS
    start = FINE_LINEAR_BUCKETS * FINE_WIDTH_HOURS
    step = bucket - FINE_LINEAR_BUCKETS
    return start * FINE_RATIO ** step, start * FINE_RATIO ** (step + 1)
