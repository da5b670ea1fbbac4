"""One chunk of source rows → typed rows for staging, plus the rows rejected and why.

Everything here is vectorised over the chunk; a row is rejected for its first problem, with
the field and a reason a person can act on, and its raw record is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import h3.api.basic_int as h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from etl.grids import GridIndex
from etl.mapping import FieldSpec, Mapping
from etl.readers import Chunk
from etl.staging import place_columns
from etl.targets import Field
from onemap.crs import geometry_to_wgs84, looks_swapped, outside, to_wgs84

# Points this far (degrees) beyond the district's extent are typos or a wrong CRS, not data.
FAR_OUTSIDE_DEG = 0.5
H3_RESOLUTION = 11
TRUE = {"1", "true", "t", "yes", "y", "是", "对"}
FALSE = {"0", "false", "f", "no", "n", "否", "错"}


@dataclass
class Context:
    """What a transform needs beyond the chunk: the mapping and the district's extent."""

    mapping: Mapping
    crs: str | None          # None: the file's own CRS, else WGS84
    timezone: str
    bounds: tuple[float, float, float, float] | None
    grids: GridIndex | None = None  # places points in their grid (None: no grids loaded)


@dataclass
class Result:
    rows: pd.DataFrame      # target fields + row_number, geom (hex EWKB), h3, grid_code,
    #                         place_1 … (one value per placement rule)
    rejects: pd.DataFrame   # row_number, field, reason, raw (JSON text)
    repaired: list[int]     # row numbers whose geometry make_valid repaired


class Problems:
    """The first problem of each row of a chunk."""

    def __init__(self, n: int):
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def add(self, mask, field: str, reasons) -> None:
        """Note ``reasons`` for masked rows that have no problem yet: a string, or a function
        of the mask giving one reason per masked row (built only for the rows that need it)."""
        mask = np.asarray(mask, dtype=bool) & (self.field == None)  # noqa: E711 (elementwise)
        if not mask.any():
            return
        self.field[mask] = field
        self.reason[mask] = reasons if isinstance(reasons, str) else reasons(mask)

    @property
    def bad(self) -> np.ndarray:
        return self.field != None  # noqa: E711


def transform(chunk: Chunk, ctx: Context) -> Result:
    """Map, type and check one chunk."""
    frame = chunk.frame
    problems = Problems(len(frame))
    out = pd.DataFrame(index=frame.index)
    out["row_number"] = np.arange(chunk.first_row, chunk.first_row + len(frame))
    _nul_characters(frame, ctx.mapping, problems)
    for field in ctx.mapping.target.fields:
        spec = ctx.mapping.fields.get(field.name)
        out[field.name] = _field(frame, field, spec, ctx, problems)
    _geometry(chunk, out, ctx, problems)
    _place(frame, out, ctx)
    bad = problems.bad
    rejects = pd.DataFrame({
        "row_number": out["row_number"][bad],
        "field": problems.field[bad],
        "reason": problems.reason[bad],
        "raw": raw_records(chunk, bad),
    })
    return Result(out[~bad].reset_index(drop=True), rejects, out.attrs.get("repaired", []))


# -- fields ----------------------------------------------------------------------------------
def _nul_characters(frame: pd.DataFrame, mapping: Mapping, problems: Problems) -> None:
    """A NUL character in any column the mapping reads: PostgreSQL text cannot hold it, and
    one such value would otherwise fail the whole batch's COPY."""
    fed = {c: name for name, spec in mapping.fields.items() for c in spec.source_columns()}
    for column in mapping.source_columns():
        if column not in frame.columns or frame[column].dtype != object:
            continue
        has_nul = pc.match_substring(_strings(frame[column].to_numpy()), "\x00")
        has_nul = has_nul.fill_null(False).to_numpy(zero_copy_only=False)
        problems.add(has_nul, fed.get(column, column),
                     f"{column} contains a NUL character (\\x00), which a text value cannot "
                     f"hold")


