"""One settings object for the whole platform.

Values come, strongest first, from ``GEOWARN_*`` environment variables, then an optional YAML file
(``GEOWARN_CONFIG`` names it; ``${VAR:-default}`` is expanded inside it), then the defaults below.
In ``production`` mode unsafe defaults are refused.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from geowarn.errors import ConfigError

_DEV_SECRET = "dev-only-not-secret"
_ENV_REF = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(text: str) -> str:
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), text)


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``GEOWARN_CONFIG`` (keys as the field names, lower case)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("GEOWARN_CONFIG")
        if not path:
            return {}
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"GEOWARN_CONFIG names {path}, which is not a file")
        data = yaml.safe_load(_expand(p.read_text(encoding="utf-8"))) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        return {str(k).lower(): v for k, v in data.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEOWARN_", extra="ignore")

    mode: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///geowarn.db"
    secret_key: SecretStr = SecretStr(_DEV_SECRET)
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    password_profile: Literal["rfc9106", "fast"] = "rfc9106"  # "fast" only in test mode
    token_ttl_hours: int = Field(default=12, ge=1, le=24 * 365)
    # Verified bearer tokens are reused this long in each process (0: off); a token revoked or a user
    # changed in another process keeps working at most this long there (geowarn.auth.token_cache).
    token_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # `geowarn serve` worker processes; 0: one per CPU on PostgreSQL, one on SQLite (single writer).
    workers: int = Field(default=0, ge=0, le=64)
    data_dir: Path = Path("var")
    max_upload_mb: int = Field(default=200, ge=1)
    web_vendor_dir: Path | None = None  # front-end libraries (default: node_modules of the checkout)
    # Web map base layer: any XYZ tile URL ({z}/{x}/{y}, e.g. a 天地图 URL with its key or a local tile
    # server); unset: offline, the administrative boundaries are the only background.
    basemap_url: str | None = None
    basemap_attribution: str = ""
    sql_echo: bool = False
    # Monitoring network: MQTT ingestion (geowarn worker) and HTTP ingestion limits.
    mqtt_url: str | None = None  # e.g. mqtt://127.0.0.1:1883
    mqtt_topic: str = "geowarn/+/up"  # devices publish to geowarn/<deviceId>/up
    mqtt_group: str = "geowarn"  # shared-subscription group: workers split the load
    mqtt_batch: int = Field(default=1000, ge=1, le=50_000)
    mqtt_batch_ms: int = Field(default=100, ge=1, le=10_000)
    offline_after_intervals: int = Field(default=3, ge=1, le=1000)
    # `geowarn serve` checks once a minute for silent devices (workers and `geowarn engine` always do).
    # The demo turns it off: its simulator sweeps on simulated time while it replays the past 36 hours.
    serve_health_sweep: bool = True
    # Site warnings: evaluate rules as readings arrive (serve, worker and demo).
    warning_engine: bool = True
    warning_flap_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # PostgreSQL: ingesting processes NOTIFY a separate `geowarn engine` process instead of
    # evaluating rules themselves, so ingestion and evaluation use different cores.
    warning_engine_process: bool = False
    # Dissemination (issue 5): outbox rows are written with every alert/product decision; `geowarn dispatch` sends.
    dissemination: bool = True
    public_url: str = "http://127.0.0.1:8000"  # base of the confirmation links in messages
    sms_gateway_url: str | None = None  # e.g. http://127.0.0.1:8025 (the built-in local gateway in the demo)
    sms_gateway_key: SecretStr | None = None
    voice_gateway_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "geowarn@localhost"
    escalate_after_minutes: int = Field(default=15, ge=1, le=24 * 60)
    dispatch_batch: int = Field(default=1000, ge=1, le=20_000)
    dispatch_max_attempts: int = Field(default=8, ge=1, le=50)
    dispatch_backoff_s: float = Field(default=2.0, gt=0)
    dispatch_rates: dict[str, float] = Field(default_factory=dict)  # channel -> messages/s (channel defaults)
    # Community monitoring in the field (geowarn.fieldwork): see docs/fieldwork.md.
    flood_season_start: str = Field(default="04-01", pattern=r"^\d{2}-\d{2}$")  # MM-DD, China time
    flood_season_end: str = Field(default="10-15", pattern=r"^\d{2}-\d{2}$")
    zero_report_deadlines: str = Field(default="17:00", pattern=r"^\d{2}:\d{2}$")  # one report a day
    zero_report_response_deadlines: str = Field(default="08:00,17:00", pattern=r"^\d{2}:\d{2},\d{2}:\d{2}$")
    response_min_level: int = Field(default=3, ge=1, le=4)  # alert/product level of an orange response
    # `geowarn dispatch` reminds townships that have not reported (zero_report.official template),
    # this many minutes before each deadline (0: at the deadline).
    zero_report_reminders: bool = True
    zero_report_remind_before_minutes: int = Field(default=0, ge=0, le=12 * 60)
    patrol_max_distance_m: float = Field(default=300.0, gt=0)
    photo_max_mb: float = Field(default=10.0, gt=0)
    photo_max_pixels: int = Field(default=50_000_000, ge=1)
    cjk_font: Path | None = None  # a TTF/OTF/TTC with Chinese glyphs; found with fc-match when unset
    cjk_font_index: int | None = None  # face number inside a .ttc collection
    write_off_target_ratio: float = Field(default=0.10, ge=0, le=1)
    hygiene_patrol_days: int = Field(default=30, ge=1)
    phone_check_days: int = Field(default=365, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.password_profile == "fast" and self.mode != "test":
            raise ConfigError("GEOWARN_PASSWORD_PROFILE=fast is for the test suite only (GEOWARN_MODE=test)")
        if self.mode == "production":
            if self.secret_key.get_secret_value() == _DEV_SECRET or len(self.secret_key.get_secret_value()) < 32:
                raise ConfigError("production mode needs GEOWARN_SECRET_KEY of at least 32 characters")
            if self.host not in ("127.0.0.1", "localhost", "::1") and self.database_url.startswith("sqlite"):
                # SQLite is fine behind a reverse proxy on one machine; say so explicitly.
                pass
        return self

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
