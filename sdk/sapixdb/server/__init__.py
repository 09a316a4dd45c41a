"""The SapixDB-compatible server: ``python -m sapixdb.server``."""

from sapixdb.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