def _field(frame, field: Field, spec: FieldSpec | None, ctx: Context, problems: Problems):
    raw = _raw_values(frame, spec, len(frame))
    if spec is not None and spec.map is not None:
        raw = _apply_map(raw, spec, field.name, problems)
    if spec is not None and spec.default is not None:
        raw = raw.where(raw.notna(), str(spec.default))
    if field.required:
        problems.add(raw.isna(), field.name, f"{field.name} is missing")
    allowed = ctx.mapping.target.value_sets.get(field.name)
    if allowed:
        wrong = raw.notna() & ~raw.isin(allowed)
        problems.add(wrong, field.name, _quoted(raw, f"is not one of {', '.join(allowed)}"))
    if field.type == "json":
        return _json(frame, spec)
    return CONVERTERS[field.type](raw, field.name, spec, ctx, problems)


def _raw_values(frame: pd.DataFrame, spec: FieldSpec | None, n: int) -> pd.Series:
    if spec is None or spec.columns:
        return pd.Series([None] * n, index=frame.index, dtype=object)
    if spec.value is not None:
        return pd.Series([str(spec.value)] * n, index=frame.index, dtype=object)
    return pd.Series(_stripped(frame[spec.column].to_numpy()), index=frame.index, dtype=object)


def _strings(values: np.ndarray) -> pa.Array:
    """Source values (str or None: what every reader gives) as an Arrow string array."""
    return pa.array(values, type=pa.string(), from_pandas=True)


def _stripped(values: np.ndarray) -> np.ndarray:
    """Values without surrounding white space; None where missing or blank (in Arrow: a
    column at a time in C rather than a Python call per value)."""
    trimmed = pc.utf8_trim_whitespace(_strings(values))
    blank = pc.equal(trimmed, "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), trimmed).to_numpy(
        zero_copy_only=False)


def _apply_map(raw: pd.Series, spec: FieldSpec, name: str, problems: Problems) -> pd.Series:
    table = {str(k): (None if v is None else str(v)) for k, v in spec.map.items()}
    mapped = raw.map(table)
    unmapped = raw.notna() & ~raw.isin(table.keys())
    problems.add(unmapped, name, _quoted(raw, "is not in the mapping's value map"))
    return mapped.where(raw.isin(table.keys()), None)


def _quoted(raw: pd.Series, text: str):
    """Reasons quoting each masked row's value, e.g. "'2024-13-45' is not a date/time"."""
    return lambda mask: np.array([f"'{v}' {text}" for v in raw.to_numpy()[mask]], dtype=object)


def _text(raw, name, spec, ctx, problems):
    return raw


def _number(raw, name, spec, ctx, problems, integer=False):
    numbers = pd.to_numeric(raw, errors="coerce").astype(float)
    problems.add(raw.notna() & numbers.isna(), name, _quoted(raw, "is not a number"))
    infinite = np.isinf(numbers.to_numpy())
    problems.add(infinite, name, _quoted(raw, "is not a finite number (out of range)"))
    numbers = numbers.mask(infinite)
    if integer:
        fractional = numbers.notna() & (numbers != np.floor(numbers.fillna(0)))
        problems.add(fractional, name, _quoted(raw, "is not a whole number"))
    low, high = _bounds(name, ctx, integer)
    outside = numbers.notna() & ((numbers < low) | (numbers > high))
    problems.add(outside, name, _quoted(raw, f"is out of range (allowed {low:g} to {high:g})"))
    numbers = numbers.mask(outside)
    return numbers.round().astype("Int64") if integer else numbers


# What a column of each numeric type can hold when its field declares no bounds of its own.
TYPE_BOUNDS = {True: (-(2.0 ** 63), 2.0 ** 63 - 1024), False: (-1.7e308, 1.7e308)}


def _bounds(name: str, ctx: Context, integer: bool) -> tuple[float, float]:
    declared = next(f.bounds for f in ctx.mapping.target.fields if f.name == name)
    return declared or TYPE_BOUNDS[integer]


