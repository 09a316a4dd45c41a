"""SapixDB Python SDK (the seed API) with an embedded engine and a compatible server.

``SapixClient`` / ``AsyncSapixClient`` talk to a SapixDB server over HTTP
(``url="http://…"``) or run the same engine in-process on ledgerstore
(``url="sqlite:///…"``, ``"postgresql://…"`` or ``path=``). ``python -m sapixdb.server``
serves that engine over the SapixDB wire protocol.
"""

from sapixdb.client import (
    AsOfQuery,
    AsyncAsOfQuery,
    AsyncCollection,
    AsyncGraph,
    AsyncSapixClient,
    Collection,
    EdgeSpec,
    Graph,
    SapixClient,
)
from sapixdb.engine import MAX_EDGE_BATCH
from sapixdb.exceptions import (
    SapixError,
    SapixNetworkError,
    SapixNotFoundError,
    SapixRateLimitError,
)
from sapixdb.models import GraphEdge, Record, StreamEvent, TraverseResult, WriteResult

__all__ = [
    "MAX_EDGE_BATCH",
    "AsOfQuery",
    "AsyncAsOfQuery",
    "AsyncCollection",
    "AsyncGraph",
    "AsyncSapixClient",
    "Collection",
    "EdgeSpec",
    "Graph",
    "GraphEdge",
    "Record",
    "SapixClient",
    "SapixError",
    "SapixNetworkError",
    "SapixNotFoundError",
    "SapixRateLimitError",
    "StreamEvent",
    "TraverseResult",
    "WriteResult",
]
