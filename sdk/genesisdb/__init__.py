"""Genesis DB Python SDK (bundled): the seed API, embedded on ledgerstore or over HTTP.

from genesisdb import Client

async with Client({"api_url": "sqlite:///events.db"}) as client:
    await client.commit_events([{"source": "io.app", "subject": "/customer",
                                 "type": "io.app.customer-added", "data": {"n": 1}}])
    events = await client.stream_events("/customer")
"""

from genesisdb.client import Client
from genesisdb.config import ClientConfig
from genesisdb.events import CloudEvent
from genesisdb.exceptions import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EventTooLargeError,
    GenesisDBError,
    InvalidEventError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    QueryBudgetError,
    QueryError,
    SchemaViolationError,
    ServerBusyError,
    ServerError,
    StorageError,
    TooManyQueriesError,
)

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientConfig",
    "CloudEvent",
    "ConflictError",
    "EventTooLargeError",
    "GenesisDBError",
    "InvalidEventError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "QueryBudgetError",
    "QueryError",
    "SchemaViolationError",
    "ServerBusyError",
    "ServerError",
    "StorageError",
    "TooManyQueriesError",
]
