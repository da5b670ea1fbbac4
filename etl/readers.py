"""Streaming readers for real-world exports: vector files, CSV and XLSX, in chunks.

Every reader yields :class:`Chunk` objects of at most ``chunk_rows`` records, so memory stays
flat however large the file is.  Attribute values always arrive as ``str`` (missing -> ``None``)
under their original column names; typing them is the mapping step's job.

* Vector formats (GeoJSON, Shapefile, a folder or zip holding one, GeoPackage) stream through
  pyogrio's Arrow API; geometries come back as shapely objects, the CRS as the file states it.
* CSV/TXT go through pandas' C parser; encoding is UTF-8 (BOM or not) or GB18030.
* XLSX goes through openpyxl in read-only mode.

Anything that cannot be read raises :class:`SourceError`, whose message names the file, the row
and field when known, and the reason.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import json
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from pandas.errors import EmptyDataError, ParserError, ParserWarning
from pyogrio.errors import DataLayerError, DataSourceError
from pyogrio.raw import open_arrow

from onemap.errors import OnemapError

VECTOR_SUFFIXES = frozenset({".geojson", ".json", ".shp", ".gpkg"})
CSV_SUFFIXES = frozenset({".csv", ".txt"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
ZIP_MEMBER_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json")

SNIFF_BYTES = 1 << 20  # how much of a CSV decides its encoding
CSV_CHUNK_BYTES = 32 << 20  # about this much of a CSV per chunk: wide rows, shorter chunks
MIN_CSV_CHUNK_ROWS = 1_000
DBF_SNIFF_BYTES = 64 << 20  # how much of a .dbf decides UTF-8 versus GB18030
GBK = "GB18030"  # superset of GBK/GB2312: the fallback for undeclared Chinese text
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that failed to decode (surrogateescape)
_GDAL_HINT = re.compile(r";?\s*It might help to specify the correct driver.*$", re.S)
_GDAL_ERRORS = (DataSourceError, DataLayerError, RuntimeError, OSError, pa.ArrowException)


class SourceError(OnemapError):
    """A file that cannot be read; message names the file, and row/field when known, and why."""

    def __init__(self, path, reason, row=None, field=None):
        self.path, self.reason, self.row, self.field = Path(path), reason, row, field
        where = [f"row {row}"] if row is not None else []
        where += [f"field {field!r}"] if field is not None else []
        at = f" ({', '.join(where)})" if where else ""
        super().__init__(f"Cannot read {path}{at}: {reason}")


@dataclass
class Chunk:
    """One slice of a source file, ready for column mapping and a COPY into staging."""

    path: Path  # the file (or the .shp inside a zip/folder) the rows came from
    first_row: int  # 1-based record number of frame's first row in that file (header not counted)
    frame: pd.DataFrame  # attribute columns, original names, values as str (missing -> None)
    geometry: np.ndarray | None  # shapely geometries for vector formats, None for CSV/XLSX
    crs: str | None  # the file's own CRS as "EPSG:nnnn" or WKT when known, else None


# --------------------------------------------------------------------------- public API


def read_chunks(
    path: str | Path,
    chunk_rows: int = 50_000,
    layer: str | None = None,
    encoding: str | None = None,
) -> Iterator[Chunk]:
    """Yield the records of ``path`` in chunks of at most ``chunk_rows``.

    ``layer`` picks a GeoPackage layer, an XLSX sheet, or one shapefile among several in a
    folder/zip; ``encoding`` overrides detection for CSV and shapefiles.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    path = Path(path)
    kind = _kind(path)
    if kind == "csv":
        return _read_csv(path, chunk_rows, encoding)
    if kind == "xlsx":
        return _read_xlsx(path, chunk_rows, layer)
    return _read_vector(path, chunk_rows, layer, encoding)


def sniff_columns(path, layer=None, encoding=None) -> list[str]:
    """Attribute column names of ``path`` (no geometry column), reading only the header."""
    path = Path(path)
    kind = _kind(path)
    if kind == "csv":
        return list(_csv_format(path, encoding).header)
    if kind == "xlsx":
        with closing(_workbook(path)) as wb:
            rows = _worksheet(path, wb, layer).iter_rows()
            header = _xlsx_header(path, next(rows, ()))
            # The first rows show a merged title row (values under empty header cells).
            list(itertools.islice(_xlsx_records(path, rows, len(header)), 100))
            return header
    src = _resolve_vector(path, layer, verify=False)
    info = _gdal(src.display, pyogrio.read_info, src.gdal_path, layer=src.layer,
                 encoding=_vector_encoding(src, encoding))
    return _unique(src.display, [str(name) for name in info["fields"]])


