"""The view's state lives in the URL: parse it, change it, write it back (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from layers.view import CASE_ORDERS

LAYERS = ("units", "hexbins", "cases", "facilities", "iot", "hotspots")
DEFAULT_LAYERS = ("units", "hotspots")  # devices are thousands of points: opt-in
METRICS = ("total", "open", "overdue", "on_time_rate", "per_km2")
RANGES = ("today", "7d", "30d", "90d", "year", "all")
# The range control's value for a link's own period: "start/end" (either side may be open),
# so the control shows the period the view uses and gives it back when chosen again.
PERIOD_SEPARATOR = "/"


@dataclass(frozen=True)
class ViewState:
    scope: str | None = None
    range: str = "90d"
    start: str | None = None
    end: str | None = None
    category: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    layers: tuple[str, ...] = DEFAULT_LAYERS
    metric: str = "total"
    cases: str = "latest"  # the case table's order (layers.view.CASE_ORDERS)
    lang: str = "zh"
    device: str | None = None   # a device shown on the map (a click on an alarm)

    def params(self) -> dict:
        """The filters as read-API parameters (layers/metric/lang are the UI's own)."""
        params = {"scope": self.scope, "category": ",".join(self.category),
                  "channel": ",".join(self.channel), "status": ",".join(self.status)}
        if self.start or self.end:
            params.update(start=self.start, end=self.end)
        else:
            params["range"] = self.range
        return {k: v for k, v in params.items() if v}

    def view_params(self) -> dict:
        """What the view is read with: the filters and the device to show."""
        return {**self.params(), **({"device": self.device} if self.device else {})}

    def query(self) -> str:
        """The URL query string that restores this view."""
        pairs = {**self.view_params(), "layers": ",".join(self.layers), "metric": self.metric,
                 "cases": self.cases, "lang": self.lang}
        defaults = ViewState()
        # ``layers`` stays even when empty: all layers switched off is a view too.
        pairs = {k: v for k, v in pairs.items() if (v or k == "layers")
                 and not (k in ("metric", "cases", "lang") and v == getattr(defaults, k))}
        return "?" + urlencode(pairs)


def _tuple(values: dict, name: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    raw = ",".join(values.get(name, []))
    items = tuple(dict.fromkeys(v for v in raw.split(",") if v))
    return tuple(v for v in items if allowed is None or v in allowed)


def parse(search: str | None) -> ViewState:
    """The state of a URL query string; unknown values fall back to defaults."""
    values = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    one = {k: v[0] for k, v in values.items() if v and v[0]}
    layers = _tuple(values, "layers", LAYERS) if "layers" in values else DEFAULT_LAYERS
    return ViewState(
        scope=one.get("scope") or None,
        range=one.get("range") if one.get("range") in RANGES else "90d",
        start=one.get("start"), end=one.get("end"),
        category=_tuple(values, "category"), channel=_tuple(values, "channel"),
        status=_tuple(values, "status", ("open", "closed", "overdue")),
        layers=layers,
        metric=one.get("metric") if one.get("metric") in METRICS else "total",
        cases=one.get("cases") if one.get("cases") in CASE_ORDERS else "latest",
        lang=one.get("lang") if one.get("lang") in ("zh", "en") else "zh",
        device=one.get("device") or None,
    )


def range_value(state: ViewState) -> str:
    """The range control's value: the link's own period ("start/end") when it names one
    (the view uses it, whatever ``range`` says), else the range's name."""
    if state.start or state.end:
        return f"{state.start or ''}{PERIOD_SEPARATOR}{state.end or ''}"
    return state.range


def with_range(state: ViewState, value: str | None) -> ViewState:
    """The view with the range control's ``value``: a named range, or a period as
    ``range_value`` gives it."""
    if value and value not in RANGES and PERIOD_SEPARATOR in value:
        start, _, end = value.partition(PERIOD_SEPARATOR)
        if start or end:
            return replace(state, start=start or None, end=end or None)
    return replace(state, range=value if value in RANGES else "90d", start=None, end=None)


def with_scope(state: ViewState, scope: str | None) -> ViewState:
    """Another unit's view: the device shown belongs to the old one."""
    return replace(state, scope=scope, device=None)
