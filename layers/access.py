"""What a principal may see: its scope (an admin unit and its subtree), whether it may
export, and how personal fields reach it. Every read path goes through here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sqlalchemy import Connection

from layers.cases import local_zone
from layers.errors import Forbidden, UnknownScope
from layers.filters import Filters, parse_filters
from layers.freshness import Thresholds
from layers.scope import Scope, resolve_scope
from onemap.principal import Principal


def scoped(conn: Connection, who: Principal, params: Mapping, zone: str,
           thresholds: Thresholds) -> tuple[str, Filters, Scope]:
    """A request's local zone (the aggregates' own, else ``zone``), its parsed filters and
    the scope ``who`` may see of the one it asks for."""
    local = local_zone(conn, zone)
    filters = parse_filters(params, local, device_offline_after=thresholds.device_offline)
    return local, filters, scope_for(conn, who, filters.scope)


def scope_for(conn: Connection, who: Principal, code: str | None) -> Scope:
    """The scope ``code`` if ``who`` may see it (their own unit when no code is asked for);
    :class:`Forbidden` when it lies outside their unit."""
    if who.scope is None:
        return resolve_scope(conn, code)
    own = resolve_scope(conn, who.scope)
    if code is None or code == who.scope:
        return _trimmed(own)
    try:
        scope = resolve_scope(conn, code)
    except UnknownScope:
        # Unknown and foreign look the same: no answer tells which codes exist elsewhere.
        raise _outside(code, who) from None
    if who.scope not in {c for c, _, _ in scope.breadcrumb}:
        raise _outside(code, who)
    return _trimmed(scope, own.level)


def _outside(code: str, who: Principal) -> Forbidden:
    return Forbidden(f"scope '{code}' is outside your area ({who.scope})", "scope", code)


def _trimmed(scope: Scope, top: int | None = None) -> Scope:
    """The breadcrumb starts at the principal's own unit: nothing above it to go back to."""
    top = scope.level if top is None else top
    return replace(scope, breadcrumb=tuple(c for c in scope.breadcrumb if c[2] >= top))


def check_export(who: Principal, layer_id: str) -> None:
    if not who.can_export:
        raise Forbidden(f"'{who.name}' may not export", "export", layer_id)


def personal_mode(who: Principal, asked: bool) -> str | None:
    """How personal fields are served: only when asked for, masked unless granted."""
    return who.personal if asked else None
