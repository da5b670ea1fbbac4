"""Exports of exactly the layer, scope and filters a person sees: GeoJSON, GeoPackage,
Shapefile (.zip with .cpg), CSV (UTF-8 with BOM, for Excel), XLSX, and a standalone HTML
map (folium, every asset inline). Rows stream from the database in batches; every row
carries the codes and names of its grid, community, street and district.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from sqlalchemy import Connection, text

from layers.basemap import SHIFTED, shift_geometries
from layers.catalog import LayerSpec
from layers.errors import BadParameter, Busy, LayerError, StorageError
from layers.features import iter_rows
from layers.filters import Filters
from layers.scope import Scope
from layers.times import is_time_column, iso_series, local_series

try:
    from lxml.etree import SerialisationError
except ImportError:  # openpyxl then writes with the standard library, which raises OSError
    SerialisationError = OSError

# What writing can fail with when the disk is full or the folder read-only: GDAL and lxml
# raise their own types for what Python reports as OSError.
WRITE_ERRORS = (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FeatureError, SerialisationError)
FORMATS = {
    "geojson": (".geojson", "application/geo+json"),
    "gpkg": (".gpkg", "application/geopackage+sqlite3"),
    "shp": (".zip", "application/zip"),
    "csv": (".csv", "text/csv; charset=utf-8"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "html": (".html", "text/html; charset=utf-8"),
}
EXPORT_CRS = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": None, "bd09": None}
# Rows per batch from the server-side cursor to the writer: an export's memory is that of
# one batch, whatever its size (with 20,000 rows a batch, the demo city's 50,000 cases
# added ~190 MB to the process; with 2,000, ~30 MB).
EXPORT_BATCH = 2_000
XLSX_MAX_ROWS = 1_048_575
# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HTML_MAX_ROWS = 20_000
# Shapefile field names are at most 10 characters: say what they become, not GDAL's guess.
SHAPEFILE_NAMES = {
    "district_code": "dist_code", "district_name": "dist_name", "street_code": "strt_code",
    "street_name": "strt_name", "community_code": "comm_code", "community_name": "comm_name",
    "grid_code": "grid_code", "grid_name": "grid_name", "parent_code": "parent",
    "accepted_at": "accepted", "dispatched_at": "dispatched", "handled_at": "handled",
    "feedback_at": "feedback", "closed_at": "closed", "evaluated_at": "evaluated",
    "reported_at": "reported", "handling_unit": "handl_unit", "satisfaction": "satisfact",
    "resolved_level": "res_level", "handling_hours": "handl_hrs", "located_by": "located_by",
    "placed_level": "placed_lvl",
    "reporter_name": "rep_name", "reporter_phone": "rep_phone",
}


# Advisory lock keys (namespace, key): a person's export, and the server-wide slots. They
# are transaction locks, let go when the export's transaction ends however it ends; every
# worker process and a read replica see the same ones.
PERSON_LOCK = 0x6F6D6570   # with hashtext(the person's name)
SLOT_LOCK = 0x6F6D6573     # with the slot's number
RETRY_AFTER_S = 15


@dataclass
class ExportResult:
    path: Path
    rows: int
    format: str


def check_format(fmt: str, crs: str) -> None:
    if fmt not in FORMATS:
        raise BadParameter("format", fmt, f"must be one of {', '.join(FORMATS)}")
    if crs not in EXPORT_CRS:
        raise BadParameter("crs", crs, f"must be one of {', '.join(EXPORT_CRS)}")


def take_slot(conn: Connection, person: str, slots: int) -> None:
    """Hold, for the rest of ``conn``'s transaction, the right to write one export: one per
    person at a time, and one of ``slots`` server-wide (writing an export keeps a core busy,
    and the people at the map need the others). Raise :class:`Busy` when either is taken."""
    mine = conn.execute(text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:who))"),
                        {"ns": PERSON_LOCK, "who": person}).scalar()
    if not mine:
        raise Busy("an export of yours is still being written; wait for it to finish",
                   RETRY_AFTER_S)
    for slot in range(slots):
        if conn.execute(text("SELECT pg_try_advisory_xact_lock(:ns, :slot)"),
                        {"ns": SLOT_LOCK, "slot": slot}).scalar():
            return
    raise Busy(f"{slots} export{'s are' if slots > 1 else ' is'} being written now, the most "
               f"the server writes at once; try again shortly", RETRY_AFTER_S)


def export(conn: Connection, layer: LayerSpec, scope: Scope, filters: Filters, fmt: str,
           out: Path, crs: str = "wgs84", personal: str | None = None,
           progress: Callable[[int], None] | None = None, *, zone: str) -> ExportResult:
    """Write the export to ``out`` whole or not at all: it is written beside ``out`` and
    renamed when complete and checked. A folder that cannot be written (read-only, full
    disk) raises :class:`StorageError` naming the path, and leaves no partial file. Times
    are in the local ``zone``: ISO 8601 with the offset in text formats, datetimes with the
    zone named in XLSX (header) and GeoPackage (the layer's description)."""
    check_format(fmt, crs)
    frames = _frames(conn, layer, scope, filters, crs, personal, zone,
                     progress or (lambda n: None))
    out = Path(out)
    if out.exists() and not out.is_file():
        raise StorageError(f"cannot write {out}: it exists and is not a regular file")
    part = out.with_name(f".{out.stem}.part{out.suffix}")  # GDAL goes by the suffix
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = WRITERS[fmt](frames, part, layer, crs)
        part.replace(out)
    except WRITE_ERRORS as exc:
        raise StorageError(f"cannot write {out}: {_reason(exc)}") from exc
    finally:
        part.unlink(missing_ok=True)
    return ExportResult(out, rows, fmt)


def _reason(exc: Exception) -> str:
    """The system's words for a write error (lxml says only 'IO_EFBIG')."""
    text = getattr(exc, "strerror", None) or str(exc)
    code = getattr(errno, text[3:], None) if text.startswith("IO_E") else None
    return os.strerror(code) if code else text


def _check_written(path: Path, rows: int) -> None:
    """GDAL does not always report a short write (a Shapefile's .dbf on a full disk): read
    the feature count back from what it wrote."""
    try:
        found = pyogrio.read_info(path, layer=0)["features"]
    except pyogrio.errors.DataSourceError as exc:
        raise OSError(f"the written file does not read back ({exc})") from exc
    if found != rows:
        raise OSError(f"only {found:,} of {rows:,} rows reached the disk")


def _frames(conn, layer, scope, filters, crs, personal, zone,
            progress) -> Iterator[gpd.GeoDataFrame]:
    for batch in iter_rows(conn, layer, scope, filters, personal, EXPORT_BATCH):
        frame = pd.DataFrame(batch)
        geometry = shapely.from_wkb(frame.pop("geometry").to_numpy())
        if crs in SHIFTED:
            geometry = shift_geometries(geometry, crs)
        progress(len(frame))
        yield gpd.GeoDataFrame(_local(frame, zone), geometry=geometry,
                               crs=EXPORT_CRS[crs] or "EPSG:4326")


def _local(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Instants in the local ``zone`` (each writer then writes them its way); other values
    that only ISO text keeps (dates) as that text."""
    for column in frame.columns:
        values = frame[column]
        if is_time_column(values):
            frame[column] = local_series(values, zone)
        elif _first_has_isoformat(values):  # dates, times: one type per column
            frame[column] = values.map(lambda v: None if v is None else v.isoformat())
    return frame


def _first_has_isoformat(values: pd.Series) -> bool:
    first = values.first_valid_index()
    return first is not None and hasattr(values[first], "isoformat")


def _time_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Local times as ISO 8601 text with their offset (GeoJSON, CSV, Shapefile, HTML)."""
    columns = _time_columns(frame)
    if columns:
        frame = frame.copy()
        for column in columns:
            frame[column] = iso_series(frame[column])
    return frame


def _zone_of(frame: pd.DataFrame) -> str | None:
    """The zone the frame's times are in (None when it holds none)."""
    columns = _time_columns(frame)
    return str(frame[columns[0]].dt.tz) if columns else None


# -- writers: each consumes the frames and returns the number of rows -------------------------
def _geojson(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    rows = 0
    with out.open("w", encoding="utf-8") as handle:
        handle.write('{"type": "FeatureCollection", "features": [\n')
        for frame in frames:
            for feature in json.loads(_as_text(frame).to_json(drop_id=True))["features"]:
                handle.write((",\n" if rows else "") + json.dumps(feature, ensure_ascii=False))
                rows += 1
        handle.write("\n]}\n")
    return rows


def _gpkg(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    out.unlink(missing_ok=True)
    rows = 0
    for frame in frames:
        # Datetime fields keep the local offset; the layer's description names the zone.
        zone = _zone_of(frame)
        options = {"DESCRIPTION": f"times in {zone}"} if zone and not rows else None
        frame.to_file(out, layer=layer.id, driver="GPKG", mode="a" if rows else "w",
                      layer_options=options)
        rows += len(frame)
    if not rows:
        _empty(layer, crs).to_file(out, layer=layer.id, driver="GPKG")
    _check_written(out, rows)
    return rows


def _shp(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        shp = Path(folder) / f"{layer.id}.shp"
        rows = 0
        for frame in frames:
            frame = _as_text(frame).rename(columns=SHAPEFILE_NAMES)
            frame.to_file(shp, driver="ESRI Shapefile", encoding="UTF-8",
                          mode="a" if rows else "w")
            rows += len(frame)
        if not rows:
            _empty(layer, crs).rename(columns=SHAPEFILE_NAMES).to_file(
                shp, driver="ESRI Shapefile", encoding="UTF-8")
        _check_written(shp, rows)
        _check_dbf(shp.with_suffix(".dbf"))
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(folder).iterdir()):
                archive.write(part, part.name)
    return rows


def _csv(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    rows = 0
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        for frame in frames:
            _tabular(_as_text(frame)).to_csv(handle, header=rows == 0, index=False)
            rows += len(frame)
        if not rows:  # nothing matched: still the header, so the file says what it is
            _tabular(_empty(layer, crs)).to_csv(handle, index=False)
    return rows


def _xlsx(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(layer.id)
    try:
        rows = _xlsx_rows(frames, sheet)
        book.save(out)
    except (*WRITE_ERRORS, LayerError):
        _discard(sheet)
        raise
    return rows


def _xlsx_rows(frames, sheet) -> int:
    rows = 0
    for frame in frames:
        table = _excel_times(_tabular(frame))
        if rows == 0:
            sheet.append(list(table.columns))
        rows += len(table)
        if rows > XLSX_MAX_ROWS:
            raise LayerError(f"{rows:,}+ rows do not fit in one Excel sheet "
                             f"({XLSX_MAX_ROWS:,} at most): export CSV or narrow the filters")
        for record in table.itertuples(index=False):
            sheet.append([None if pd.isna(v) else v for v in record])
    return rows


def _excel_times(table: pd.DataFrame) -> pd.DataFrame:
    """Local times as Excel datetimes, which hold no zone: the header names it
    (``reported_at (Asia/Shanghai)``)."""
    zone = _zone_of(table)
    if zone is None:
        return table
    columns = _time_columns(table)
    for column in columns:
        table[column] = table[column].dt.tz_localize(None)
    return table.rename(columns={c: f"{c} ({zone})" for c in columns})


def _discard(sheet) -> None:
    """Close a write-only sheet's half-written stream now (left to the garbage collector,
    it would print its own error after ours) and remove the temporary file openpyxl keeps
    it in, which it would otherwise leave until the process ends."""
    with contextlib.suppress(*WRITE_ERRORS):
        sheet._writer.xf.close()
    with contextlib.suppress(OSError, ValueError):
        sheet._writer.cleanup()


def _check_dbf(path: Path) -> None:
    """A .dbf is as long as its header says (GDAL reads a cut-off one without complaint)."""
    with path.open("rb") as handle:
        head = handle.read(12)
    count = int.from_bytes(head[4:8], "little")
    header, record = int.from_bytes(head[8:10], "little"), int.from_bytes(head[10:12], "little")
    if path.stat().st_size < header + count * record:
        raise OSError(f"the attribute table {path.name} was cut short")


def _tabular(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Points as lon/lat columns, other shapes as WKT; text that could start a formula
    made inert."""
    table = _inert(pd.DataFrame(frame.drop(columns="geometry")))
    geometry = frame.geometry.values
    if len(frame) and (shapely.get_type_id(geometry) == 0).all():
        table["lon"], table["lat"] = shapely.get_x(geometry), shapely.get_y(geometry)
    else:
        table["wkt"] = shapely.to_wkt(geometry, rounding_precision=7)
    return table


def _inert(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+cmd|…``)
    get a leading apostrophe, as OWASP advises: Excel then shows the text, in CSV and in
    XLSX (where openpyxl would otherwise store it as a formula). Numbers and times stay
    what they are."""
    for column in table.columns:
        values = table[column]
        if not (pd.api.types.is_numeric_dtype(values)
                or pd.api.types.is_datetime64_any_dtype(values)):  # object or str: text
            table[column] = _inert_column(values)
    return table


def _inert_column(values: pd.Series) -> pd.Series:
    """:func:`_inert_value` for a whole column at once (the per-cell form for columns the
    string methods refuse: no text at all)."""
    try:
        starts = values.str.startswith(FORMULA_STARTS)
    except AttributeError:
        return values.map(_inert_value)
    formula = starts.fillna(False).astype(bool)
    if not formula.any():
        return values
    return values.where(~formula, "'" + values[formula])


def _inert_value(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
        else value


def _html(frames, out: Path, layer: LayerSpec, crs: str) -> int:
    from layers.htmlmap import standalone_map

    collected = []
    for frame in frames:
        collected.append(_as_text(frame))
        if sum(len(f) for f in collected) > HTML_MAX_ROWS:
            raise LayerError(f"more than {HTML_MAX_ROWS:,} features are too many for an HTML "
                             "map: narrow the scope or filters, or export GeoPackage")
    frame = pd.concat(collected) if collected else _empty(layer, crs)
    out.write_text(standalone_map(gpd.GeoDataFrame(frame, geometry="geometry"), layer),
                   encoding="utf-8")
    return len(frame)


def _empty(layer: LayerSpec, crs: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in layer.columns},
                            geometry=gpd.GeoSeries([], crs=EXPORT_CRS[crs] or "EPSG:4326"))


WRITERS = {"geojson": _geojson, "gpkg": _gpkg, "shp": _shp, "csv": _csv, "xlsx": _xlsx,
           "html": _html}