def _bool(raw, name, spec, ctx, problems):
    lowered = raw.str.lower()
    truth = lowered.isin(TRUE)
    problems.add(raw.notna() & ~truth & ~lowered.isin(FALSE), name,
                 _quoted(raw, "is not yes/no"))
    return truth.where(raw.notna(), None)


def _timestamp(raw, name, spec, ctx, problems):
    """Parse, localise naive times to the mapping's zone, and return them in UTC, naive and
    to the second (the load's session reads them in UTC; NaT where there is none)."""
    if not raw.notna().any():  # a field the source does not give
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[s]")
    parsed = _parse_times(raw, spec.format if spec else None, ctx.timezone)
    problems.add(raw.notna() & parsed.isna(), name, _quoted(raw, "is not a date/time"))
    return parsed.astype("datetime64[s]")


def _parse_times(raw: pd.Series, fmt: str | None, tz: str) -> pd.Series:
    """UTC times, naive (NaT where unparsable). Fast paths: the mapping's format read by
    Arrow, else one inferred format; what they leave goes through pandas (the format, or
    mixed formats)."""
    utc = _arrow_times(raw, fmt, tz) if fmt else None
    if utc is None:
        utc = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    todo = raw.notna() & utc.isna()
    for how in ([fmt] if fmt else [None, "mixed"]):
        if not todo.any():
            break
        values = raw[todo]
        for sub in [values] if fmt else _by_zone_awareness(values):
            converted = _to_utc(sub, how, tz)
            utc.loc[converted.index] = converted
        todo = raw.notna() & utc.isna()
    return utc


def _arrow_times(raw: pd.Series, fmt: str, tz: str) -> pd.Series | None:
    """``raw`` read with ``fmt`` by Arrow, naive times localised as :func:`_to_utc` does (a
    repeated hour is its first occurrence, a skipped time moves forward); NaT where Arrow
    could not read a value. None when Arrow cannot use the format at all."""
    try:
        parsed = pc.strptime(pa.array(raw.to_numpy(), type=pa.string(), from_pandas=True),
                             format=fmt, unit="us", error_is_null=True)
        if parsed.type.tz is None:
            parsed = pc.assume_timezone(parsed, timezone=tz, ambiguous="earliest",
                                        nonexistent="latest")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    naive = parsed.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    return pd.Series(naive.to_numpy(zero_copy_only=False), index=raw.index,
                     dtype="datetime64[us]")


def _by_zone_awareness(values: pd.Series) -> list[pd.Series]:
    """Split strings with an explicit offset from naive ones (pandas cannot mix them)."""
    aware = values.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
    return [s for s in (values[aware], values[~aware]) if len(s)]


def _to_utc(values: pd.Series, how: str | None, tz: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, format=how, errors="coerce")
    except (ValueError, TypeError):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if getattr(parsed.dt, "tz", None) is None:
        # The repeated hour when clocks go back reads as its first occurrence (summer time);
        # a time skipped when they go forward moves forward: neither loses the row.
        first = np.ones(len(parsed), dtype=bool)
        parsed = parsed.dt.tz_localize(tz, ambiguous=first, nonexistent="shift_forward")
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")


def _json(frame: pd.DataFrame, spec: FieldSpec | None) -> pd.Series:
    """An object of the spec's columns for each row, as JSON text (a missing value: null).
    Each column's distinct values are encoded once, then pasted together row by row."""
    if spec is None or not spec.columns:
        return pd.Series(["{}"] * len(frame), index=frame.index, dtype=object)
    text = np.full(len(frame), "{", dtype=object)
    for number, column in enumerate(spec.columns):
        codes, distinct = pd.factorize(frame[column].to_numpy(dtype=object))
        encoded = np.array([*(json.dumps(v, ensure_ascii=False, default=str)
                              for v in distinct), "null"], dtype=object)
        key = ("" if number == 0 else ", ") + json.dumps(column, ensure_ascii=False) + ": "
        text = text + key + encoded[codes]  # code -1 (missing) takes the last: null
    return pd.Series(text + "}", index=frame.index, dtype=object)


