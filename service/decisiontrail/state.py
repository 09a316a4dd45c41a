"""What a running service holds: settings, keys, the SDK clients and what is built on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decisiontrail.apikey_store import ApiKeyStore
from decisiontrail.config import Settings
from decisiontrail.ledger import Ledger, build_ledger, load_pepper
from decisiontrail.metrics import Metrics
from decisiontrail.provenance import GRAPH, ProvenanceStore
from decisiontrail.rate_limits import FailedAuthLimiter, RateLimiter
from decisiontrail.signing import Keyring, private_key_from_text
from decisiontrail.store_workers import GenesisWorker, SapixWorker
from genesisdb import Client
from sapixdb import AsyncSapixClient

# Decisions (with their inputs and outputs) are larger than Genesis DB's default event limit.
MAX_EVENT_BYTES = 3 * 1024 * 1024  # below ledgerstore's 4 MiB payload limit


@dataclass
class ServiceState:
    settings: Settings
    keyring: Keyring
    genesis: Client
    sapix: AsyncSapixClient
    ledger: Ledger
    keys: ApiKeyStore
    limiter: RateLimiter = field(default_factory=RateLimiter)
    failed_auth: FailedAuthLimiter = field(default_factory=FailedAuthLimiter)
    metrics: Metrics = field(default_factory=Metrics)
    created_signing_key: bool = False
    embedded_engine: Any = None  # closed with the service when the SDK runs in-process

    @classmethod
    async def open(cls, settings: Settings) -> ServiceState:
        _make_private(settings)
        if settings.signing_key is not None:
            key = private_key_from_text(settings.signing_key.get_secret_value())
            keyring, created = Keyring.from_private_key(key, settings.log_origin), False
        else:
            keyring, created = Keyring.load_or_create(settings.key_directory, settings.log_origin)
        genesis, engine = _genesis_client(settings)
        sapix = _sapix_client(settings)
        # The embedded stores' writes go to worker processes (see decisiontrail.store_workers).
        worker, committer = None, None
        if settings.store_workers and not sapix.is_remote:
            worker = SapixWorker(settings.sapixdb_location, _sapix_key(settings), GRAPH)
        if settings.store_workers and engine is not None:
            committer = GenesisWorker(settings.genesisdb_location, MAX_EVENT_BYTES)
        metrics = Metrics()
        ledger = build_ledger(
            genesis,
            keyring,
            origin=settings.log_origin,
            pepper=load_pepper(settings.key_directory),
            provenance=ProvenanceStore(sapix, worker),
            on_checkpoint=metrics.checkpoint_issued,
            on_store_call=metrics.store_call,
            genesis_worker=committer,
            max_streams=settings.max_streams,
        )
        return cls(
            settings,
            keyring,
            genesis,
            sapix,
            ledger,
            ApiKeyStore(genesis),
            failed_auth=FailedAuthLimiter(
                burst=settings.failed_auth_burst, per_minute=settings.failed_auth_per_minute
            ),
            metrics=metrics,
            created_signing_key=created,
            embedded_engine=engine,
        )

    async def close(self) -> None:
        for worker in self.ledger.workers():
            worker.close()
        await self.sapix.aclose()
        await self.genesis.close()
        if self.embedded_engine is not None:
            self.embedded_engine.close()


def _make_private(settings: Settings) -> None:
    """The data folder 0700 and the embedded stores' files 0600: they hold personal values
    (until erased) and API-key hashes. An empty file is an empty SQLite database, and SQLite
    gives its -wal and -shm files the database file's mode."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.data_dir.chmod(0o700)
    for location in (settings.genesisdb_location, settings.sapixdb_location):
        if not location.startswith("sqlite:///"):
            continue
        path = Path(location.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            if file == path or file.exists():
                file.touch(mode=0o600)
                file.chmod(0o600)


def _genesis_client(settings: Settings) -> tuple[Client, Any]:
    url = settings.genesisdb_location
    if url.startswith(("http://", "https://")):
        token = settings.genesisdb_token.get_secret_value() if settings.genesisdb_token else ""
        return Client({"api_url": url, "api_version": "v1", "auth_token": token}), None
    from genesisdb.engine import Engine
    from genesisdb.transports.embedded import EmbeddedTransport

    engine = Engine.open(url, max_event_bytes=MAX_EVENT_BYTES)
    return Client(transport=EmbeddedTransport(engine=engine)), engine


def _sapix_client(settings: Settings) -> AsyncSapixClient:
    """SapixDB: embedded on a ``sqlite:///``/``postgresql://`` URL, or a server over HTTP."""
    return AsyncSapixClient(settings.sapixdb_location, api_key=_sapix_key(settings), agent=GRAPH)


def _sapix_key(settings: Settings) -> str | None:
    return settings.sapixdb_api_key.get_secret_value() if settings.sapixdb_api_key else None
