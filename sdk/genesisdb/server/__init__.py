"""The compatible Genesis DB server: ``python -m genesisdb.server`` or ``create_app(settings)``."""

from genesisdb.server.app import create_app
from genesisdb.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
