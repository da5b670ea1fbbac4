"""HTTP handlers that know no web framework (pygeoapi style): each takes parsed request
parts and returns a :class:`Response`; ``web.http`` adapts them to Flask. The answers come
from ``layers``; what is HTTP (status codes, links, media types, downloads) is here.

OGC API – Features: landing page, conformance, ``/collections``, ``/collections/{id}``,
``/collections/{id}/items`` (GeoJSON, bbox, datetime, limit/offset, scope and filters) and
single items; plus ``/api/kpi`` (a scope's KPIs with its children's), ``/api/workbench``,
``/api/workers`` (the grid workers), ``/api/hotspots``, ``/api/hexbins``, ``/api/changes``
(the data's version), ``/api/search`` (cases by id, address or phone), ``/api/supervision``
(督办 and 提醒: read, and a write of a person's here, POST), ``/api/merges`` (并案
suggestions; a POST records a decision), vector tiles and exports.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from layers import (
    changes,
    exports,
    features,
    hotspots,
    kpi,
    merging,
    roster,
    search,
    supervision,
    tiles,
    workbench,
)
from layers.access import personal_mode, scope_for, scoped
from layers.catalog import Catalog, LayerSpec
from layers.errors import (
    BadParameter,
    Busy,
    Forbidden,
    LayerError,
    StorageError,
    UnknownLayer,
)
from layers.exporting import ExportRequest, checked_layer, run_export
from layers.filters import param_pairs
from layers.freshness import DEFAULT_THRESHOLDS, Thresholds
from onemap.accounts import audit
from onemap.database import waited_for_a_load
from onemap.principal import Principal
from onemap.settings import DUE_SOON_HOURS
from web.outage import unavailable

LOG = logging.getLogger(__name__)
GEOJSON = "application/geo+json"
JSON = "application/json"
MVT = "application/vnd.mapbox-vector-tile"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


@dataclass
class Response:
    status: int
    body: bytes | str | Iterable[bytes]
    content_type: str = JSON
    headers: dict = field(default_factory=dict)


def json_response(data, status: int = 200, content_type: str = JSON, **headers) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False, default=str), content_type,
                    headers)


def log_denial(writer: Engine, who: Principal, exc: Forbidden) -> None:
    """A refusal in the audit log (on ``writer``, the primary database)."""
    try:
        audit(writer, who, "denied", False, exc.target, what=exc.action, reason=str(exc))
    except SQLAlchemyError as error:  # the denial stands; the server log keeps it
        LOG.warning("audit log unavailable; %s denied: %s (%s)", who.name, exc, error)


def error_response(exc: Exception) -> Response:
    """The one place where errors become HTTP answers: 4xx for bad requests, 503 when the
    database is away; the message says what was wrong."""
    if isinstance(exc, Busy):
        return json_response({"error": str(exc)}, exc.status,
                             **{"Retry-After": str(exc.retry_after)})
    if isinstance(exc, LayerError):
        return json_response({"error": str(exc)}, exc.status)
    if waited_for_a_load(exc) or isinstance(exc, OperationalError):
        body, status, headers = unavailable(exc)
        return json_response(body, status, **headers)
    return json_response({"error": "the query failed; see the server log"}, 503)


class Api:
    """The read API over one engine, one catalog and one local time zone. Every request
    carries a :class:`Principal`; its scope, export right and personal-field entitlement
    are enforced here. Denials and exports are written to the audit log through
    ``writer`` (the primary database when reads go to a replica)."""

    def __init__(self, engine: Engine, catalog: Catalog, zone: str,
                 writer: Engine | None = None,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS, soon_hours: float = DUE_SOON_HOURS,
                 export_slots: int = 1, push_held: int = 16):
        self.engine, self.catalog, self.zone = engine, catalog, zone
        self.writer = writer or engine
        self.thresholds = thresholds
        self.soon_hours = soon_hours  # open cases due within it are due soon
        self.export_slots = export_slots  # exports written at once, server-wide
        # The data's version as the screens watch it: heard of on the primary, read where
        # the views read.
        self.latest = changes.Latest(listen=self.writer, most_held=push_held)

    @contextmanager
    def query(self, who: Principal, params: Mapping):
        """A connection, the local zone, the parsed filters and the scope ``who`` may see."""
        with self.engine.connect() as conn:
            yield conn, *scoped(conn, who, params, self.zone, self.thresholds)

    def handle(self, who: Principal, handler: Callable[..., Response], *args) -> Response:
        try:
            return handler(*args)
        except Forbidden as exc:
            self._log_denial(who, exc)
            return error_response(exc)
        except (LayerError, SQLAlchemyError) as exc:
            return error_response(exc)

    def _log_denial(self, who: Principal, exc: Forbidden) -> None:
        log_denial(self.writer, who, exc)

    # -- OGC API – Features ---------------------------------------------------------------
    def landing(self, base: str) -> Response:
        links = [_link(base + "/ogc/", "self", JSON, "this document"),
                 _link(base + "/openapi.json", "service-desc", "application/vnd.oai.openapi+json;"
                       "version=3.0", "the API definition"),
                 _link(base + "/conformance", "conformance", JSON, "conformance classes"),
                 _link(base + "/collections", "data", JSON, "the layers")]
        return json_response({"title": "onemap 一张图", "description": "Layers of the district: "
                              "admin units, facilities, IoT devices and cases", "links": links})

    def conformance(self) -> Response:
        return json_response({"conformsTo": CONFORMANCE})

    def collections(self, who: Principal, base: str) -> Response:
        with self.engine.connect() as conn:
            root = scope_for(conn, who, None)
        docs = [self._collection_doc(layer, base, root.bbox) for layer in self.catalog]
        return json_response({"collections": docs,
                              "links": [_link(base + "/collections", "self", JSON)]})

    def collection(self, who: Principal, base: str, layer_id: str) -> Response:
        layer = self.catalog.get(layer_id)
        with self.engine.connect() as conn:
            root = scope_for(conn, who, None)
        return json_response(self._collection_doc(layer, base, root.bbox))

    def items(self, who: Principal, base: str, layer_id: str, params: Mapping) -> Response:
        layer = self.catalog.get(layer_id)
        limit, offset = _paging(params)
        personal = personal_mode(who, _flag(params, "personal"))
        with self.query(who, params) as (conn, _, filters, scope):
            page = features.items(conn, layer, scope, filters, limit, offset, personal,
                                   zone=self.zone)
        page["links"] = _page_links(base, layer.id, params, limit, offset, page["numberMatched"])
        return json_response(page, content_type=GEOJSON)

    def item(self, who: Principal, base: str, layer_id: str, feature_id: str,
             params: Mapping) -> Response:
        layer = self.catalog.get(layer_id)
        personal = personal_mode(who, _flag(params, "personal"))
        with self.engine.connect() as conn:
            feature = features.one(conn, layer, scope_for(conn, who, None), feature_id,
                                   personal, zone=self.zone)
        return json_response(feature, content_type=GEOJSON)

    def _collection_doc(self, layer: LayerSpec, base: str, bbox) -> dict:
        url = f"{base}/collections/{layer.id}"
        return {
            "id": layer.id, "title": layer.title["zh"], "description": layer.title["en"],
            "itemType": "feature",
            "extent": {"spatial": {"bbox": [list(bbox or (-180, -90, 180, 90))],
                                   "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
            "links": [_link(url, "self", JSON), _link(url + "/items", "items", GEOJSON)],
        }

    # -- dashboard data -------------------------------------------------------------------
    def kpi(self, who: Principal, params: Mapping) -> Response:
        with self.query(who, params) as (conn, zone, filters, scope):
            data = kpi.with_children(conn, scope, filters, zone, self.soon_hours,
                                     clock=self.zone)
            data["breadcrumb"] = [{"code": c, "name": n, "level": lv}
                                  for c, n, lv in scope.breadcrumb]
        return json_response(data)

    def workbench(self, who: Principal, params: Mapping) -> Response:
        """The workbench of a scope (``layers.workbench``): lifecycle funnel, indicators,
        handling units ranked by ``sort`` and the cases of the handling unit ``unit``."""
        sort, unit = _first(params, "sort") or "received", _first(params, "unit")
        with self.query(who, params) as (conn, zone, filters, scope):
            data = workbench.read(conn, scope, filters, zone, self.soon_hours, sort=sort,
                                  unit=unit)
        return json_response(asdict(data))

    def search(self, who: Principal, params: Mapping) -> Response:
        """Cases of the scope by id, address text or phone (``layers.search``): GeoJSON,
        personal fields as ``who`` may see them."""
        with self.query(who, params) as (conn, _, _filters, scope):
            data = search.search(conn, scope, _first(params, "q") or "", who.personal,
                                 self.zone, self.soon_hours)
        return json_response(data, content_type=GEOJSON)

    def supervisions(self, who: Principal, params: Mapping) -> Response:
        """The 督办 and 提醒 of a case (``case``) or of a handling unit (``unit``, in
        ``scope``)."""
        with self.engine.connect() as conn:
            data = supervision.listed(conn, who, self.zone, case=_first(params, "case"),
                                      unit=_first(params, "unit"), scope=_first(params, "scope"))
        return json_response(data)

    def supervise(self, who: Principal, body) -> Response:
        """督办 or 提醒 a case or a handling unit (``layers.supervision.supervise``),
        written on the primary with its audit row: 201 and the row."""
        if not isinstance(body, dict):
            raise BadParameter("body", type(body).__name__, "a JSON object with kind, note "
                               "and case, or unit (and scope)")
        fields = {name: body.get(name) for name in ("kind", "note", "case", "unit", "scope")}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise BadParameter(name, value, "must be text")
        row = supervision.supervise(self.writer, who, fields["kind"] or "",
                                    fields["note"] or "", case=fields["case"],
                                    unit=fields["unit"], scope=fields["scope"], zone=self.zone)
        return json_response(row, 201)
    def merges(self, who: Principal, params: Mapping) -> Response:
        """并案 (``layers.merging``): the scope's proposed clusters under the filters, the
        case count with and without merged duplicates, and the newest decisions."""
        with self.query(who, params) as (conn, zone, filters, scope):
            data = {**merging.suggestions(conn, scope, filters, zone),
                    "counts": merging.counts(conn, scope, filters),
                    "decisions": merging.decisions(conn, scope, zone)}
        return json_response(data)

    def decide_merge(self, who: Principal, body: bytes) -> Response:
        """A decision on cases proposed as one event: ``{"cases": [...], "decision":
        "confirmed" | "rejected", "note": "..."}``; 201 with the recorded decision. Every
        outcome, a refusal too, is audited by ``layers.merging.decide``."""
        try:
            asked = json.loads(body or b"null")
        except ValueError as exc:
            return json_response({"error": f"the body is not JSON: {exc}"}, 400)
        if not isinstance(asked, dict):
            return json_response({"error": 'the body is a JSON object: {"cases": [...], '
                                           '"decision": "confirmed" or "rejected"}'}, 400)
        try:
            done = merging.decide(self.writer, who, asked.get("cases"),
                                  str(asked.get("decision")), asked.get("note") or "",
                                  self.zone)
        except (LayerError, SQLAlchemyError) as exc:
            return error_response(exc)
        return json_response(done, 201)

    def workers(self, who: Principal, params: Mapping) -> Response:
        """The grid workers of a scope with their figures (``layers.roster``); their phones
        as ``who`` may see personal fields."""
        with self.query(who, params) as (conn, _, filters, scope):
            data = roster.scope_workers(conn, scope, filters, who.personal)
        data["scope"] = {"code": scope.code, "name": scope.name, "level": scope.level}
        return json_response(data)

    def changes(self, who: Principal, params: Mapping) -> Response:
        """The data's version (``layers.changes``), for screens that redraw when it moves,
        whoever asks; it tells nothing but that something changed. Without ``since``, the
        version now (a few rows read a few times a second at most). With ``since`` (the
        version the screen knows) and ``wait`` (seconds, at most ``changes.HOLD_S``):
        answered when the version is not ``since`` any more, or after ``wait`` seconds
        with it unchanged; ``held`` says whether the ask was held (false: answered at
        once, so the screen asks again a second later rather than at once)."""
        since = _first(params, "since")
        wait = _number(params, "wait", 0, 0, changes.HOLD_S)
        if since is None or wait <= 0:
            answer = {"version": self.latest.get(self.engine), "held": False}
        else:
            version, held = self.latest.wait(self.engine, since, wait)
            answer = {"version": version, "held": held}
        return json_response(answer, **{"Cache-Control": "no-store"})

    def hotspots(self, who: Principal, params: Mapping) -> Response:
        unit = _first(params, "unit") or "grid"
        zoom = _number(params, "zoom", 12, 0, 22)
        with self.query(who, params) as (conn, zone, filters, scope):
            data = hotspots.hotspots(conn, scope, filters, unit, zoom, zone)
        return json_response(data, content_type=GEOJSON)

    def hexbins(self, who: Principal, params: Mapping) -> Response:
        zoom = _number(params, "zoom", 12, 0, 22)
        with self.query(who, params) as (conn, _, filters, scope):
            data = hotspots.hexbins(conn, scope, filters, zoom)
        return json_response(data, content_type=GEOJSON)

    def tile(self, who: Principal, layer_id: str, z: int, x: int, y: int, params: Mapping,
             if_none_match: str | None = None) -> Response:
        layer = self.catalog.get(layer_id)
        tiles.check_tile(z, x, y)
        with self.query(who, params) as (conn, _, filters, scope):
            # The tag names whose view it is: one person's tile never validates another's.
            tag = tiles.etag(layer.id, z, x, y, urlencode(sorted(param_pairs(params))),
                             f"{tiles.data_version(conn)}/{scope.code}")
            if if_none_match == tag:
                return Response(304, b"", MVT, {"ETag": tag})
            data = tiles.tile(conn, layer, scope, filters, z, x, y)
        return Response(200, data, MVT, {"ETag": tag, "Cache-Control": "private, max-age=60"})

    def export(self, who: Principal, layer_id: str, fmt: str, params: Mapping) -> Response:
        """The export as a download, written to a temporary file and streamed from it.
        Parameters are checked before anything is written; the audit row is written before
        a byte is served; the file is removed on every failure and once the answer closes."""
        request = ExportRequest(who, layer_id, fmt, params, _first(params, "crs") or "wgs84")
        layer = checked_layer(request, self.catalog)  # before the flag: a kiosk gets its 403
        request = replace(request, personal=_flag(params, "personal"))
        folder = _scratch_folder()
        suffix, media = exports.FORMATS[fmt]
        try:
            done = run_export(request, Path(folder) / f"{layer.id}{suffix}",
                              engine=self.engine, writer=self.writer, catalog=self.catalog,
                              zone=self.zone, thresholds=self.thresholds,
                              slots=self.export_slots)
            body = TemporaryDownload(done.result.path, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        scope = done.scope
        name = f"{layer.id}-{scope.code or 'all'}{suffix}"
        return Response(200, body, media, {
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Content-Length": str(body.size)})


def _scratch_folder() -> str:
    try:
        return tempfile.mkdtemp(prefix="onemap-export-")
    except OSError as exc:
        raise StorageError(f"no room for the export in {tempfile.gettempdir()}: "
                           f"{exc.strerror or exc}") from exc


class TemporaryDownload:
    """A written export's bytes in blocks. Its folder goes when the server closes the
    answer (WSGI calls ``close``), whether the body was read to the end, in part or not at
    all (a HEAD request, a client that went away before the first block)."""

    def __init__(self, path: Path, folder: str, block: int = 1 << 20):
        self.path, self.folder, self.block = path, folder, block
        self.size = path.stat().st_size

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            while block := handle.read(self.block):
                yield block

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _link(href: str, rel: str, kind: str, title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": kind}
    if title:
        link["title"] = title
    return link


def _first(params: Mapping, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value in (None, "") else str(value)


def _flag(params: Mapping, name: str) -> bool:
    raw = (_first(params, name) or "").lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise BadParameter(name, raw, "must be true or false")
    return raw in ("1", "true", "yes")


def _number(params: Mapping, name: str, default: float, low: float, high: float) -> float:
    raw = _first(params, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, raw, "not a number") from None
    if not low <= value <= high:
        raise BadParameter(name, raw, f"must be between {low:g} and {high:g}")
    return value


def _paging(params: Mapping) -> tuple[int, int]:
    limit = int(_number(params, "limit", 100, 1, features.MAX_LIMIT))
    offset = int(_number(params, "offset", 0, 0, 10**9))
    return limit, offset


def _page_links(base: str, layer_id: str, params: Mapping, limit: int, offset: int,
                matched: int) -> list[dict]:
    url = f"{base}/collections/{layer_id}/items"
    rest = [(k, v) for k, v in param_pairs(params) if k not in ("limit", "offset")]

    def at(start: int) -> str:
        return url + "?" + urlencode([*rest, ("limit", limit), ("offset", start)])

    links = [_link(at(offset), "self", GEOJSON)]
    if offset + limit < matched:
        links.append(_link(at(offset + limit), "next", GEOJSON))
    if offset > 0:
        links.append(_link(at(max(offset - limit, 0)), "prev", GEOJSON))
    return links


__all__ = ["Api", "Response", "UnknownLayer", "error_response"]
