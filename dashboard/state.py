"""The view's state lives in the URL: parse it, change it, write it back (pure functions).

The filters are read by the read side's own parser (``layers.filters.read_filters``), with
its vocabularies; only what the page adds (layers, metric, case order, language, device) is
read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

from layers.errors import BadParameter
from layers.filters import RANGES, Filters, Period, filter_params, read_filters
from layers.view import CASE_ORDERS

MAP_LAYERS = ("units", "hexbins", "cases", "facilities", "iot", "hotspots")
DEFAULT_LAYERS = ("units", "hotspots")  # devices are thousands of points: opt-in
METRICS = ("total", "open", "overdue", "on_time_rate", "per_km2")
DEFAULT_RANGE = "90d"
# The filters the page offers (a link's other read-API parameters are not its filters).
PAGE_FILTERS = ("scope", "range", "start", "end", "category", "channel", "status")
# The period control's value for a link's own dates: "start/end" (either side may be open),
# so the control shows the period the view uses and gives it back when chosen again.
PERIOD_SEPARATOR = "/"


@dataclass(frozen=True)
class ViewState:
    # The time range is the default preset unless the link names one or dates.
    filters: Filters = Filters(period=Period(range=DEFAULT_RANGE))
    layers: tuple[str, ...] = DEFAULT_LAYERS
    metric: str = "total"
    cases: str = "latest"  # the case table's order (layers.view.CASE_ORDERS)
    lang: str = "zh"
    device: str | None = None   # a device shown on the map (a click on an alarm)
    # A filter of the link that cannot be read: the view says so instead of showing data.
    problem: BadParameter | None = field(default=None, compare=False)

    @property
    def range(self) -> str | None:
        """The chosen preset; None for dates of a link."""
        return self.filters.period.range

    def params(self) -> dict:
        """The filters as read-API parameters (layers/metric/lang are the UI's own)."""
        return filter_params(self.filters)

    def query(self) -> str:
        """The URL query string that restores this view."""
        pairs = {**self.params(), **({"device": self.device} if self.device else {}),
                 "layers": ",".join(self.layers), "metric": self.metric,
                 "cases": self.cases, "lang": self.lang}
        defaults = ViewState()
        # ``layers`` stays even when empty: all layers switched off is a view too.
        pairs = {k: v for k, v in pairs.items() if (v or k == "layers")
                 and not (k in ("metric", "cases", "lang") and v == getattr(defaults, k))}
        return "?" + urlencode(pairs)


def _tuple(values: dict, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    raw = ",".join(values.get(name, []))
    items = tuple(dict.fromkeys(v for v in raw.split(",") if v))
    return tuple(v for v in items if v in allowed)


def parse(search: str | None) -> ViewState:
    """The state of a URL query string; unknown values fall back to defaults, and filters
    that cannot be read are the state's ``problem``."""
    values = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    one = {k: v[0] for k, v in values.items() if v and v[0]}
    layers = _tuple(values, "layers", MAP_LAYERS) if "layers" in values else DEFAULT_LAYERS
    filters, problem = _filters({k: v for k, v in values.items() if k in PAGE_FILTERS})
    return ViewState(
        filters=filters, problem=problem, layers=layers,
        metric=one.get("metric") if one.get("metric") in METRICS else "total",
        cases=one.get("cases") if one.get("cases") in CASE_ORDERS else "latest",
        lang=one.get("lang") if one.get("lang") in ("zh", "en") else "zh",
        device=one.get("device") or None,
    )


def _filters(values: dict) -> tuple[Filters, BadParameter | None]:
    """The link's filters, the default range when it names no period; the defaults and
    the problem when they cannot be read."""
    try:
        filters = read_filters(values, lenient=True)
    except BadParameter as problem:
        return ViewState().filters, problem
    if filters.period == Period():
        filters = replace(filters, period=Period(range=DEFAULT_RANGE))
    return filters, None


def range_value(state: ViewState) -> str:
    """The period control's value: the link's own dates ("start/end") when it names no
    preset (the view uses them), else the preset's name."""
    period = state.filters.period
    if period.range is None and (period.start or period.end):
        return f"{period.start or ''}{PERIOD_SEPARATOR}{period.end or ''}"
    return period.range or DEFAULT_RANGE


def with_range(state: ViewState, value: str | None) -> ViewState:
    """The view with the period control's ``value``: a preset, or dates as
    ``range_value`` gives them."""
    if value and value not in RANGES and PERIOD_SEPARATOR in value:
        start, _, end = value.partition(PERIOD_SEPARATOR)
        if start or end:
            return with_filters(state, period=Period(start=start or None, end=end or None))
    return with_filters(state, period=Period(range=value if value in RANGES else DEFAULT_RANGE))


def with_scope(state: ViewState, scope: str | None) -> ViewState:
    """Another unit's view: the device shown belongs to the old one."""
    return replace(state, filters=replace(state.filters, scope=scope), device=None)


def with_filters(state: ViewState, **changes) -> ViewState:
    """The view with ``changes`` to its filters (``Filters`` fields)."""
    return replace(state, filters=replace(state.filters, **changes))