def count_hint(path) -> int | None:
    """Number of records when cheap to know (vector formats, XLSX dimension), else ``None``."""
    path = Path(path)
    try:
        kind = _kind(path)
        if kind == "csv":
            return None
        if kind == "xlsx":
            return _xlsx_count(path)
        src = _resolve_vector(path, None, verify=False)
        count = pyogrio.read_info(src.gdal_path, layer=src.layer)["features"]
    except (SourceError, *_GDAL_ERRORS):
        return None
    return int(count) if count is not None and count >= 0 else None


# --------------------------------------------------------------------------- shared helpers


def _kind(path: Path) -> str:
    """'vector', 'csv' or 'xlsx' for an existing, non-empty ``path``; SourceError otherwise."""
    if not path.exists():
        raise SourceError(path, "the file does not exist")
    if path.is_dir():
        return "vector"
    try:
        with path.open("rb") as handle:
            if not handle.read(1):
                raise SourceError(path, "the file is empty (0 bytes)")
    except OSError as exc:
        raise SourceError(path, f"the file cannot be opened ({exc.strerror or exc})") from exc
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES or suffix == ".zip":
        return "vector"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    hint = " (save it as .xlsx)" if suffix == ".xls" else ""
    raise SourceError(path, f"unsupported file type {suffix or '(no suffix)'!r}{hint}; "
                            "expected .geojson, .json, .shp, .gpkg, .zip, .csv, .txt or .xlsx")


def _unique(path: Path, names: list[str]) -> list[str]:
    """``names`` unchanged, or SourceError naming the first duplicated column."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SourceError(path, f"column name {name!r} appears more than once; "
                                    "duplicate column names are not supported", field=name)
        seen.add(name)
    return names


def _batches(records: Iterable[list], size: int) -> Iterator[tuple[int, list[list]]]:
    """Group ``records`` into lists of ``size``, each with its 1-based first record number."""
    records, first = iter(records), 1
    while batch := list(itertools.islice(records, size)):
        yield first, batch
        first += len(batch)


def _frame(data: dict | list[list], names: list[str], rows: int) -> pd.DataFrame:
    """An object-dtype frame of ``rows`` rows (pandas 3 would infer its own string dtype)."""
    return pd.DataFrame(data, index=pd.RangeIndex(rows), columns=names, dtype=object)


# --------------------------------------------------------------------------- vector formats


@dataclass(frozen=True)
class _Vector:
    """A vector source resolved to something GDAL can open."""

    display: Path  # reported in Chunk.path and errors
    gdal_path: str  # handed to GDAL (may be a /vsizip/ path)
    layer: str | None  # GDAL layer name, for GeoPackages
    dbf: tuple[Path, str | None] | None  # shapefile .dbf: (file, None) or (zip, member)
    has_cpg: bool  # shapefile declares its encoding


def _read_vector(path: Path, chunk_rows: int, layer, encoding) -> Iterator[Chunk]:
    """Stream a vector source through pyogrio's Arrow API."""
    src = _resolve_vector(path, layer)
    options = {"layer": src.layer, "encoding": _vector_encoding(src, encoding),
               "batch_size": chunk_rows, "use_pyarrow": True, "datetime_as_string": True}
    return _vector_chunks(src, options)


def _vector_chunks(src: _Vector, options: dict) -> Iterator[Chunk]:
    """Generator behind :func:`_read_vector`; GDAL failures become SourceError."""
    first = 1
    try:
        with open_arrow(src.gdal_path, **options) as (meta, reader):
            _unique(src.display, [str(name) for name in meta["fields"]])
            for batch in reader:
                yield _vector_chunk(src, meta, batch, first)
                first += batch.num_rows
    except _GDAL_ERRORS as exc:
        row = first if first > 1 else None
        raise SourceError(src.display, _gdal_reason(src.display, exc), row=row) from exc


