"""Mappings: a small YAML file says which source column feeds which field of the model.

```yaml
kind: cases
crs: wgs84                     # of the coordinates (any EPSG code, gcj02, bd09)
timezone: Asia/Shanghai        # for timestamps written without one
fields:
  id: 工单编号
  status: {column: 办理状态, map: {已办结: closed, 办理中: open}}
  properties: {columns: [来源备注, 诉求内容]}
geometry: {x: 经度, y: 纬度}      # or {wkt: WKT}; omit for GeoJSON/Shapefile/GeoPackage
place: {code: 社区编码, level: 3}  # places rows that have no coordinates
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from etl.targets import TARGETS, Target
from onemap.errors import OnemapError


class MappingError(OnemapError):
    """A mapping file that is missing, malformed, or does not fit its source or target."""


class FieldSpec(BaseModel):
    """Where one model field comes from: a column, several columns (JSON), or a constant."""

    model_config = ConfigDict(extra="forbid")
    column: str | None = None
    columns: list[str] | None = None
    value: Any = None
    map: dict[str, Any] | None = None
    default: Any = None
    format: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if sum(x is not None for x in (self.column, self.columns, self.value)) != 1:
            raise ValueError("give exactly one of column, columns or value")
        return self

    def source_columns(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


class GeometrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: str | None = None
    y: str | None = None
    wkt: str | None = None

    @model_validator(mode="after")
    def _xy_or_wkt(self) -> GeometrySpec:
        if bool(self.wkt) == bool(self.x and self.y) or bool(self.x) != bool(self.y):
            raise ValueError("give either x and y, or wkt")
        return self

    def source_columns(self) -> list[str]:
        return [self.wkt] if self.wkt else [self.x, self.y]


class PlaceSpec(BaseModel):
    """Admin code or name columns that place rows lacking coordinates."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = None
    name: str | None = None
    level: int | None = None
    pattern: str | None = None   # a regex rewriting the code column before lookup …
    replace: str | None = None   # … into this (``\\2 \\1`` swaps two groups)

    def source_columns(self) -> list[str]:
        return [c for c in (self.code, self.name) if c]


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    crs: str | None = None
    timezone: str | None = None
    encoding: str | None = None
    layer: str | None = None
    level: int | None = None
    fields: dict[str, FieldSpec]
    geometry: GeometrySpec | None = None
    place: PlaceSpec | None = None
    bounds: tuple[float, float, float, float] | None = None
    path: Path | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _short_form(cls, value: dict) -> dict:
        """``id: 编号`` is short for ``id: {column: 编号}``."""
        if not isinstance(value, dict):
            raise ValueError("fields must map model fields to source columns")
        return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}

    @property
    def target(self) -> Target:
        return TARGETS[self.kind]

    def source_columns(self) -> list[str]:
        """Every source column this mapping reads."""
        cols = [c for spec in self.fields.values() for c in spec.source_columns()]
        for part in (self.geometry, self.place):
            cols += part.source_columns() if part else []
        return list(dict.fromkeys(cols))


def load_mapping(path: str | Path, kind: str | None = None) -> Mapping:
    """Read and check a mapping file against its target; every problem names the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MappingError(f"mapping file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingError(f"mapping file {path}: expected a mapping of keys, got {raw!r}")
    raw.setdefault("kind", kind)
    try:
        mapping = Mapping(**raw, path=path)
    except ValidationError as exc:
        raise MappingError(f"mapping file {path}: {_explain(exc)}") from exc
    check_against_target(mapping, kind)
    return mapping


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def check_against_target(mapping: Mapping, kind: str | None) -> None:
    """Known kind, known fields, required fields present, a way to place every row."""
    where = f"mapping file {mapping.path}"
    if mapping.kind not in TARGETS:
        raise MappingError(f"{where}: unknown kind '{mapping.kind}' (one of {', '.join(TARGETS)})")
    if kind and mapping.kind != kind:
        raise MappingError(f"{where} is for '{mapping.kind}' loads, not '{kind}'")
    target = mapping.target
    unknown = sorted(set(mapping.fields) - set(target.names))
    if unknown:
        raise MappingError(
            f"{where}: unknown field(s) {', '.join(unknown)} for {mapping.kind}; "
            f"known: {', '.join(target.names)}"
        )
    missing = [f.name for f in target.fields if f.required and f.name not in mapping.fields]
    if missing:
        raise MappingError(f"{where}: required field(s) not mapped: {', '.join(missing)}")


def check_against_columns(mapping: Mapping, columns: list[str], source: Path) -> None:
    """Every column the mapping names exists in the source file."""
    absent = [c for c in mapping.source_columns() if c not in columns]
    if absent:
        raise MappingError(
            f"{source}: column(s) {', '.join(repr(c) for c in absent)} named by mapping "
            f"{mapping.path} are missing; the file has: {', '.join(columns)}"
        )
