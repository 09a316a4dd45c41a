"""Server configuration: command line over SAPIX_* environment over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from sapixdb import AsyncSapixClient, SapixClient
from sapixdb.server.__main__ import parse_settings
from sapixdb.server.app import ServerSettings
from sapixdb.transports.http import AsyncHTTPTransport, HTTPTransport


def test_defaults() -> None:
    settings = parse_settings([], {})
    assert (settings.host, settings.port) == ("127.0.0.1", 7475)
    assert settings.storage_url == "sqlite:///sapixdb.db"  # a file in the working directory
    assert settings.root_key is None  # open mode


def test_environment_then_command_line() -> None:
    env = {
        "SAPIX_HOST": "0.0.0.0",
        "SAPIX_PORT": "8000",
        "SAPIX_STORAGE_URL": "postgresql://db/sapix",
        "SAPIX_ROOT_KEY": "from-env-0123456789",
        "SAPIX_HEARTBEAT_SECONDS": "2.5",
    }
    from_env = parse_settings([], env)
    assert from_env == ServerSettings(
        host="0.0.0.0",
        port=8000,
        storage_url="postgresql://db/sapix",
        root_key="from-env-0123456789",
        heartbeat_seconds=2.5,
    )
    overridden = parse_settings(["--port", "9001", "--storage", "sqlite:///x.db"], env)
    assert (overridden.port, overridden.storage_url, overridden.root_key) == (
        9001,
        "sqlite:///x.db",
        "from-env-0123456789",
    )


def test_sync_client_closes_its_pool() -> None:
    db = SapixClient(url="http://127.0.0.1:9", agent="a")
    transport = db._transport
    assert isinstance(transport, HTTPTransport)
    with db:
        pass
    assert transport._client.is_closed


async def test_async_client_closes_its_pool_on_exit() -> None:
    async with AsyncSapixClient(url="http://127.0.0.1:9", agent="a") as db:
        transport = db._transport
        assert isinstance(transport, AsyncHTTPTransport)
        pool = transport._client
        assert not pool.is_closed
    assert pool.is_closed


async def test_async_embedded_client_by_path(tmp_path: Path) -> None:
    async with AsyncSapixClient(path=tmp_path / "p.db") as db:
        written = await db.collection("c").write({"x": 1})
        assert (await db.collection("c").get(written.id)).data == {"x": 1}
    with SapixClient(path=tmp_path / "p.db") as again:  # the data outlives the client
        assert again.collection("c").get(written.hash).data == {"x": 1}


def test_settings_refuse_weak_root_keys_and_bad_values() -> None:

    for bad in (
        {"root_key": "changeme"},
        {"root_key": "short"},
        {"port": 0},
        {"heartbeat_seconds": 0},
    ):
        with pytest.raises(ValueError):
            ServerSettings(**bad)  # type: ignore[arg-type]


def test_main_refuses_a_weak_root_key(capsys: pytest.CaptureFixture[str]) -> None:
    from sapixdb.server.__main__ import main

    assert main(["--root-key", "changeme"]) == 2
    err = capsys.readouterr().err
    assert "root key" in err and "changeme" not in err  # the key itself is never echoed
