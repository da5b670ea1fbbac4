"""The layer catalog: one declarative spec per map layer, looked up by id.

A point layer is a table with a point ``geom``, the four admin code columns and an ``id``;
adding one (say remote-sensing change points) is a spec here plus a load mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layers.errors import UnknownLayer


@dataclass(frozen=True)
class LayerSpec:
    id: str
    title: dict[str, str]                  # zh / en
    kind: str                              # admin, points
    table: str
    columns: tuple[str, ...]               # properties served and exported
    personal: tuple[tuple[str, str], ...] = ()  # (column, mask kind): masked unless granted
    level: int | None = None               # admin layers: which level
    time_column: str | None = None         # the column the time filter applies to
    filters: tuple[str, ...] = ()          # which filter families apply
    key: str = "id"
    hover: tuple[str, ...] = ()            # what a point on the map carries (its hover text)
    # Rows a map of this layer never leaves out when it holds more points than it draws
    # (a condition on the table ``t``, written here, never from a request): device alarms.
    keep: str | None = None
    derived: dict[str, str] = field(default_factory=dict)  # column -> SQL over ``t``
    extra: dict = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def column(self, name: str) -> str:
        """The SQL of column ``name`` of row ``t``, named ``name``."""
        derived = self.derived.get(name)
        return f"({derived}) AS {name}" if derived else f"t.{name}"

    def value(self, name: str) -> str:
        """The SQL of the value of column ``name`` of row ``t`` (for WHERE and GROUP BY)."""
        derived = self.derived.get(name)
        return f"({derived})" if derived else f"t.{name}"


ADMIN_COLUMNS = ("code", "name", "level", "parent_code", "area_km2")
CASE_COLUMNS = (
    "id", "channel", "case_type", "category_1", "category_2", "category_3", "category_4",
    "title", "address", "reported_at", "accepted_at", "dispatched_at", "handled_at",
    "feedback_at", "closed_at", "evaluated_at", "deadline", "handling_unit", "status",
    "satisfaction", "resolved_level", "on_time", "handling_hours", "located_by",
    "placed_level",
)

# A device's status now: one not heard of for longer than ``:offline_after`` (the filters'
# ``device_offline_after``) is offline, whatever it said last. An alarm stays an alarm:
# silence does not clear it (a flooded or burnt sensor goes quiet), and its ``last_seen``
# says how old it is.
DEVICE_STATUS = ("CASE WHEN t.status = 'alarm' THEN 'alarm' "
                 "WHEN t.last_seen IS NULL OR t.last_seen < now() - :offline_after "
                 "THEN 'offline' ELSE t.status END")

LAYERS: tuple[LayerSpec, ...] = (
    *(LayerSpec(f"admin-{level}", {"zh": zh, "en": en}, "admin", "admin_unit", ADMIN_COLUMNS,
                level=level, key="code")
      for level, zh, en in ((1, "区", "Districts"), (2, "街道", "Streets"),
                            (3, "社区", "Communities"), (4, "网格", "Grids"))),
    LayerSpec("facilities", {"zh": "公共设施", "en": "Facilities"}, "points", "facility",
              ("id", "kind", "name", "address"), filters=("kind",),
              hover=("kind", "name", "address")),
    LayerSpec("iot-devices", {"zh": "物联感知设备", "en": "IoT devices"}, "points", "iot_device",
              ("id", "kind", "name", "status", "last_seen"), filters=("kind", "device_status"),
              hover=("kind", "name", "status"), keep="t.status = 'alarm'",
              derived={"status": DEVICE_STATUS}),
    LayerSpec("cases", {"zh": "民生诉求", "en": "Cases"}, "points", "case_event", CASE_COLUMNS,
              personal=(("reporter_name", "name"), ("reporter_phone", "phone")),
              time_column="reported_at",
              filters=("time", "category", "channel", "status"),
              hover=("category_1", "status", "deadline")),
)


class Catalog:
    """Layer specs by id."""

    def __init__(self, layers: tuple[LayerSpec, ...] = LAYERS):
        self._layers = {layer.id: layer for layer in layers}

    def get(self, layer_id: str) -> LayerSpec:
        try:
            return self._layers[layer_id]
        except KeyError:
            known = ", ".join(self._layers)
            raise UnknownLayer(f"unknown layer '{layer_id}'; known layers: {known}") from None

    def __iter__(self):
        return iter(self._layers.values())


def default_catalog() -> Catalog:
    return Catalog()
