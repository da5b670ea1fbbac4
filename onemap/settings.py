"""Settings from the environment (prefix ``ONEMAP_``) and ``.env``; ``DATABASE_URL`` wins."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DUE_SOON_HOURS = 24.0  # an open case whose deadline is this close is 即将超期


class Settings(BaseSettings):
    """Everything that can be configured. Build it with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="ONEMAP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ONEMAP_DATABASE_URL")
    )
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "ONEMAP_DATABASE_READ_URL"),
    )
    home: Path = Field(default=PROJECT_ROOT / ".onemap", description="local state folder")
    pg_user: str = Field(default="onemap", description="the local cluster's role of the "
                         "app: owns its database, nothing more")
    pg_read_user: str = Field(default="onemap_read", description="the local cluster's "
                              "read-only role, for reads when DATABASE_READ_URL is not set")
    pg_admin_user: str = Field(default="onemap_admin", description="the local cluster's "
                               "superuser (creates the database, roles and extensions)")
    pg_database: str = "onemap"
    pg_port: int = Field(default=54320, description="first port tried by the local cluster")
    mqtt_url: str | None = Field(default=None, description="an existing MQTT broker, "
                                 "mqtt://user:password@host:port; by default onemap runs "
                                 "its own in HOME/mqtt")
    mqtt_port: int = Field(default=18830, description="first port tried by the local broker")
    mqtt_user: str = Field(default="onemap", description="the local broker's one account")
    host: str = "127.0.0.1"
    port: int = 8050
    timezone: str = "Asia/Shanghai"
    tile_url: str | None = Field(default=None, description="optional XYZ basemap URL")
    tile_crs: str = Field(default="wgs84", description="wgs84 or gcj02: the tiles' datum")
    refresh_seconds: int = Field(default=60, ge=2, description="dashboard auto-refresh")
    view_cache_seconds: float = Field(default=15, ge=0, description="how long a view read "
                                      "once is shown again to others with the same scope "
                                      "and rights (0: never)")
    view_cache_mb: float = Field(default=64, ge=0, description="the most memory the views "
                                 "kept for others take in one process (0: keep none)")
    push_held: int = Field(default=16, ge=0, description="screens' asks for the data's "
                           "version one server process holds open until it moves (each "
                           "holds a thread; onemap serve --prod gives each worker that many "
                           "threads more); a screen beyond them asks once a second")
    read_lock_timeout_seconds: float = Field(default=5, ge=0, description="how long a "
                                             "view waits for a table a load is rewriting "
                                             "before it says so (0: as long as it takes)")
    map_point_limit: int = Field(default=10_000, ge=1, description="most points a map layer "
                                 "draws one by one (device alarms always all); the map says "
                                 "when it draws fewer than the view holds")
    alarm_list_limit: int = Field(default=200, ge=1, description="most rows of the alarm "
                                  "list; the list says when there are more")
    export_slots: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
                              ge=1, description="most exports written at once by the server "
                              "(each keeps a core busy; a person has one at a time); more "
                              "are answered 429 with Retry-After. Default: half the cores")
    stale_cases_hours: float = Field(default=24, gt=0, description="the case feed is stale "
                                     "when its newest case is older than this")
    stale_iot_minutes: float = Field(default=15, gt=0, description="the IoT feed is stale when "
                                     "no device has reported for this long")
    device_offline_minutes: float = Field(default=30, gt=0, description="a device not heard "
                                          "of for this long counts as offline")
    due_soon_hours: float = Field(default=DUE_SOON_HOURS, gt=0, description="an open case "
                                  "due within this many hours counts as due soon (即将超期)")
    debug: bool = False
    secret_key: str | None = Field(default=None, description="signs session cookies; by "
                                   "default a random key kept in HOME/secret_key")
    cookie_secure: bool = Field(default=False, description="send the session cookie over "
                                "HTTPS only (set when served behind TLS)")
    session_hours: float = Field(default=12, gt=0, description="how long a sign-in lasts "
                                 "unused")
    public_url: str | None = Field(default=None, description="the address people open "
                                   "(https://onemap.example.gov.cn); absolute links are built "
                                   "from it. Default: http://HOST:PORT")
    frame_ancestors: str = Field(default="", description="pages that may show the big "
                                 "screen in a frame, space-separated origins (CSP "
                                 "frame-ancestors); by default none may")

    @property
    def cluster_dir(self) -> Path:
        """Folder of the embedded PostGIS cluster."""
        return self.home / "pg"

    @property
    def mqtt_dir(self) -> Path:
        """Folder of the embedded MQTT broker."""
        return self.home / "mqtt"

    @property
    def base_url(self) -> str:
        """Where absolute links point: ``public_url``, else the address served."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def get_settings(**overrides) -> Settings:
    """Read settings now (not at import time); keyword overrides win over the environment."""
    return Settings(**overrides)
