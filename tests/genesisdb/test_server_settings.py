"""Server settings and tokens: environment, command line, refusal without a token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from genesisdb import AuthenticationError, PermissionDeniedError
from genesisdb.server.__main__ import main
from genesisdb.server.auth import TokenAuthority
from genesisdb.server.settings import ServerSettings
from tests.genesisdb.gdb_server import free_port


def test_environment_then_overrides() -> None:
    environ = {
        "GENESISDB_PORT": "9000",
        "GENESISDB_STORAGE_URL": "sqlite:///x.db",
        "GENESISDB_AUTH_TOKEN": "secret-token",
        "GENESISDB_HEARTBEAT_SECONDS": "2.5",
    }
    settings = ServerSettings.from_env(environ, port=9100, host=None)
    assert (settings.port, settings.storage_url, settings.heartbeat_seconds) == (
        9100,
        "sqlite:///x.db",
        2.5,
    )
    assert settings.host == "127.0.0.1" and "secret-token" not in repr(settings)


def test_defaults_are_port_8080_and_a_local_sqlite_file() -> None:
    settings = ServerSettings.from_env({}, auth_token="t")
    assert settings.port == 8080 and settings.storage_url == "sqlite:///genesisdb.db"


def test_the_server_refuses_to_start_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="no token configured"):
        ServerSettings.from_env({})
    with pytest.raises(ValueError, match="GENESISDB_PORT"):
        ServerSettings.from_env({"GENESISDB_PORT": "eighty", "GENESISDB_AUTH_TOKEN": "t"})
    assert main(["--port", "8089"]) == 2
    assert "no token configured" in capsys.readouterr().err


def test_roles_are_ordered() -> None:
    authority = TokenAuthority(
        ServerSettings(auth_token="all", write_token="w", read_token="r", admin_token="a")
    )
    assert authority.role_of("Bearer all") == "admin"
    assert authority.role_of("bearer a") == "admin"
    assert authority.role_of("Bearer w") == "write"
    assert authority.role_of("r") == "read"  # a bare token is accepted too
    assert authority.role_of("Bearer nope") is None and authority.role_of(None) is None
    authority.require("Bearer w", "read")
    authority.require(None, None)
    with pytest.raises(PermissionDeniedError):
        authority.require("Bearer r", "write")
    with pytest.raises(AuthenticationError):
        authority.require("Bearer x", "read")


def test_a_server_process_configured_only_by_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GENESISDB_")}
    env |= {
        "GENESISDB_PORT": str(port),
        "GENESISDB_STORAGE_URL": f"sqlite:///{tmp_path}/env.db",
        "GENESISDB_READ_TOKEN": "reader",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "genesisdb.server"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/status/ping", timeout=1).text == "pong":
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        reader = {"Authorization": "Bearer reader"}
        assert httpx.get(f"{url}/subjects", headers=reader).json() == []
        commit = httpx.post(f"{url}/commit", headers=reader, json={"events": []})
        assert commit.status_code == 403
        assert (tmp_path / "env.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
