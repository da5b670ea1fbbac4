"""An export as someone asks for it, from request parameters to the audit row: the one
path both the API's ``/export/…`` and ``onemap export`` take.

Parameters are checked before anything is written; the principal's export right, scope and
personal-field entitlement are enforced; the export is written to ``path``; the audit row
is written before the caller hands out a byte.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from layers import exports
from layers.access import check_export, personal_mode, scoped
from layers.catalog import Catalog, LayerSpec
from layers.errors import BadParameter
from layers.filters import param_pairs
from layers.freshness import Thresholds
from layers.scope import Scope
from onemap.accounts import audit
from onemap.principal import Principal


@dataclass(frozen=True)
class ExportRequest:
    """Who asks for which layer, in which format and CRS, with which view parameters
    (``scope``, ``range``, ``category`` … as in a URL), and whether with personal fields."""

    who: Principal
    layer_id: str
    fmt: str
    params: Mapping
    crs: str = "wgs84"
    personal: bool = False


@dataclass(frozen=True)
class Exported:
    """A written, audited export: the file, its row count, the layer and the scope."""

    result: exports.ExportResult
    layer: LayerSpec
    scope: Scope


def checked_layer(request: ExportRequest, catalog: Catalog) -> LayerSpec:
    """The layer asked for, once every parameter is known to be usable and the principal
    may export: nothing is read or written before this passes."""
    _check_text(request.params)
    layer = catalog.get(request.layer_id)
    check_export(request.who, layer.id)
    exports.check_format(request.fmt, request.crs)
    return layer


def run_export(request: ExportRequest, path: Path, *, engine: Engine, writer: Engine,
               catalog: Catalog, zone: str, thresholds: Thresholds,
               progress: Callable[[int], None] | None = None, slots: int | None = None,
               **detail) -> Exported:
    """Write ``request``'s export to ``path`` and record it in the audit log through
    ``writer`` (the primary when reads go to a replica); ``detail`` joins the audit row.
    With ``slots``, the export waits for nobody: it takes one of the server's slots and
    the person's own (:func:`layers.exports.take_slot`) or raises ``Busy``."""
    layer = checked_layer(request, catalog)
    personal = personal_mode(request.who, request.personal)
    with engine.connect() as conn:
        _, filters, scope = scoped(conn, request.who, request.params, zone, thresholds)
        if slots:
            exports.take_slot(conn, request.who.name, slots)
        result = exports.export(conn, layer, scope, filters, request.fmt, path, request.crs,
                                personal, progress, zone=zone)
    audit(writer, request.who, "export", True, layer.id, scope=scope.code,
          format=request.fmt, crs=request.crs, rows=result.rows, personal=personal,
          filters=dict(param_pairs(request.params)), **detail)
    return Exported(result, layer, scope)


def _check_text(params: Mapping) -> None:
    """No NUL in any parameter, used or not: PostgreSQL text and the audit row's JSON
    cannot hold one, so the request is refused before any work, naming the parameter."""
    for name, value in param_pairs(params):
        if "\x00" in name or "\x00" in value:
            raise BadParameter(name.replace("\x00", "\\0"), value, "contains a NUL character")
