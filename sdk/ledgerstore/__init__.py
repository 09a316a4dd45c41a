"""ledgerstore: the embedded storage engine under the bundled SapixDB and Genesis DB SDKs.

Named append-only logs with gap-free sequence numbers, HLC timestamps, UUIDv7 ids, a hash
chain and an RFC 9162 Merkle tree per log, a change feed, and an erasable side store; on
SQLite (default) or PostgreSQL, chosen by URL with :func:`open_store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ledgerstore.backend import (
    DatabaseError,
    DataError,
    Entry,
    EntryFilter,
    IntegrityError,
    InterfaceError,
    InternalError,
    InvalidArgumentError,
    InvalidEntryError,
    LedgerStore,
    LedgerStoreError,
    LogInfo,
    NewEntry,
    NotSupportedError,
    OperationalError,
    PayloadFormat,
    PayloadTooLargeError,
    Problem,
    ProblemKind,
    ProgrammingError,
    Reader,
    SideValue,
    StoreClosedError,
    Subscription,
    TreeHead,
    UnknownLogError,
    VerifyReport,
)

__all__ = [
    "DataError",
    "DatabaseError",
    "Entry",
    "EntryFilter",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidEntryError",
    "LedgerStore",
    "LedgerStoreError",
    "LogInfo",
    "NewEntry",
    "NotSupportedError",
    "OperationalError",
    "PayloadFormat",
    "PayloadTooLargeError",
    "Problem",
    "ProblemKind",
    "ProgrammingError",
    "Reader",
    "SideValue",
    "StoreClosedError",
    "Subscription",
    "TreeHead",
    "UnknownLogError",
    "VerifyReport",
    "open_store",
]

_INT_OPTIONS = ("max_payload_bytes", "pool_size")
_FLOAT_OPTIONS = ("busy_timeout", "connect_timeout")
_STORE_OPTIONS = (*_INT_OPTIONS, *_FLOAT_OPTIONS, "synchronous")


def _options(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in pairs:
        try:
            if name in _INT_OPTIONS:
                options[name] = int(value)
            elif name in _FLOAT_OPTIONS:
                options[name] = float(value)
            else:
                options[name] = value
        except ValueError:
            raise InvalidArgumentError(f"store option {name} must be a number") from None
    return options


def open_store(url: str | os.PathLike[str], **options: Any) -> LedgerStore:
    """Open (creating and migrating if needed) the store at ``url``.

    ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` or a plain path select
    SQLite; ``postgresql://user@host:port/db`` selects PostgreSQL. Options come from keyword
    arguments or the URL's query string (``?synchronous=NORMAL``, ``?max_payload_bytes=…``);
    other query parameters of a PostgreSQL URL go to libpq.
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise InvalidArgumentError("a store URL or path is required")
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        from ledgerstore.postgres import PostgresStore

        query = parse_qsl(parts.query)
        own = [(k, v) for k, v in query if k in _STORE_OPTIONS]
        dsn = parts._replace(query=urlencode([kv for kv in query if kv not in own])).geturl()
        return PostgresStore(dsn, **{**_options(own), **options})
    from ledgerstore.sqlite import SQLiteStore

    if parts.scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise InvalidArgumentError("a SQLite URL looks like sqlite:///relative/path.db")
        path, _, params = url[len("sqlite:///") :].partition("?")
        return SQLiteStore(Path(path), **{**_options(parse_qsl(params)), **options})
    if parts.scheme and len(parts.scheme) > 1:
        raise InvalidArgumentError(f"unsupported store URL scheme {parts.scheme!r}")
    return SQLiteStore(Path(url), **options)