def _vector_chunk(src: _Vector, meta: dict, batch: pa.RecordBatch, first: int) -> Chunk:
    """Turn one Arrow batch into a Chunk: attributes as str, geometry as shapely."""
    geom_index = _geometry_index(batch.schema, meta)
    names, columns = [], {}
    for index, name in enumerate(batch.schema.names):
        if index != geom_index:
            names.append(name)
            columns[name] = _arrow_strings(src.display, batch.column(index), name, first)
    if geom_index is None:
        geometry = np.full(batch.num_rows, None, dtype=object)
    else:
        geometry = _geometries(src.display, batch.column(geom_index), first)
    frame = _frame(columns, names, batch.num_rows)
    return Chunk(src.display, first, frame, geometry, meta.get("crs") or None)


def _geometry_index(schema: pa.Schema, meta: dict) -> int | None:
    """Index of the WKB geometry column in an Arrow batch from GDAL, or None."""
    for index, field in enumerate(schema):
        if (field.metadata or {}).get(b"ARROW:extension:name") == b"geoarrow.wkb":
            return index
    name = meta.get("geometry_name") or "wkb_geometry"
    return schema.get_field_index(name) if name in schema.names else None


def _geometries(path: Path, column: pa.Array, first: int) -> np.ndarray:
    """Shapely geometries from a WKB column (nulls stay None)."""
    try:
        return shapely.from_wkb(column.to_numpy(zero_copy_only=False))
    except (shapely.errors.ShapelyError, ValueError) as exc:
        raise SourceError(path, f"a geometry in rows {first}..{first + len(column) - 1} "
                                f"is not valid WKB ({exc})") from exc


def _arrow_strings(path: Path, column: pa.Array, name: str, first: int) -> np.ndarray:
    """An Arrow column as an object array of str / None."""
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return column.to_numpy(zero_copy_only=False)
        try:
            return pc.cast(column, pa.string()).to_numpy(zero_copy_only=False)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            return _python_strings(column)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _not_text(path, column, name, first, exc) from exc


def _python_strings(column: pa.Array) -> np.ndarray:
    """Fallback for lists, structs and binary: JSON text, hex for bytes."""
    out = np.empty(len(column), dtype=object)
    for index, value in enumerate(column.to_pylist()):
        if value is None or isinstance(value, str):
            out[index] = value
        elif isinstance(value, bytes):
            out[index] = value.hex()
        else:
            out[index] = json.dumps(value, ensure_ascii=False, default=str)
    return out


def _not_text(path: Path, column: pa.Array, name: str, first: int, exc) -> SourceError:
    """SourceError for a column that cannot become text, naming the first undecodable row."""
    raw = pc.cast(column, pa.binary()).to_pylist() if pa.types.is_string(column.type) else []
    bad = next((i for i, v in enumerate(raw) if v is not None and not _is_utf8(v)), None)
    if bad is None:
        return SourceError(path, f"values cannot be converted to text ({exc})", field=name)
    return SourceError(path, "text is not valid UTF-8 and the file does not declare its "
                             "encoding; pass encoding= (for example 'GB18030' or 'cp1252')",
                       row=first + bad, field=name)


