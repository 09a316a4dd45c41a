from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from decisiontrail.config import Settings


def test_defaults_are_embedded_and_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.sapixdb_location == "sqlite:///data/sapixdb.db"
    assert settings.genesisdb_location == "sqlite:///data/genesisdb.db"
    assert settings.key_directory == Path("data/keys")
    assert settings.max_batch_size == 1000 and settings.retention_days >= 183


def test_environment_and_dotenv_configure_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DECISIONTRAIL_MAX_BATCH_SIZE=50\nDECISIONTRAIL_PORT=9000\n")
    monkeypatch.setenv("DECISIONTRAIL_PORT", "9100")
    settings = Settings()
    assert settings.max_batch_size == 50 and settings.port == 9100  # environment wins


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="production", genesisdb_token="changeme")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(environment="production", signing_key="changeme")  # type: ignore[arg-type]
    Settings(environment="development", genesisdb_token="changeme")  # type: ignore[arg-type]


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(port=0)
    with pytest.raises(ValidationError):
        Settings(default_tenant="Not Valid")