CONVERTERS = {
    "text": _text,
    "float": _number,
    "int": lambda *a: _number(*a, integer=True),
    "bool": _bool,
    "timestamp": _timestamp,
}


# -- geometry ---------------------------------------------------------------------------------
def _geometry(chunk: Chunk, out: pd.DataFrame, ctx: Context, problems: Problems) -> None:
    target = ctx.mapping.target
    if target.geometry == "none":
        out["geom"] = None
        return
    spec = ctx.mapping.geometry
    if spec is not None:
        geoms = _geoms_from_columns(chunk.frame, spec, ctx, problems)
    elif chunk.geometry is not None:
        geoms = geometry_to_wgs84(chunk.geometry, ctx.crs or chunk.crs or "wgs84")
    else:
        geoms = np.full(len(out), None, dtype=object)
    if target.geometry == "polygon":
        geoms = _polygons(geoms, out, problems)
    else:
        geoms = _points(geoms, target.geometry == "required", ctx, problems)
        out["h3"] = _h3_cells(geoms)
        out["grid_code"] = ctx.grids.place(geoms) if ctx.grids else None
    geoms = shapely.set_srid(geoms, 4326)
    out["geom"] = shapely.to_wkb(geoms, hex=True, include_srid=True)


def _h3_cells(points: np.ndarray) -> pd.Series:
    """Each point's H3 cell at ``H3_RESOLUTION`` (signed 64-bit: H3's top bit is always 0)."""
    lon, lat = shapely.get_x(points), shapely.get_y(points)
    present = np.flatnonzero(~np.isnan(lat))
    cells = np.zeros(len(points), dtype=np.int64)
    cells[present] = [h3.latlng_to_cell(y, x, H3_RESOLUTION)
                      for x, y in zip(lon[present], lat[present], strict=True)]
    return pd.Series(pd.arrays.IntegerArray(cells, np.isnan(lat)))


def _geoms_from_columns(frame, spec, ctx: Context, problems: Problems) -> np.ndarray:
    if spec.wkt:
        text = frame[spec.wkt].where(frame[spec.wkt].notna(), None)
        text = text.where(text.str.strip() != "", None)
        geoms = shapely.from_wkt(text.to_numpy(), on_invalid="ignore")
        problems.add(text.notna().to_numpy() & shapely.is_missing(geoms), "geometry",
                     _quoted(text, "is not valid WKT"))
        return geometry_to_wgs84(geoms, ctx.crs or "wgs84")
    x = _coordinate(frame, spec.x, problems)
    y = _coordinate(frame, spec.y, problems)
    half = np.isnan(x) != np.isnan(y)
    problems.add(half, spec.x if np.isnan(x).any() else spec.y,
                 "only one of the two coordinates is given")
    lon, lat = to_wgs84(x, y, ctx.crs or "wgs84")
    points = shapely.points(lon, lat)
    return np.where(np.isnan(lon) | np.isnan(lat), None, points)


def _coordinate(frame: pd.DataFrame, column: str, problems: Problems) -> np.ndarray:
    given = frame[column].to_numpy()
    raw = pd.Series(given, index=frame.index, dtype=object).where(pd.notna(_stripped(given)),
                                                                  None)
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    problems.add(raw.notna() & values.isna(), column, _quoted(raw, "is not a number"))
    infinite = np.isinf(values.to_numpy())
    problems.add(infinite, column, _quoted(raw, "is not a finite number"))
    return np.where(infinite, np.nan, values.to_numpy())


