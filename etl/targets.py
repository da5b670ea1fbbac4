"""What each kind of load writes: the target table, its key and its typed fields.

One declarative spec per kind; the loader has no per-kind code paths beyond the SQL that
places points (``etl.places``), the admin hierarchy (``etl.admin``) and, for cases, the
refresh of the aggregates (``etl.rollup``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onemap.vocabulary import CASE_STATUSES, DEVICE_STATUSES, WORKER_ROLES


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "text"  # text, timestamp, float, int, bool, json
    required: bool = False
    # The values the column holds (its CHECK constraint, or its integer type's range):
    # a value outside is one rejected row, never a database error that fails the batch.
    bounds: tuple[float, float] | None = None




@dataclass(frozen=True)
class Target:
    kind: str
    table: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    geometry: str  # "required", "optional" (else placed by admin code/name), "none", "polygon"
    personal: tuple[str, ...] = field(default=())
    value_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stamped: bool = True  # the table has an updated_at column

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


TARGETS: dict[str, Target] = {
    t.kind: t
    for t in (
        Target(
            "admin", "admin_unit", ("code",),
            (Field("code", required=True), Field("name", required=True),
             Field("parent_code"), Field("properties", "json")),
            geometry="polygon",
        ),
        Target(
            "facilities", "facility", ("id",),
            (Field("id", required=True), Field("kind", required=True),
             Field("name", required=True), Field("address"), Field("properties", "json")),
            geometry="required",
        ),
        Target(
            "iot", "iot_device", ("id",),
            (Field("id", required=True), Field("kind", required=True), Field("name"),
             Field("status", required=True), Field("last_seen", "timestamp"),
             Field("properties", "json")),
            geometry="required",
            value_sets={"status": DEVICE_STATUSES},
        ),
        Target(
            "iot-events", "iot_event", ("device_id", "ts", "event_type", "metric"),
            (Field("device_id", required=True), Field("ts", "timestamp", required=True),
             Field("event_type", required=True), Field("status"), Field("metric"),
             Field("value", "float"), Field("properties", "json")),
            geometry="none",
            value_sets={"status": DEVICE_STATUSES, "event_type": ("status", "reading")},
            stamped=False,
        ),
        Target(
            "cases", "case_event", ("id",),
            (Field("id", required=True), Field("channel", required=True), Field("case_type"),
             Field("category_1", required=True), Field("category_2"), Field("category_3"),
             Field("category_4"), Field("title"), Field("description"), Field("address"),
             Field("reported_at", "timestamp", required=True),
             Field("accepted_at", "timestamp"), Field("dispatched_at", "timestamp"),
             Field("handled_at", "timestamp"), Field("feedback_at", "timestamp"),
             Field("closed_at", "timestamp"), Field("evaluated_at", "timestamp"),
             Field("deadline", "timestamp"), Field("handling_unit"), Field("handler"),
             Field("status", required=True), Field("on_time", "bool"),
             Field("satisfaction", "int", bounds=(1, 5)),
             Field("resolved_level", "int", bounds=(1, 4)), Field("reporter_name"),
             Field("reporter_phone"),
             Field("properties", "json")),
            geometry="optional",
            personal=("reporter_name", "reporter_phone"),
            value_sets={"status": CASE_STATUSES},
        ),
        # Grid workers: one row per worker and grid (a station head covers several); the
        # grid's code places the row (``etl.places``), the phone is personal.
        Target(
            "roster", "grid_worker", ("id", "grid_code"),
            (Field("id", required=True), Field("grid_code", required=True),
             Field("name", required=True), Field("role", required=True), Field("phone"),
             Field("properties", "json")),
            geometry="none",
            personal=("phone",),
            value_sets={"role": WORKER_ROLES},
        ),
    )
}
