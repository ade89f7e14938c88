"""Cloud API settings: plain data with a schema, no import-time globals."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from fieldline.config import ConfigPath

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class BootstrapAdmin(BaseModel):
    """An admin user created at start-up when no user of that name exists (its password is never overwritten)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="User name of the admin to create")
    password: SecretStr = Field(min_length=8, description="Initial password (at least 8 characters)")


class ClimateSensor(BaseModel):
    """A sensor that publishes in another stack's format on its own topic, mapped to a shed.

    Styles: ``home_assistant`` (a state topic with a bare value such as ``21.5``, HA's state object
    ``{"state": "21.5", "attributes": {"unit_of_measurement": "°C"}}``, or a JSON object read by
    ``value_key``), ``esphome`` (``<node>/sensor/<name>/state`` with a bare value) and ``zigbee2mqtt``
    (``zigbee2mqtt/<device>`` with ``{"temperature": 21.3, "humidity": 55.2, ...}``: every known quantity in
    the object is read).
    """

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=256, pattern=r"^[^+#]+$",
                       description="Exact MQTT topic the sensor publishes on (no wildcards)")
    style: Literal["home_assistant", "esphome", "zigbee2mqtt"] = Field(description="Payload format of the stack")
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Site of the shed")
    shed: str = Field(min_length=1, max_length=64, description="Shed the sensor hangs in, e.g. shed-07")
    sensor: str | None = Field(default=None, max_length=128,
                               description="Sensor id in the store and alerts; default: the topic")
    quantity: Literal["temperature", "humidity"] | None = Field(
        default=None, description="What a single-value payload measures (home_assistant, esphome); required there")
    unit: str | None = Field(default=None, description="Unit of the values when the payload does not say (°C, °F, K, %)")
    value_key: str | None = Field(default=None, max_length=64,
                                  description="home_assistant: key of the value in a JSON object payload")

    @model_validator(mode="after")
    def _single_value_needs_quantity(self) -> ClimateSensor:
        if self.style != "zigbee2mqtt" and self.quantity is None:
            raise ValueError(f"quantity is required for style {self.style!r} (one value per message)")
        return self


class ClimateBand(BaseModel):
    """Climate alert limits of one site or shed; a limit left out falls back to the site's, then the global one."""

    model_config = ConfigDict(extra="forbid")

    too_hot_c: float | None = Field(default=None, description="Above this (°C): too_hot")
    too_cold_c: float | None = Field(default=None, description="Below this (°C): too_cold")
    too_humid_pct: float | None = Field(default=None, ge=0, le=100, description="Above this (% RH): too_humid")
    too_dry_pct: float | None = Field(default=None, ge=0, le=100, description="Below this (% RH): too_dry")


