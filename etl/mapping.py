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
place:                         # rows without coordinates: the first rule that finds a unit
  - {code: 网格编码, level: 4}
  - {name: 社区名称, level: 3}
  - {value: "440310"}          # whatever is left: the district itself
```

Every key is described in docs/mapping.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
    """One placement rule for rows lacking coordinates: an admin code column, a name column
    or a constant code, optionally limited to one level."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = None
    name: str | None = None
    value: str | int | None = None
    level: int | None = Field(default=None, ge=1, le=4)
    pattern: str | None = None   # a regex rewriting the column's values before lookup …
    replace: str | None = None   # … into this (``\\2 \\1`` swaps two groups)

    @model_validator(mode="after")
    def _one_source(self) -> PlaceSpec:
        if sum(x is not None for x in (self.code, self.name, self.value)) != 1:
            raise ValueError("a place rule gives exactly one of code, name or value")
        if self.pattern is not None and self.value is not None:
            raise ValueError("pattern rewrites a column; a value is used as it is")
        return self

    @property
    def by_name(self) -> bool:
        return self.name is not None

    @property
    def column(self) -> str | None:
        return self.code or self.name

    def describe(self) -> str:
        """How a reject names the rule: its column (or value), kind and level."""
        source = self.column or f"value {self.value}"
        level = f", level {self.level}" if self.level else ""
        return f"{source} ({'name' if self.by_name else 'code'}{level})"

    def source_columns(self) -> list[str]:
        return [self.column] if self.column else []


def _place_rules(value: Any) -> list:
    """``place`` is a rule or a list of rules; a rule naming both a code and a name column is
    short for the code rule followed by the name rule."""
    if value is None:
        return []
    expanded = []
    for rule in value if isinstance(value, list) else [value]:
        if isinstance(rule, dict) and rule.get("code") and rule.get("name"):
            expanded.append({k: v for k, v in rule.items() if k != "name"})
            rule = {k: v for k, v in rule.items() if k not in ("code", "pattern", "replace")}
        expanded.append(rule)
    return expanded


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
    place: list[PlaceSpec] = []
    bounds: tuple[float, float, float, float] | None = None
    path: Path | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _short_form(cls, value: dict) -> dict:
        """``id: 编号`` is short for ``id: {column: 编号}``."""
        if not isinstance(value, dict):
            raise ValueError("fields must map model fields to source columns")
        return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}

    @field_validator("place", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> list:
        return _place_rules(value)

    @property
    def target(self) -> Target:
        return TARGETS[self.kind]

    def source_columns(self) -> list[str]:
        """Every source column this mapping reads."""
        cols = [c for spec in self.fields.values() for c in spec.source_columns()]
        for part in (self.geometry, *self.place):
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