def _points(geoms, required: bool, ctx: Context, problems: Problems) -> np.ndarray:
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if required:
        problems.add(missing, "geometry", "no location (empty or missing geometry)")
    kinds = shapely.get_type_id(geoms)
    problems.add(~missing & (kinds != 0), "geometry", "is not a point")
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(shapely.get_x(geoms)) & np.isfinite(shapely.get_y(geoms))
    problems.add(~missing & (kinds == 0) & ~finite, "geometry",
                 "has a coordinate that is not a finite number")
    geoms = np.where(missing | (kinds != 0) | ~finite, None, geoms)
    if ctx.bounds is not None:
        lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
        problems.add(looks_swapped(lon, lat, ctx.bounds), "geometry",
                     _where(lon, lat, "latitude and longitude look swapped"))
        problems.add(outside(lon, lat, ctx.bounds, FAR_OUTSIDE_DEG), "geometry",
                     _where(lon, lat, "is far outside the district (wrong CRS?)"))
    return geoms


def _where(lon: np.ndarray, lat: np.ndarray, text: str):
    """Reasons naming each masked point."""
    return lambda mask: np.array([f"({x:.6f}, {y:.6f}) {text}" for x, y in
                                  zip(lon[mask], lat[mask], strict=True)], dtype=object)


def _polygons(geoms, out: pd.DataFrame, problems: Problems) -> np.ndarray:
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    problems.add(missing, "geometry", "empty or missing geometry")
    invalid = ~missing & ~shapely.is_valid(geoms)
    repaired = np.where(invalid, shapely.make_valid(geoms), geoms)
    polygonal = np.array([_polygonal_part(g) for g in repaired], dtype=object)
    problems.add(~missing & shapely.is_missing(polygonal), "geometry", "is not a polygon")
    problems.add(~_lon_lat(polygonal), "geometry",
                 "its coordinates are not longitudes and latitudes (wrong CRS?)")
    out.attrs["repaired"] = out["row_number"][invalid].tolist()
    return polygonal


def _lon_lat(geoms: np.ndarray) -> np.ndarray:
    """True where a geometry (or its absence) lies within longitude/latitude's range."""
    with np.errstate(invalid="ignore"):
        x0, y0, x1, y1 = shapely.bounds(geoms).T
        inside = (x0 >= -180) & (x1 <= 180) & (y0 >= -90) & (y1 <= 90)
    return inside | shapely.is_missing(geoms)


def _polygonal_part(geom):
    """The (multi)polygon inside a geometry, as a MultiPolygon; None when there is none."""
    if geom is None or geom.is_empty:
        return None
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
    flat = [q for p in polys for q in shapely.get_parts(p)]
    return shapely.multipolygons(flat) if flat else None


# -- placing by admin code or name, and the raw records ---------------------------------------
def _place(frame: pd.DataFrame, out: pd.DataFrame, ctx: Context) -> None:
    """Each placement rule's value of each row without a point (``place_1`` …), stripped and
    rewritten by the rule's pattern; the database looks them up (``etl.places``). A row with
    a point is placed by it: its values are left out (None)."""
    rules = ctx.mapping.place
    unplaced = out["geom"].isna().to_numpy()
    for name, rule in zip(place_columns(len(rules)), rules, strict=True):
        if rule.column is None:
            out[name] = str(rule.value)
            continue
        values = pd.Series(_stripped(frame[rule.column].to_numpy()), index=frame.index,
                           dtype=object).where(unplaced, None)
        if rule.pattern:
            unique = values.dropna().unique()
            rewritten = pd.Series(unique).str.replace(rule.pattern, rule.replace or "",
                                                      regex=True)
            values = values.map(dict(zip(unique, rewritten, strict=True)))
        out[name] = values


def raw_records(chunk: Chunk, bad: np.ndarray) -> list[str]:
    """The source records of the masked rows as JSON text (geometry as WKT)."""
    rows = chunk.frame[bad]
    records = []
    for i, row in zip(np.flatnonzero(bad), rows.to_dict("records"), strict=True):
        if chunk.geometry is not None and chunk.geometry[i] is not None:
            row["geometry"] = shapely.to_wkt(chunk.geometry[i], rounding_precision=7)
        text = json.dumps(row, ensure_ascii=False, default=str)
        # jsonb cannot hold \u0000 either: the record keeps it as the visible text \x00.
        records.append(text.replace("\\u0000", "\\\\x00"))
    return records