def _is_utf8(value: bytes) -> bool:
    """True when ``value`` decodes as UTF-8."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _gdal(display: Path, func, *args, **kwargs):
    """Call a pyogrio function, turning GDAL errors into SourceError."""
    try:
        return func(*args, **kwargs)
    except _GDAL_ERRORS as exc:
        raise SourceError(display, _gdal_reason(display, exc)) from exc


def _gdal_reason(display: Path, exc: Exception) -> str:
    """A readable reason from a pyogrio/GDAL/Arrow exception."""
    message = _GDAL_HINT.sub("", str(exc)).strip() or type(exc).__name__
    if "not recognized as being in a supported file format" in message:
        return (f"GDAL does not recognise it as a {display.suffix or 'vector'} file "
                "(corrupt, truncated or wrong extension)")
    if "No such file or directory" in message:
        return "the file does not exist"
    if "Failed to read GeoJSON data" in message:
        return "invalid GeoJSON: " + message.split(";", 1)[-1].strip()
    return f"GDAL could not read it: {message}"


def _resolve_vector(path: Path, layer: str | None, verify: bool = True) -> _Vector:
    """Find the dataset GDAL should open for a file, folder or zip (``verify``: zip CRCs)."""
    if path.is_dir():
        return _resolve_folder(path, layer)
    if path.suffix.lower() == ".zip":
        return _resolve_zip(path, layer, verify)
    if path.suffix.lower() == ".shp":
        return _shapefile(path, str(path), [p.name for p in path.parent.iterdir()], None)
    if path.suffix.lower() == ".gpkg":
        return _Vector(path, str(path), _gpkg_layer(path, str(path), layer), None, False)
    return _Vector(path, str(path), None, None, False)


def _resolve_folder(path: Path, layer: str | None) -> _Vector:
    """The one shapefile in a folder (or the one ``layer`` names)."""
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    shp = _pick(path, [n for n in names if n.lower().endswith(".shp")], layer, "folder")
    return _shapefile(path / shp, str(path / shp), names, None)


def _resolve_zip(path: Path, layer: str | None, verify: bool) -> _Vector:
    """The one dataset inside a zip, after checking the archive is complete."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not _zip_junk(n)]
            member = _pick(path, [n for n in names if n.lower().endswith(ZIP_MEMBER_SUFFIXES)],
                           layer, "zip archive")
            if verify:
                _check_members(path, archive, [n for n in names if _same_stem(n, member)])
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise SourceError(path, "it is not a complete zip archive (truncated or corrupt)") from exc
    gdal_path = f"/vsizip/{path.resolve()}/{member}"
    if member.lower().endswith(".shp"):
        return _shapefile(path / member, gdal_path, names, path)
    gpkg = member.lower().endswith(".gpkg")
    gdal_layer = _gpkg_layer(path / member, gdal_path, layer) if gpkg else None
    return _Vector(path / member, gdal_path, gdal_layer, None, False)


def _zip_junk(name: str) -> bool:
    """Folders and macOS resource forks inside a zip."""
    return name.endswith("/") or name.startswith("__MACOSX/") or Path(name).name.startswith("._")


def _same_stem(name: str, member: str) -> bool:
    """True for the sidecar files of ``member`` (same folder and stem)."""
    return name.rsplit(".", 1)[0].lower() == member.rsplit(".", 1)[0].lower()


def _check_members(path: Path, archive: zipfile.ZipFile, names: list[str]) -> None:
    """Read the members we will use to the end, so CRC and truncation errors surface now."""
    for name in names:
        try:
            with archive.open(name) as member:
                while member.read(1 << 20):
                    pass
        except RuntimeError as exc:  # encrypted member
            raise SourceError(path, f"{name} is password-protected ({exc})") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise SourceError(path, f"it is not a complete zip archive (truncated or corrupt): "
                                    f"{name} is damaged ({exc})") from exc


