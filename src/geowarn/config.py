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
    data_dir: Path = Path("var")
    max_upload_mb: int = Field(default=200, ge=1)
    web_vendor_dir: Path | None = None  # front-end libraries (default: node_modules of the checkout)
    sql_echo: bool = False
    # Monitoring network: MQTT ingestion (geowarn worker) and HTTP ingestion limits.
    mqtt_url: str | None = None  # e.g. mqtt://127.0.0.1:1883
    mqtt_topic: str = "geowarn/+/up"  # devices publish to geowarn/<deviceId>/up
    mqtt_group: str = "geowarn"  # shared-subscription group: workers split the load
    mqtt_batch: int = Field(default=1000, ge=1, le=50_000)
    mqtt_batch_ms: int = Field(default=100, ge=1, le=10_000)
    offline_after_intervals: int = Field(default=3, ge=1, le=1000)
    # Site warnings: evaluate rules as readings arrive (serve, worker and demo).
    warning_engine: bool = True
    warning_flap_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # PostgreSQL: ingesting processes NOTIFY a separate `geowarn engine` process instead of
    # evaluating rules themselves, so ingestion and evaluation use different cores.
    warning_engine_process: bool = False

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
