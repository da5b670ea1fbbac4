"""The report's map: a scope's units as inline SVG, drawn from their polygons alone (no tile
server, nothing fetched), coloured by a figure in classes of equal width, with each unit's
name and figure, a legend, a scale bar and north.

The polygons are projected to a transverse Mercator centred on the scope, in metres, so
shapes keep their proportions and the scale bar is true across the map (within a fraction of
a per cent over a district). The classes' colours are the dashboard's choropleth scale
(``dashboard.figures.SEQUENTIAL``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from pyproj import Transformer
from shapely.geometry import shape

from dashboard.figures import SEQUENTIAL

WIDTH, HEIGHT = 680, 440       # CSS pixels: the page's width, about 180 mm
MAP_WIDTH = 500                # the polygons' frame; the legend to its right
PAD = 12
CLASSES = 5
NO_DATA = "#e0e0e0"
LABEL_MAX, LABEL_MIN = 11.0, 6.5  # a name's font size, shrunk to fit its unit …
MARKS = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"  # … or, smaller still, a mark named beside the legend


@dataclass(frozen=True)
class Legend:
    """What the legend says: the figure's name, the words for no figure, and how a class's
    bounds are written (``fmt``: a number as the report writes it); a figure of
    ``integers`` (a count) has classes of whole numbers, each written lowest–highest."""

    title: str
    no_data: str
    fmt: object = "{:,.0f}".format
    integers: bool = True


def breaks(highest: float, classes: int = CLASSES, integers: bool = True) -> list[float]:
    """Class bounds from 0 of equal, round width (1, 2, 2.5 or 5 × 10ⁿ; at least 1 for
    ``integers``) covering ``highest``: ``classes`` + 1 numbers or fewer (a highest of 0
    gives one class)."""
    if highest <= 0:
        return [0.0, 1.0]
    raw = highest / classes
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integers:
        step = max(1, round(step))
    count = max(1, math.ceil(highest / step - 1e-9))
    if count * step <= highest:  # the highest lies on a bound: one class more holds it
        count += 1
    return [i * step for i in range(count + 1)]


def colours(count: int) -> list[str]:
    """``count`` colours spread evenly over the dashboard's sequential scale."""
    scale = [c for _, c in SEQUENTIAL]
    if count == 1:
        return [scale[len(scale) // 2]]
    return [scale[round(i * (len(scale) - 1) / (count - 1))] for i in range(count)]


def class_of(value: float | None, bounds: list[float]) -> int | None:
    """The class (0-based) of ``value``: bounds[i] <= value < bounds[i+1]; None for None."""
    if value is None:
        return None
    for i in range(len(bounds) - 1):
        if value < bounds[i + 1]:
            return i
    return len(bounds) - 2


def svg_map(features: list[dict], values: dict[str, float | None], legend: Legend,
            font: str = "sans-serif", value_text=None) -> str:
    """The SVG of ``features`` (GeoJSON polygons with ``properties.name``, ``id`` their
    code) coloured by ``values`` (by code), its text in the CSS font stack ``font``;
    ``value_text`` writes a unit's figure under its name (default: ``legend.fmt``)."""
    value_text = value_text or (lambda v: "—" if v is None else legend.fmt(v))
    if not features:
        return f'<svg class="map" width="{WIDTH}" height="{HEIGHT // 4}"></svg>'
    project, frame = _projection(features)
    bounds = breaks(max((v for v in values.values() if v is not None), default=0),
                    integers=legend.integers)
    fills = colours(len(bounds) - 1)
    shapes, labels, notes = [], [], []
    for feature in features:
        code = feature["id"]
        value = values.get(code)
        klass = class_of(value, bounds)
        fill = NO_DATA if klass is None else fills[klass]
        geometry = shape(feature["geometry"])
        shapes.append(f'<path d="{_path(geometry, project)}" fill="{fill}" '
                      f'stroke="#ffffff" stroke-width="1" fill-rule="evenodd"/>')
        name, figure = feature["properties"]["name"], value_text(value)
        dark = klass is not None and klass >= 3
        label = _label(geometry, project, name, figure, dark)
        if label is None and len(notes) < len(MARKS):  # too small: a mark, named beside
            notes.append((MARKS[len(notes)], name, figure))
            label = _mark(geometry, project, notes[-1][0], dark)
        labels.append(label or _label(geometry, project, name, figure, dark, LABEL_MIN))
    parts = [*shapes, *labels, _north(), _scale_bar(frame),
             _legend(legend, bounds, fills, any(values.get(f["id"]) is None for f in features),
                     notes)]
    return (f'<svg class="map" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="{escape(font)}">'
            f'{"".join(parts)}</svg>')


@dataclass(frozen=True)
class Frame:
    """Pixels per metre of the drawn map."""

    scale: float


def _projection(features: list[dict]):
    """A function from lon/lat to the frame's pixels, and the frame."""
    west, south, east, north = _extent(features)
    centre_lon, centre_lat = (west + east) / 2, (south + north) / 2
    to_metres = Transformer.from_crs(
        "EPSG:4326", f"+proj=tmerc +lat_0={centre_lat} +lon_0={centre_lon} +k=1 "
                     "+ellps=WGS84 +units=m", always_xy=True)
    corners = [to_metres.transform(x, y) for x in (west, east) for y in (south, north)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
    scale = min((MAP_WIDTH - 2 * PAD) / max(right - left, 1),
                (HEIGHT - 2 * PAD - 30) / max(top - bottom, 1))
    off_x = PAD + ((MAP_WIDTH - 2 * PAD) - (right - left) * scale) / 2
    off_y = PAD + ((HEIGHT - 2 * PAD - 30) - (top - bottom) * scale) / 2

    def project(lon: float, lat: float) -> tuple[float, float]:
        x, y = to_metres.transform(lon, lat)
        return off_x + (x - left) * scale, off_y + (top - y) * scale

    return project, Frame(scale)


def _extent(features: list[dict]) -> tuple[float, float, float, float]:
    boxes = [shape(f["geometry"]).bounds for f in features]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _path(geometry, project) -> str:
    polygons = getattr(geometry, "geoms", [geometry])
    rings = [ring for polygon in polygons
             for ring in (polygon.exterior, *polygon.interiors)]
    return " ".join(
        "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in (project(*p) for p in ring.coords))
        + " Z" for ring in rings)


def _label(geometry, project, name: str, figure: str, dark: bool,
           least: float | None = None) -> str | None:
    """The unit's name and figure at a point inside it, the name shrunk to the unit's
    width down to ``LABEL_MIN`` (``least``: to no less than that, whatever the width);
    None when it does not fit."""
    x, y = project(*geometry.representative_point().coords[0])
    west, south, east, north = geometry.bounds
    width = abs(project(east, south)[0] - project(west, south)[0])
    size = min(LABEL_MAX, 0.9 * width / max(len(name), 1))
    if size < LABEL_MIN:
        if least is None:
            return None
        size = least
    colour = "#ffffff" if dark else "#102a43"
    return (f'<text class="label" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" '
            f'font-size="{size:.1f}" '
            f'fill="{colour}"><tspan x="{x:.1f}">{escape(name)}</tspan>'
            f'<tspan x="{x:.1f}" dy="{size * 1.15:.1f}" font-size="{size * 0.9:.1f}">'
            f'{escape(figure)}</tspan></text>')


def _mark(geometry, project, mark: str, dark: bool) -> str:
    x, y = project(*geometry.representative_point().coords[0])
    colour = "#ffffff" if dark else "#102a43"
    return (f'<text class="mark" x="{x:.1f}" y="{y + 3:.1f}" text-anchor="middle" '
            f'font-size="9" fill="{colour}">{mark}</text>')


def _north() -> str:
    x, y = MAP_WIDTH - PAD - 10, PAD + 4
    return (f'<path d="M{x},{y} L{x + 6},{y + 18} L{x},{y + 14} L{x - 6},{y + 18} Z" '
            f'fill="#102a43"/><text x="{x}" y="{y + 30}" text-anchor="middle" '
            f'font-size="10" fill="#102a43">N</text>')


def _scale_bar(frame: Frame) -> str:
    """A bar of a round length (1, 2 or 5 × 10ⁿ m) about a quarter of the map's width."""
    target = (MAP_WIDTH - 2 * PAD) / 4 / frame.scale
    power = 10 ** math.floor(math.log10(target))
    metres = max(m * power for m in (1, 2, 5) if m * power <= target)
    length = metres * frame.scale
    x, y = PAD, HEIGHT - PAD - 8
    words = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    half = length / 2
    return (f'<g class="scale"><rect x="{x}" y="{y}" width="{half:.1f}" height="5" '
            f'fill="#102a43"/><rect x="{x + half:.1f}" y="{y}" width="{half:.1f}" height="5" '
            f'fill="#ffffff" stroke="#102a43" stroke-width="0.8"/>'
            f'<text x="{x}" y="{y - 3}" font-size="9" fill="#102a43">0</text>'
            f'<text x="{x + length:.1f}" y="{y - 3}" font-size="9" text-anchor="end" '
            f'fill="#102a43">{words}</text></g>')


def _legend(legend: Legend, bounds: list[float], fills: list[str], no_data: bool,
            notes: list[tuple[str, str, str]] = ()) -> str:
    """The classes' colours and bounds, then the units too small to hold their name: each
    mark with the unit's name and figure."""
    x, y = MAP_WIDTH + 16, PAD + 8
    rows = [f'<text x="{x}" y="{y}" font-size="11" fill="#102a43">{escape(legend.title)}'
            f'</text>']
    entries = [(fill, _class_words(legend, low, high))
               for fill, low, high in zip(fills, bounds, bounds[1:], strict=False)]
    if no_data:
        entries.append((NO_DATA, legend.no_data))
    for i, (fill, words) in enumerate(entries):
        top = y + 12 + i * 20
        rows.append(f'<rect x="{x}" y="{top}" width="18" height="12" fill="{fill}" '
                    f'stroke="#9fb3c8" stroke-width="0.5"/><text x="{x + 24}" y="{top + 10}" '
                    f'font-size="10" fill="#102a43">{escape(words)}</text>')
    top = y + 12 + len(entries) * 20 + 14
    for i, (mark, name, figure) in enumerate(notes):
        line = top + i * 15
        rows.append(f'<text class="mark" x="{x}" y="{line}" font-size="9" '
                    f'fill="#102a43">{mark}</text><text class="label" x="{x + 13}" '
                    f'y="{line}" font-size="9" fill="#102a43"><tspan>{escape(name)}</tspan>'
                    f'<tspan dx="4">{escape(figure)}</tspan></text>')
    return f'<g class="legend">{"".join(rows)}</g>'


def _class_words(legend: Legend, low: float, high: float) -> str:
    """A class's bounds: ``0–199`` for counts (whole numbers, both ends held), else
    ``0.5 – 1.0`` (the lower held, the upper not)."""
    if legend.integers:
        last = high - 1
        return legend.fmt(low) if last <= low else f"{legend.fmt(low)}–{legend.fmt(last)}"
    return f"{legend.fmt(low)} – {legend.fmt(high)}"