def _pick(path: Path, candidates: list[str], layer: str | None, where: str) -> str:
    """The single candidate dataset, or the one whose stem is ``layer``."""
    if layer is not None:
        named = [c for c in candidates if Path(c).stem == layer]
        if len(named) == 1:
            return named[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SourceError(path, f"the {where} contains no shapefile, GeoPackage or GeoJSON")
    raise SourceError(path, f"the {where} contains several datasets ({', '.join(candidates)}); "
                            "pass layer= with the name of the one to read")


def _shapefile(display: Path, gdal_path: str, siblings: list[str], archive) -> _Vector:
    """A shapefile source, noting its .dbf and whether a .cpg declares the encoding."""
    stem = display.stem.lower()
    by_suffix = {Path(n).suffix.lower(): n for n in siblings if Path(n).stem.lower() == stem}
    dbf = by_suffix.get(".dbf")
    if dbf is None:
        dbf_ref = None
    elif archive is None:
        dbf_ref = (display.parent / dbf, None)
    else:
        dbf_ref = (archive, dbf)
    return _Vector(display, gdal_path, None, dbf_ref, ".cpg" in by_suffix)


def _gpkg_layer(display: Path, gdal_path: str, layer: str | None) -> str:
    """``layer`` if the GeoPackage has it, else its first layer when ``layer`` is None."""
    layers = [str(name) for name, _ in _gdal(display, pyogrio.list_layers, gdal_path)]
    if not layers:
        raise SourceError(display, "the GeoPackage has no layers")
    if layer is None:
        return layers[0]
    if layer not in layers:
        raise SourceError(display, f"no layer {layer!r}; layers are {', '.join(layers)}")
    return layer


def _vector_encoding(src: _Vector, encoding: str | None) -> str | None:
    """Encoding to hand pyogrio: only for shapefiles; the .cpg wins, else UTF-8 or GB18030."""
    if src.dbf is None:
        return None
    if encoding:
        return encoding
    if src.has_cpg:
        return None
    info = _gdal(src.display, pyogrio.read_info, src.gdal_path)
    if str(info.get("encoding", "")).upper().replace("-", "") == "UTF8":
        return None  # GDAL recodes by itself (e.g. from the .dbf language driver id)
    return "UTF-8" if _dbf_is_utf8(*src.dbf) else GBK


def _dbf_is_utf8(path: Path, member: str | None) -> bool:
    """True when field names and the first records of a .dbf decode as UTF-8."""
    if member is None:
        with path.open("rb") as handle:
            return _dbf_handle_is_utf8(handle)
    with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
        return _dbf_handle_is_utf8(handle)


def _dbf_handle_is_utf8(handle) -> bool:
    """Check each field name (possibly cut mid-character at 10 bytes), then the records."""
    head = handle.read(32)
    header_len = int.from_bytes(head[8:10], "little") if len(head) == 32 else 32
    descriptors = handle.read(max(header_len - 32, 0))
    for offset in range(0, len(descriptors) - 31, 32):
        if descriptors[offset] == 0x0D:
            break
        if not _bytes_are_utf8([descriptors[offset:offset + 11].split(b"\0", 1)[0]]):
            return False
    return _bytes_are_utf8(_blocks(handle, DBF_SNIFF_BYTES))


def _blocks(handle, limit: int) -> Iterator[bytes]:
    """Successive 1 MB reads from ``handle``, ``limit`` bytes in all at most."""
    while limit > 0 and (block := handle.read(min(limit, 1 << 20))):
        limit -= len(block)
        yield block


def _bytes_are_utf8(blocks: Iterable[bytes]) -> bool:
    """True when the concatenated ``blocks`` are valid UTF-8 (a cut-off tail is allowed)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for block in blocks:
            decoder.decode(block)
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class _CsvFormat:
    """What a CSV's first bytes tell us: encoding, delimiter, column names and the width of
    a row (bytes per line of the first ``SNIFF_BYTES``; None with fewer than two lines)."""

    encoding: str
    sep: str
    header: tuple[str, ...]
    line_bytes: float | None


def _read_csv(path: Path, chunk_rows: int, encoding: str | None) -> Iterator[Chunk]:
    """Stream a CSV through pandas' C parser."""
    fmt = _csv_format(path, encoding)
    return _csv_chunks(path, fmt, _csv_chunk_rows(fmt, chunk_rows))


def _csv_chunk_rows(fmt: _CsvFormat, chunk_rows: int) -> int:
    """``chunk_rows``, or fewer when the file's rows are so wide that a chunk would hold
    more than ``CSV_CHUNK_BYTES`` of it: memory follows a chunk's bytes, not its rows."""
    if fmt.line_bytes is None:
        return chunk_rows
    fitting = int(CSV_CHUNK_BYTES / fmt.line_bytes)
    return max(min(chunk_rows, MIN_CSV_CHUNK_ROWS), min(chunk_rows, fitting))


def _csv_chunks(path: Path, fmt: _CsvFormat, chunk_rows: int) -> Iterator[Chunk]:
    """Generator behind :func:`_read_csv`."""
    reader = pd.read_csv(path, sep=fmt.sep, encoding=fmt.encoding, dtype=object,
                         keep_default_na=False, na_filter=False, index_col=False,
                         chunksize=chunk_rows, engine="c")
    first = 1
    with reader:
        while (frame := _next_csv_frame(path, fmt, reader)) is not None:
            if len(frame):  # a header-only file gives one empty frame
                yield Chunk(path, first, _blank_to_none(path, frame, fmt.header), None, None)
                first += len(frame)


def _next_csv_frame(path: Path, fmt: _CsvFormat, reader) -> pd.DataFrame | None:
    """The next pandas chunk, None at the end; parser trouble becomes SourceError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ParserWarning)  # extra fields would be dropped
            return next(reader)
    except StopIteration:
        return None
    except (ParserError, ParserWarning, UnicodeError, EmptyDataError) as exc:
        raise _csv_failure(path, fmt, exc) from exc


def _blank_to_none(path: Path, frame: pd.DataFrame, header: tuple[str, ...]) -> pd.DataFrame:
    """Empty strings become None; index 0..n-1; the header's own column names."""
    if frame.shape[1] != len(header):
        raise SourceError(path, f"pandas found {frame.shape[1]} columns but the header has "
                                f"{len(header)}; the file is not a regular CSV")
    columns = {}
    for index, name in enumerate(header):
        values = frame.iloc[:, index].to_numpy(dtype=object, copy=True)
        values[values == ""] = None
        columns[name] = values
    return _frame(columns, list(header), len(frame))


def _csv_format(path: Path, encoding: str | None) -> _CsvFormat:
    """Encoding (given or sniffed), delimiter, header and row width of a CSV."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    enc = _csv_encoding(path, encoding, head)
    _allow_big_fields()
    try:
        with path.open(encoding=enc, newline="") as handle:
            sep = _delimiter(handle.readline())
            handle.seek(0)
            fields = next(csv.reader(handle, delimiter=sep), [])
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"the header is not valid {enc} text; pass encoding=") from exc
    except csv.Error as exc:
        raise SourceError(path, f"the header line is malformed ({exc})") from exc
    lines = head.count(b"\n")
    return _CsvFormat(enc, sep, tuple(_csv_header(path, fields)),
                      len(head) / lines if lines >= 2 else None)


def _csv_header(path: Path, fields: list[str]) -> list[str]:
    """Validated CSV column names: present, non-empty and unique."""
    if not fields or all(not f.strip() for f in fields):
        raise SourceError(path, "there is no header line (the first line is empty)")
    for number, name in enumerate(fields, start=1):
        if not name.strip():
            raise SourceError(path, f"header field {number} is empty; "
                                    "every column needs a name")
    return _unique(path, fields)


def _csv_encoding(path: Path, encoding: str | None, head: bytes) -> str:
    """Python codec for a CSV: the given one, else UTF-8 (BOM or not), UTF-16 or GB18030,
    judged by the file's first bytes ``head``."""
    if encoding:
        try:
            name = codecs.lookup(encoding).name
        except LookupError as exc:
            raise SourceError(path, f"unknown encoding {encoding!r}") from exc
        return "utf-8-sig" if name == "utf-8" else name
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig" if _bytes_are_utf8([head]) else GBK.lower()


def _delimiter(line: str) -> str:
    """The most frequent of , TAB ; | in the header line (comma when none occurs)."""
    counts = {sep: line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def _allow_big_fields() -> None:
    """Let the csv module read fields as large as pandas does (WKT columns can be huge)."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _csv_failure(path: Path, fmt: _CsvFormat, exc: Exception) -> SourceError:
    """The SourceError for a pandas failure, located precisely where possible."""
    message = str(exc).strip()
    unclosed = re.search(r"EOF inside string starting at row (\d+)", message)
    if unclosed:
        return SourceError(path, "a quoted field opened in this row is never closed "
                                 "(truncated file or stray quote)", row=int(unclosed.group(1)))
    found = _csv_problem(path, fmt)
    if found is not None:
        return found
    if isinstance(exc, UnicodeError):
        return SourceError(path, f"the text is not valid {fmt.encoding}; pass encoding=")
    return SourceError(path, f"malformed CSV: {message.splitlines()[-1] if message else exc}")


def _csv_problem(path: Path, fmt: _CsvFormat) -> SourceError | None:
    """Re-scan the file with the csv module for the first undecodable or mis-sized record."""
    _allow_big_fields()
    width, row = len(fmt.header), -1
    try:
        with path.open(encoding=fmt.encoding, errors="surrogateescape", newline="") as handle:
            records = csv.reader(handle, delimiter=fmt.sep)
            for fields in records:
                if not fields:
                    continue  # pandas skips blank lines too
                row += 1
                line = records.line_num
                if any(_ESCAPED.search(f) for f in fields):
                    return SourceError(path, f"line {line} holds bytes that are not valid "
                                             f"{fmt.encoding} text; pass encoding=", row=row)
                if row and len(fields) != width:
                    return SourceError(path, f"line {line} has {len(fields)} fields but the "
                                             f"header has {width}", row=row)
    except csv.Error:
        return None
    return None


# --------------------------------------------------------------------------- XLSX


def _read_xlsx(path: Path, chunk_rows: int, layer: str | None) -> Iterator[Chunk]:
    """Stream the first sheet (or sheet ``layer``) of a workbook; header is row 1."""
    workbook = _workbook(path)
    try:
        sheet = _worksheet(path, workbook, layer)
    except SourceError:
        workbook.close()
        raise
    return _xlsx_chunks(path, workbook, sheet, chunk_rows)


def _xlsx_chunks(path: Path, workbook, sheet, chunk_rows: int) -> Iterator[Chunk]:
    """Generator behind :func:`_read_xlsx`; closes the workbook when done."""
    with closing(workbook):
        rows = sheet.iter_rows()
        header = _xlsx_header(path, next(rows, ()))
        for first, batch in _batches(_xlsx_records(path, rows, len(header)), chunk_rows):
            yield Chunk(path, first, _frame(batch, header, len(batch)), None, None)


def _workbook(path: Path):
    """Open an .xlsx read-only with cached values; SourceError if it is not a workbook."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no default style" and similar
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SourceError(path, f"it is not a readable .xlsx workbook ({exc})") from exc


def _worksheet(path: Path, workbook, layer: str | None):
    """The first worksheet, or the one named ``layer``; dimensions recomputed from the data."""
    if layer is None:
        if not workbook.worksheets:
            raise SourceError(path, "the workbook has no worksheets")
        sheet = workbook.worksheets[0]
    elif layer in workbook.sheetnames:
        sheet = workbook[layer]
    else:
        raise SourceError(path, f"no sheet {layer!r}; sheets are {', '.join(workbook.sheetnames)}")
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # exporters often write a wrong <dimension>
    return sheet


def _xlsx_header(path: Path, cells) -> list[str]:
    """Column names from the first row; empty (e.g. merged) or repeated names are errors."""
    names = [_cell_text(cell) for cell in cells]
    while names and names[-1] is None:
        names.pop()
    if not names:
        raise SourceError(path, "the first row (the header) is empty")
    for index, name in enumerate(names):
        if name is None or not name.strip():
            raise SourceError(path, f"header cell {get_column_letter(index + 1)}1 is empty; "
                                    "merged or empty header cells are not supported")
        if name in names[:index]:
            raise SourceError(path, f"header cell {get_column_letter(index + 1)}1 repeats the "
                                    f"column name {name!r}; duplicate column names are not "
                                    "supported", field=name)
    return names


def _xlsx_records(path: Path, rows, width: int) -> Iterator[list]:
    """Data rows as lists of str/None of ``width``; trailing blank rows are dropped."""
    blank = 0
    for row_number, cells in enumerate(rows, start=2):
        values = [_cell_text(cell) for cell in cells]
        extra = next((i for i in range(width, len(values)) if values[i] is not None), None)
        if extra is not None:
            letter = get_column_letter(extra + 1)
            raise SourceError(path, f"cell {letter}{row_number} has a value but header cell "
                                    f"{letter}1 is empty; merged or empty header cells are "
                                    "not supported", row=row_number - 1)
        values = (values + [None] * width)[:width]
        if all(value is None for value in values):
            blank += 1
            continue
        yield from ([None] * width for _ in range(blank))
        blank = 0
        yield values


def _cell_text(cell) -> str | None:
    """A cell value as text: ISO dates, plain numbers, 'true'/'false'; empty -> None."""
    value = getattr(cell, "value", None)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        fmt = str(getattr(cell, "number_format", "") or "").lower()
        if value.time() == dt.time(0) and "h" not in fmt:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _xlsx_count(path: Path) -> int | None:
    """Data rows according to the sheet's stored dimension (may be absent or wrong)."""
    with closing(_workbook(path)) as book:
        sheet = book.worksheets[0] if book.worksheets else None
        try:
            max_row = sheet.max_row if sheet is not None else None
        except (ValueError, TypeError):
            return None
    return max(max_row - 1, 0) if max_row else None