class Settings(BaseModel):
    """Everything the cloud API needs to run; pass one instance to ``create_app``."""

    model_config = ConfigDict(extra="forbid")

    data_dir: ConfigPath = Field(
        default=Path(".fieldline"),
        description="Directory for the database and other state; relative paths here and in the other path settings "
        "are read from the config file's folder (the default: from the working directory)")
    db_path: ConfigPath | None = Field(
        default=None, description="SQLite database file; defaults to data_dir/fieldline.db"
    )
    storage: Literal["sqlite", "postgres"] = Field(
        default="sqlite", description="Where the API keeps its data: one SQLite file (db_path; one host), or a "
        "PostgreSQL database (postgres_dsn) shared by several API workers on several hosts")
    postgres_dsn: SecretStr | None = Field(
        default=None, description="PostgreSQL connection string for storage: postgres, e.g. "
        "postgresql://fieldline:secret@db:5432/fieldline; when unset, read from the FIELDLINE_POSTGRES_DSN "
        "environment variable")
    postgres_pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connections per API worker")
    postgres_partition_days: int = Field(
        default=7, ge=1, le=366, description="Days per time partition of the PostgreSQL event and count-point "
        "tables; retention drops whole partitions")
    mqtt_host: str = Field(default="127.0.0.1", description="MQTT broker host name or address")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="MQTT broker TCP port")
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="MQTT protocol version; the embedded amqtt demo broker only speaks 3.1.1"
    )
    mqtt_username: str | None = Field(default=None, description="MQTT user name, if the broker requires one")
    mqtt_password: str | None = Field(default=None, description="MQTT password, used with mqtt_username")
    mqtt_client_id: str = Field(
        default="fieldline-api", min_length=1, max_length=64, description="MQTT client id of the ingest worker"
    )
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive interval, seconds")
    mqtt_persistent_session: bool = Field(
        default=True,
        description="Keep the broker session (and queued QoS1 messages) across API restarts",
    )
    mqtt_reconnect_min_s: float = Field(default=1.0, gt=0, description="First reconnect delay after a broker loss")
    mqtt_reconnect_max_s: float = Field(default=10.0, gt=0, description="Upper bound of the reconnect backoff")
    mqtt_tls_ca_file: ConfigPath | None = Field(
        default=None, description="CA certificate (PEM) of the broker: set it to connect over TLS (e.g. port 8883)"
    )
    mqtt_tls_cert_file: ConfigPath | None = Field(
        default=None, description="Client certificate (PEM), if the broker asks")
    mqtt_tls_key_file: ConfigPath | None = Field(default=None, description="Private key of mqtt_tls_cert_file (PEM)")
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="MQTT 5 shared subscription group, e.g. fieldline-api; needs mqtt_protocol '5'",
    )
    ingest_enabled: bool = Field(default=True, description="Run the MQTT ingest worker (off for REST-only use)")
    ingest_batch_max: int = Field(default=500, ge=1, le=10_000, description="Most messages written per transaction")
    api_tokens: list[str] = Field(
        default_factory=list, description="Bearer tokens accepted by the REST API; empty means none is accepted"
    )
    dead_letter_max_bytes: int = Field(
        default=4096, ge=0, le=1_048_576, description="Raw payload bytes kept per dead letter"
    )
    snapshot_max_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1, description="Largest snapshot JPEG stored; bigger ones are dead-lettered"
    )
    bootstrap_admin: BootstrapAdmin | None = Field(
        default=None, description="Admin user created at start-up if it does not exist yet"
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Wrong passwords (per user name and address, in 5 min) before a lockout"
    )
    login_lockout_s: float = Field(
        default=60.0, ge=0, description="Seconds of the first lockout; each further one in a row doubles (up to 1 h)"
    )
    mosquitto_auth_dir: ConfigPath | None = Field(
        default=None,
        description="The directory of Mosquitto's passwd and acl files (as `fieldline device` writes them), shared"
        " with the broker; set it to let an admin list and revoke device credentials through the API",
    )
    mosquitto_reload_command: list[str] | None = Field(
        default=None,
        description="Command run after a revocation so the broker re-reads its files and drops the device's session,"
        " e.g. [systemctl, reload, mosquitto]; without it, reload the broker yourself (SIGHUP)",
    )
    session_ttl_s: int = Field(
        default=12 * 3600, ge=60,
        description="Lifetime of a page's session cookie (and the login token behind it) in seconds",
    )
    ws_auth_recheck_s: float = Field(
        default=60.0, gt=0,
        description="Seconds between re-checks of an open WebSocket's token; a revoked or expired one closes it (4401)",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Largest request body accepted (413 past it); model uploads have their own, larger limit",
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="Origins (e.g. https://ops.example.org) whose pages may call this API from a browser with a"
        " bearer token; empty (default) sends no CORS headers, so browsers allow same-origin calls only",
    )
    token_ttl_s: int | None = Field(
        default=30 * 24 * 3600, ge=60, description="Lifetime of login tokens in seconds; null means they never expire"
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone of the site, e.g. Asia/Shanghai; decides what 'today' is"
    )
    pick_ready_labels: list[str] = Field(
        default_factory=lambda: ["ripe"], min_length=1,
        description="Count labels that are ready to pick; a shed's pick_ready is the sum of their counts",
    )
    pick_ready_labels_by_shed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per-shed pick-ready labels overriding pick_ready_labels, e.g. {\"shed-12\": [\"half_ripe\", "
                    "\"ripe\"]} for a shed picked early for a long haul",
    )
    zone_names: dict[str, str] = Field(
        default_factory=dict,
        description="Display names of sheds and lines by zone id, e.g. {\"shed-07\": \"Shed 7 (cherry)\", "
                    "\"line-2\": \"Press line 2\"}; the phone app and the QA dashboard show the id when absent",
    )
    shed_spacing_m: float = Field(
        default=40.0, gt=0, description="Walkway distance between neighbouring sheds (natural order), metres"
    )
    shed_positions_m: dict[str, float] = Field(
        default_factory=dict,
        description="Position of a shed along the walkway in metres, overriding natural order x shed_spacing_m",
    )
    harvest_operators: list[str] = Field(
        default_factory=lambda: ["operator-1", "operator-2"], min_length=1,
        description="Names of the operators a harvest plan splits the sheds between",
    )
    harvest_pick_rate_per_min: float = Field(default=12.0, gt=0, description="Fruits one operator picks per minute")
    harvest_walk_speed_m_per_min: float = Field(default=60.0, gt=0, description="Walking speed along the walkway, m/min")
    climate_sensors: list[ClimateSensor] = Field(
        default_factory=list,
        description="Sensors publishing Home Assistant / ESPHome / Zigbee2MQTT JSON, each mapped to a shed; the"
                    " ingest subscribes to their topics (FieldLine devices publish telemetry on their own topic)")
    climate_too_hot_c: float = Field(default=35.0, description="A shed reading above this (°C) opens a too_hot alert")
    climate_too_cold_c: float = Field(default=5.0, description="A shed reading below this (°C) opens a too_cold alert")
    climate_too_humid_pct: float = Field(
        default=95.0, ge=0, le=100, description="A shed reading above this (% RH) opens a too_humid alert")
    climate_too_dry_pct: float = Field(
        default=30.0, ge=0, le=100, description="A shed reading below this (% RH) opens a too_dry alert")
    climate_limits_by_site: dict[str, ClimateBand] = Field(
        default_factory=dict, description="Per-site climate limits (site id -> limits), over the global ones")
    climate_limits_by_shed: dict[str, ClimateBand] = Field(
        default_factory=dict, description="Per-shed climate limits (shed id -> limits), over the site's")
    climate_hysteresis_c: float = Field(
        default=1.0, ge=0, description="A too_hot / too_cold alert clears itself once a reading is this far (°C)"
                                       " back inside the limit")
    climate_hysteresis_pct: float = Field(
        default=3.0, ge=0, description="A too_humid / too_dry alert clears itself once a reading is this far"
                                       " (% RH) back inside the limit")
    climate_silent_after_s: float = Field(
        default=1800.0, gt=0, description="A sensor with no reading for this long opens a sensor_silent alert;"
                                          " its next reading clears it")
    climate_check_interval_s: float = Field(default=60.0, gt=0, description="Seconds between sensor-silence checks")
    forecast_observe_hour: int = Field(
        default=8, ge=0, le=23,
        description="Local hour by which the morning count is in: the forecast reads each day's counts at this hour")
    ws_queue_size: int = Field(
        default=256, ge=1, le=100_000,
        description="Messages buffered per WebSocket client; when a client lags the oldest are dropped and counted",
    )
    # time series (InfluxDB mirror), retention, /metrics
    timeseries: Literal["sqlite", "influx"] = Field(
        default="sqlite",
        description="Time-series backend: 'sqlite' keeps the series only in the SQLite store; 'influx' also writes"
        " every stored count/inspection event to InfluxDB (SQLite stays the source of truth)",
    )
    influx_url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB 2 base URL, for timeseries 'influx'")
    influx_token: SecretStr | None = Field(default=None, description="InfluxDB API token (write access to the bucket)")
    influx_org: str = Field(default="fieldline", min_length=1, description="InfluxDB organisation")
    influx_bucket: str = Field(default="fieldline", min_length=1, description="InfluxDB bucket the points go to")
    influx_batch_size: int = Field(default=1000, ge=1, le=50_000, description="Most points sent in one write request")
    influx_flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Longest time a point waits in the buffer before it is sent"
    )
    influx_buffer_max: int = Field(
        default=200_000, ge=1,
        description="Points kept in memory while InfluxDB is unreachable; beyond that the oldest are dropped and counted",
    )
    influx_retry_min_s: float = Field(default=0.5, gt=0, description="First retry delay after a failed InfluxDB write")
    influx_retry_max_s: float = Field(default=30.0, gt=0, description="Upper bound of the InfluxDB retry backoff")
    influx_timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one InfluxDB write request")
    retention_events_days: int | None = Field(
        default=90, ge=1,
        description="Days raw events (with their count points), snapshots and dead letters are kept; null keeps"
        " them for ever. The latest count of every shed/device/camera/row is always kept",
    )
    retention_minute_rollups_days: int | None = Field(
        default=400, ge=1, description="Days per-minute count rollups are kept; null keeps them for ever"
    )
    retention_hour_rollups_days: int | None = Field(
        default=None, ge=1, description="Days per-hour count rollups are kept; null (default) keeps them for ever"
    )
    retention_climate_days: int | None = Field(
        default=90, ge=1,
        description="Days raw climate readings (and given temperature forecasts) are kept; older readings are first"
        " rolled up into hourly mean/min/max per sensor. Null keeps them for ever")
    retention_climate_hour_rollups_days: int | None = Field(
        default=None, ge=1, description="Days hourly climate rollups are kept; null (default) keeps them for ever")
    retention_interval_s: float = Field(
        default=3600.0, gt=0,
        description="Seconds between retention cleanups; the first runs one interval after start-up",
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at GET /metrics")
    metrics_public: bool = Field(
        default=True,
        description="Serve /metrics without a token (counters only, no device or user data); set false to"
        " require a bearer token (any role) when the API is reachable beyond a trusted network",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _defaults_and_combinations(self) -> Settings:
        if self.db_path is None:
            self.db_path = self.data_dir / "fieldline.db"
        if self.storage == "postgres":
            self._check_postgres()
        if self.shared_group and self.mqtt_protocol != "5":
            raise ValueError("shared_group needs mqtt_protocol '5' (shared subscriptions are an MQTT 5 feature)")
        if self.mqtt_password is not None and self.mqtt_username is None:
            raise ValueError("mqtt_password is set but mqtt_username is not")
        if (self.mqtt_tls_cert_file or self.mqtt_tls_key_file) and not self.mqtt_tls_ca_file:
            raise ValueError("mqtt_tls_cert_file/mqtt_tls_key_file need mqtt_tls_ca_file (TLS is off without it)")
        if bool(self.mqtt_tls_cert_file) != bool(self.mqtt_tls_key_file):
            raise ValueError("mqtt_tls_cert_file and mqtt_tls_key_file go together")
        for name in ("mqtt_tls_ca_file", "mqtt_tls_cert_file", "mqtt_tls_key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: {Path(path).absolute()} is not a readable file")
        if self.mqtt_reconnect_max_s < self.mqtt_reconnect_min_s:
            raise ValueError("mqtt_reconnect_max_s must be >= mqtt_reconnect_min_s")
        if any(not token for token in self.api_tokens):
            raise ValueError("api_tokens must not contain empty strings")
        empty = [shed for shed, labels in self.pick_ready_labels_by_shed.items() if not labels]
        if empty:
            raise ValueError(f"pick_ready_labels_by_shed: {empty[0]!r} needs at least one label")
        bad = [zone for zone, name in self.zone_names.items() if not name.strip() or len(name) > 100]
        if bad:
            raise ValueError(f"zone_names: the name of {bad[0]!r} must be 1..100 characters, not blank")
        if any(position < 0 for position in self.shed_positions_m.values()):
            raise ValueError("shed_positions_m: positions must be >= 0 metres")
        if self.influx_retry_max_s < self.influx_retry_min_s:
            raise ValueError("influx_retry_max_s must be >= influx_retry_min_s")
        if len(set(self.harvest_operators)) != len(self.harvest_operators) or not all(self.harvest_operators):
            raise ValueError("harvest_operators must be distinct, non-empty names")
        self._check_climate_limits()
        return self

    def climate_band(self, site: str, shed: str) -> ClimateBand:
        """The limits that apply to a shed: its own, else its site's, else the global ones (all four set)."""
        layers = [self.climate_limits_by_shed.get(shed), self.climate_limits_by_site.get(site)]
        values = {}
        for name in ClimateBand.model_fields:
            own = next((getattr(layer, name) for layer in layers if layer and getattr(layer, name) is not None), None)
            values[name] = own if own is not None else getattr(self, f"climate_{name}")
        return ClimateBand(**values)

    def _check_climate_limits(self) -> None:
        places = [("", "")] + [(site, "") for site in self.climate_limits_by_site]
        places += [(sensor.site, sensor.shed) for sensor in self.climate_sensors]
        places += [("", shed) for shed in self.climate_limits_by_shed]
        for site, shed in places:
            band = self.climate_band(site, shed)
            where = f" (shed {shed!r})" if shed else f" (site {site!r})" if site else ""
            assert band.too_cold_c is not None and band.too_hot_c is not None
            assert band.too_dry_pct is not None and band.too_humid_pct is not None
            if band.too_cold_c >= band.too_hot_c:
                raise ValueError(f"climate limits{where}: too_cold_c must be below too_hot_c")
            if band.too_dry_pct >= band.too_humid_pct:
                raise ValueError(f"climate limits{where}: too_dry_pct must be below too_humid_pct")

    def _check_postgres(self) -> None:
        if self.postgres_dsn is None and os.environ.get("FIELDLINE_POSTGRES_DSN"):
            self.postgres_dsn = SecretStr(os.environ["FIELDLINE_POSTGRES_DSN"])
        if self.postgres_dsn is None:
            raise ValueError("storage: postgres needs postgres_dsn (or the FIELDLINE_POSTGRES_DSN environment variable)")
        try:
            from cloud_api.storage.postgres_store import check_dsn
        except ImportError:
            raise ValueError("storage: postgres needs psycopg: pip install 'fieldline[postgres]'") from None
        try:
            check_dsn(self.postgres_dsn.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"postgres_dsn: {exc}") from None

    @property
    def database_file(self) -> Path:
        """The resolved database path (never None after validation)."""
        assert self.db_path is not None
        return self.db_path
