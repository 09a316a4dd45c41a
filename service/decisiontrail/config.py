"""Service settings: ``DECISIONTRAIL_*`` environment variables and a ``.env`` file.

Every setting has a safe default for the embedded mode: data under ``./data``, both SDKs on
SQLite files there, a signing key generated on first start. Outside development the settings
refuse what would be unsafe in production (no API keys, placeholder secrets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "admin"})


class Settings(BaseSettings):
    """DecisionTrail's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="DECISIONTRAIL_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    data_dir: Path = Path("data")

    # Storage: both SDKs, embedded (sqlite:///…, postgresql://…) or remote (http://…).
    sapixdb_url: str | None = None  # default: sqlite:///<data_dir>/sapixdb.db
    sapixdb_api_key: SecretStr | None = None
    genesisdb_url: str | None = None  # default: sqlite:///<data_dir>/genesisdb.db
    genesisdb_token: SecretStr | None = None
    # With embedded stores, do their writes in child processes (one per store) so that all
    # cores work; false keeps everything in the service's own process.
    store_workers: bool = True

    # Signing: a key directory (created with a fresh key on first start) or one given key.
    signing_key_dir: Path | None = None  # default: <data_dir>/keys
    signing_key: SecretStr | None = None  # PEM or base64 seed; overrides the key directory
    log_origin: str = Field("decisiontrail.local", min_length=1, max_length=200)
    checkpoint_interval_seconds: float = Field(60.0, gt=0)

    # Access: API keys are created with `decisiontrail keys create`. Tenant names are safe in
    # subjects and graph node ids (see decisiontrail.apikeys).
    default_tenant: str = Field("default", min_length=1, max_length=100, pattern=r"^[a-z0-9_-]+$")

    # Limits.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_batch_size: int = Field(1_000, ge=1, le=100_000)
    rate_limit_per_second: float = Field(0.0, ge=0)  # per API key; 0 = unlimited
    max_streams: int = Field(256, ge=1)  # live SSE streams open at once (then 503)
    # Failed authentications per client address: a burst, then so many a minute (then 429).
    failed_auth_burst: int = Field(20, ge=1)
    failed_auth_per_minute: float = Field(30.0, gt=0)
    retention_days: int = Field(183, ge=1)  # EU AI Act art. 19/26: at least six months

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"  # json: one object a line, for collectors

    @property
    def sapixdb_location(self) -> str:
        return self.sapixdb_url or f"sqlite:///{self.data_dir / 'sapixdb.db'}"

    @property
    def genesisdb_location(self) -> str:
        return self.genesisdb_url or f"sqlite:///{self.data_dir / 'genesisdb.db'}"

    @property
    def key_directory(self) -> Path:
        return self.signing_key_dir or self.data_dir / "keys"

    @model_validator(mode="after")
    def _safe_for_production(self) -> Self:
        if self.environment != "production":
            return self
        for name in ("sapixdb_api_key", "genesisdb_token", "signing_key"):
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name} is a placeholder; set a real secret in production")
        return self
